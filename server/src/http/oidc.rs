//! The doors of signing in through the identity provider (the rules are
//! `crate::services::oidc`): where a sign-in begins and where the provider sends the browser
//! back, how one signs in here, and where the command line claims the token its browser
//! sign-in earned.

use app::api::auth::{CliSignedIn, CliTokenRequest, SignInMethods};
use app::api::ssr::Presented;
use app::error::ErrorBody;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::error::ApiResult;
use crate::http::extract::{ValidJson, ValidQuery};
use crate::proxy::forward::redirect;
use crate::proxy::page;
use crate::services::oidc::{OidcCallback, OidcStart};
use crate::services::Services;

/// `GET /api/v1/auth/oidc/login`'s query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoginQuery {
    /// A path of Hangar's to open once signed in (anything else: the dashboard).
    #[serde(default)]
    pub next: Option<String>,
    /// Link the signed-in account to the provider identity instead of signing in.
    #[serde(default)]
    pub link: Option<bool>,
    /// The command line's loopback port (`hangar login`): the browser comes back there with a
    /// one-time code.
    #[serde(default)]
    #[param(minimum = 1024, maximum = 65535)]
    pub cli_port: Option<u16>,
    /// The command line's own state, given back with the code.
    #[serde(default)]
    pub cli_state: Option<String>,
    /// The SHA-256 (hex) of the secret the command line claims its token with.
    #[serde(default)]
    pub cli_challenge: Option<String>,
}

/// `GET /api/v1/auth/oidc/callback`'s query, as the provider sends it.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/auth/methods", tag = "auth", security(()), responses((status = 200, description = "how one signs in here, and what the last sign-in or sign-out of this browser has to say (once)", body = SignInMethods)))]
pub async fn methods(
    State(services): State<Services>,
    presented: Presented,
) -> ApiResult<Json<SignInMethods>> {
    Ok(Json(services.sign_in_methods_of(&presented).await?))
}

#[utoipa::path(get, path = "/api/v1/auth/oidc/login", tag = "auth", params(LoginQuery), security(()), responses((status = 302, description = "to the identity provider, to sign in there"), (status = 400, description = "the command line's parameters are malformed", body = ErrorBody), (status = 401, description = "`link` without being signed in", body = ErrorBody), (status = 404, description = "sign-in through an identity provider is not configured", body = ErrorBody), (status = 503, description = "the identity provider cannot be used (it does not answer, or its issuer is not the one configured)", body = ErrorBody)))]
pub async fn login(
    State(services): State<Services>,
    parts: Parts,
    ValidQuery(query): ValidQuery<LoginQuery>,
) -> Response {
    let html = page::accepts_html(&parts.headers);
    let started = match Presented::of(&parts) {
        Ok(presented) => {
            let cli = match (query.cli_port, query.cli_state, query.cli_challenge) {
                (Some(port), Some(state), Some(challenge)) => Some((port, state, challenge)),
                _ => None,
            };
            let start = OidcStart {
                next: query.next,
                link: query.link.unwrap_or(false),
                cli,
            };
            services.oidc_begin(&presented, start).await
        }
        Err(e) => Err(e),
    };
    match started {
        Ok(url) => redirect(&url),
        Err(refusal) if html => page::refusal(
            refusal.code.status(),
            "Cannot sign in",
            &refusal.message,
            true,
            false,
        ),
        Err(refusal) => refusal.into_response(),
    }
}

#[utoipa::path(get, path = "/api/v1/auth/oidc/callback", tag = "auth", params(CallbackQuery), security(()), responses((status = 302, description = "signed in: to the page asked for (or linked: back to it; for the command line: to its loopback address with a one-time code). A browser refused goes to the sign-in page, which says why"), (status = 401, description = "refused (JSON clients): the message says why and what to do: an unknown or used `state`, a code the provider refused, an ID token for another audience, expired, or not signed by the provider", body = ErrorBody), (status = 403, description = "refused (JSON clients): an unverified email, a domain not allowed, no linked account, a deactivated account", body = ErrorBody), (status = 404, description = "sign-in through an identity provider is not configured", body = ErrorBody), (status = 409, description = "linking: the identity is linked to another account", body = ErrorBody)))]
pub async fn callback(
    State(services): State<Services>,
    parts: Parts,
    ValidQuery(query): ValidQuery<CallbackQuery>,
) -> Response {
    let html = page::accepts_html(&parts.headers);
    let finished = match Presented::of(&parts) {
        Ok(presented) => {
            let callback = OidcCallback {
                code: query.code,
                state: query.state,
                error: query.error,
                error_description: query.error_description,
            };
            services.oidc_finish(&presented, callback).await
        }
        Err(e) => Err(e),
    };
    let mut response = match finished {
        Ok(outcome) => match outcome.refused {
            Some(refusal) if !html => refusal.into_response(),
            _ => redirect(&outcome.to),
        },
        Err(e) => e.into_response(),
    };
    // The answer carries a fresh session: never kept by a cache.
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

#[utoipa::path(post, path = "/api/v1/auth/cli/token", tag = "auth", request_body = CliTokenRequest, security(()), responses((status = 201, description = "the command line's API token (the secret is in the answer, once)", body = CliSignedIn), (status = 401, description = "the code is unknown, used already or expired, or the verifier is not the one it was made for", body = ErrorBody), (status = 409, description = "the account has the most tokens allowed", body = ErrorBody)))]
pub async fn cli_token(
    State(services): State<Services>,
    ValidJson(input): ValidJson<CliTokenRequest>,
) -> ApiResult<(StatusCode, Json<CliSignedIn>)> {
    let (user, token) = services
        .claim_login_grant(&input.code, &input.verifier, input.name)
        .await?;
    Ok((StatusCode::CREATED, Json(CliSignedIn { user, token })))
}
