//! The doors of signing a browser in to an app domain (the rules and tickets are
//! `crate::services::apps::tickets`): `GET /api/v1/apps/authorize` on Hangar's origin, and
//! `/__hangar/auth` on an app host, where a ticket becomes the host's own cookie.

use app::api::ports::{encode_query_value as encode, AUTHORIZE_PATH};
use app::api::ssr::Presented;
use app::redirect::local_path;
use axum::extract::{Query, Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use serde::Deserialize;

use super::scheme;
use crate::error::ApiResult;
use crate::http::extract::ValidQuery;
use crate::http::AppState;
use crate::proxy::forward::{redirect, APP_COOKIE};
use crate::proxy::page;
use crate::services::apps::tickets::{AppSession, EXCHANGE_PATH};

/// The sign-in page, coming back to `next` (a path of Hangar's) afterwards.
pub fn login_url(next: &str) -> String {
    format!("/login?next={}", encode(next))
}

/// The value of the named cookie of a request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().to_owned())
}

/// The signed-in user of a request to an app host, if its app cookie is good.
pub async fn app_session(
    state: &AppState,
    headers: &HeaderMap,
    host: &str,
) -> ApiResult<Option<AppSession>> {
    match cookie(headers, APP_COOKIE) {
        Some(secret) => state.services.app_session(&secret, host).await,
        None => Ok(None),
    }
}

/// An app host without a good cookie: a browser goes to sign in through Hangar's origin;
/// other clients are told how.
pub fn sign_in(state: &AppState, request: &Request, host: &str, html: bool) -> Response {
    // `--public-url`, or on this machine the listening address (`check` made sure one is
    // known whenever apps have origins of their own).
    let origin = state.config.hangar_origin().unwrap_or_default();
    if html && request.method() == http::Method::GET {
        let path = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        return redirect(&format!(
            "{origin}{AUTHORIZE_PATH}?host={}&path={}",
            encode(host),
            encode(path)
        ));
    }
    page::refusal(
        StatusCode::UNAUTHORIZED,
        "Sign in first",
        "this app needs you signed in: open its address in a browser signed in to Hangar",
        html,
        false,
    )
}

/// `GET /api/v1/apps/authorize`: the app host and the path to go back to.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorizeQuery {
    /// The app's host, `{port}--{space}--{owner}.{apps domain}` (`apps.localhost:<port>` on a
    /// Hangar reached on this machine only).
    pub host: String,
    /// The path (and query) to open there.
    #[serde(default)]
    pub path: Option<String>,
}

/// Signs the browser in to an app host: checks that the signed-in user may use that port of
/// that space and sends them back there with a one-minute, single-use, signed ticket.
#[utoipa::path(get, path = "/api/v1/apps/authorize", tag = "ports", params(AuthorizeQuery), responses((status = 302, description = "to the app host with a ticket, or to the sign-in page"), (status = 400, body = app::error::ErrorBody), (status = 403, description = "the permission is missing", body = app::error::ErrorBody), (status = 404, body = app::error::ErrorBody)))]
pub async fn authorize(
    State(state): State<AppState>,
    parts: Parts,
    ValidQuery(query): ValidQuery<AuthorizeQuery>,
) -> Response {
    let html = page::accepts_html(&parts.headers);
    let caller = match Presented::of(&parts) {
        Ok(presented) => state.api.caller(&presented).await,
        Err(e) => Err(e),
    };
    let Ok(caller) = caller else {
        let back = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        return redirect(&login_url(back));
    };
    let host = query.host.trim().to_ascii_lowercase();
    match state.services.app_ticket(&caller, &host).await {
        Ok(ticket) => redirect(&format!(
            "{}://{host}{EXCHANGE_PATH}?ticket={ticket}&next={}",
            scheme(&state),
            encode(&local_path(query.path.as_deref()))
        )),
        Err(refusal) => page::from_error(&refusal, html),
    }
}

#[derive(Debug, Deserialize)]
struct ExchangeQuery {
    ticket: String,
    #[serde(default)]
    next: Option<String>,
}

/// `/__hangar/auth` on an app host: a good ticket becomes the host's own cookie.
pub async fn exchange(
    state: &AppState,
    uri: &http::Uri,
    headers: &HeaderMap,
    host: &str,
) -> Response {
    let html = page::accepts_html(headers);
    let refused = || {
        page::refusal(
            StatusCode::FORBIDDEN,
            "This sign-in link cannot be used",
            "it was used already, has expired or is not for this address: open the app again \
             from its space's page in Hangar",
            html,
            false,
        )
    };
    let Ok(Query(query)) = Query::<ExchangeQuery>::try_from_uri(uri) else {
        return refused();
    };
    match state.services.claim_app_ticket(host, &query.ticket).await {
        Ok(Some(cookie_secret)) => {
            let mut response = redirect(&local_path(query.next.as_deref()));
            let secure = if state.config.secure_cookies() {
                "; Secure"
            } else {
                ""
            };
            let value = format!(
                "{APP_COOKIE}={cookie_secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
                state.config.session_days * 86_400
            );
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Ok(None) => refused(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/x?y=1")), "/x?y=1");
        for bad in [
            "//evil.com/",
            "https://evil.com",
            "/\\evil.com",
            "",
            "/\t/evil.com",
            "/\n/evil.com",
            "/.//evil.com",
        ] {
            assert_eq!(local_path(Some(bad)), "/", "{bad:?}");
        }
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; hangar_app=abc; hangar_appx=2"),
        );
        assert_eq!(cookie(&headers, "hangar_app").as_deref(), Some("abc"));
        assert_eq!(encode("/a b?c=d&e"), "%2Fa%20b%3Fc%3Dd%26e");
    }
}
