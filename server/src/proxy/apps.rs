//! Signing a browser in to an app domain without ever widening Hangar's session cookie.
//!
//! An app host (`8080--api--ann.apps.example.com`) has no Hangar session: a browser without
//! an app cookie there is sent to Hangar's own origin (`GET /api/v1/apps/authorize`), where its
//! session proves who it is and that it may use that port. Hangar answers with a redirect back
//! to the app host carrying a ticket: single-use, valid for a minute, bound to that host and
//! signed with the installation's key. The app host exchanges it (`/__hangar/auth`) for a
//! cookie of its own (host-only, HttpOnly), which names a server-side record tied to the
//! Hangar session it came from: signing out of Hangar, or losing access, ends it too.
//!
//! Tickets and app sessions are rows of the sessions table (shared by replicas, swept when
//! expired) under ids no browser session can have, holding only the SHA-256 of their secret.

use app::api::ssr::{Caller, Credential};
use app::ids::{SpaceId, UserId};
use axum::extract::{Query, Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use hmac::{Hmac, Mac};
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::forward::APP_COOKIE;
use super::route::{self, HostTarget};
use super::{page, port_access, scheme, space_named};
use crate::entities::{session, setting};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::ValidQuery;
use crate::services::tokens::hash_token;
use crate::state::AppState;

/// Where an app host takes its ticket (never passed on to the app).
pub const EXCHANGE_PATH: &str = "/__hangar/auth";
/// How long a ticket is good for.
const TICKET_SECS: i64 = 60;
/// Session-table ids of tickets and app sessions: never those of a browser session (which
/// are 22 characters of base64), and holding only a hash of the secret.
const TICKET_ID: &str = "apt-";
const APP_ID: &str = "app-";
/// The settings key of the installation's signing key.
const SIGNING_KEY: &str = "apps_signing_key";

/// What an app session (or a ticket for one) grants. Its keys are not those of a browser
/// session's data, so it can never pass for one.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Grant {
    /// The Hangar session it was granted from: it lasts no longer.
    app_parent: String,
    app_user: UserId,
    app_space: SpaceId,
    app_port: u16,
    app_host: String,
    /// The owner's username, to name the space in messages.
    #[serde(default)]
    app_owner: String,
}

/// A signed-in app request: who, and which port of which space the cookie is for.
pub struct AppSession {
    pub caller: Caller,
    pub space_id: SpaceId,
    pub port: u16,
    /// The space owner's username.
    pub owner: String,
}

/// `bytes` random bytes, in hex.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buffer = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buffer);
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}

/// Percent-encodes a query value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The sign-in page, coming back to `next` (a path of Hangar's) afterwards.
pub fn login_url(next: &str) -> String {
    format!("/login?next={}", encode(next))
}

/// The installation's key for signing tickets: made by the first server, shared by replicas.
pub async fn signing_key(db: &DatabaseConnection) -> ApiResult<Vec<u8>> {
    let fresh = setting::ActiveModel {
        key: Set(SIGNING_KEY.into()),
        value: Set(random_hex(32)),
        created_at: Set(Utc::now()),
    };
    setting::Entity::insert(fresh)
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(setting::Column::Key)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    setting::Entity::find_by_id(SIGNING_KEY)
        .one(db)
        .await?
        .map(|s| s.value.into_bytes())
        .ok_or_else(|| ApiError::internal("the apps signing key vanished as it was made"))
}

fn mac(key: &[u8], host: &str, secret: &str, expires: i64) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(format!("{host}|{secret}|{expires}").as_bytes());
    Some(mac)
}

fn sign(key: &[u8], host: &str, secret: &str, expires: i64) -> Option<String> {
    use base64::Engine;
    let tag = mac(key, host, secret, expires)?.finalize().into_bytes();
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag))
}

/// The secret of a ticket whose signature, host and time hold.
fn verify(key: &[u8], host: &str, ticket: &str, now: i64) -> Option<String> {
    use base64::Engine;
    let mut parts = ticket.split('.');
    let (secret, expires, tag) = (parts.next()?, parts.next()?, parts.next()?);
    let expires: i64 = expires.parse().ok()?;
    if parts.next().is_some() || expires < now || expires > now + TICKET_SECS + 5 {
        return None;
    }
    let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tag)
        .ok()?;
    mac(key, host, secret, expires)?.verify_slice(&tag).ok()?;
    Some(secret.to_owned())
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

/// A stored, unexpired grant by its row id.
async fn grant(db: &DatabaseConnection, id: String) -> ApiResult<Option<Grant>> {
    let row = session::Entity::find_by_id(id)
        .filter(session::Column::ExpiresAt.gt(Utc::now()))
        .one(db)
        .await?;
    Ok(row.and_then(|r| serde_json::from_str(&r.data).ok()))
}

async fn store(
    db: &DatabaseConnection,
    id: String,
    grant: &Grant,
    lasts: Duration,
) -> ApiResult<()> {
    session::Entity::insert(session::ActiveModel {
        id: Set(id),
        data: Set(serde_json::to_string(grant).map_err(ApiError::internal)?),
        expires_at: Set(Utc::now() + lasts),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The signed-in user of a request to an app host, if its cookie is good: issued for this
/// host, from a Hangar session that still exists, to a user who is still active.
pub async fn app_session(
    state: &AppState,
    headers: &HeaderMap,
    host: &str,
) -> ApiResult<Option<AppSession>> {
    let Some(secret) = cookie(headers, APP_COOKIE) else {
        return Ok(None);
    };
    let db = &state.services.db;
    let Some(grant) = grant(db, format!("{APP_ID}{}", hash_token(&secret))).await? else {
        return Ok(None);
    };
    if grant.app_host != host {
        return Ok(None);
    }
    let parent = session::Entity::find_by_id(grant.app_parent.clone())
        .filter(session::Column::ExpiresAt.gt(Utc::now()))
        .one(db)
        .await?;
    if parent.is_none() {
        return Ok(None);
    }
    let user = match state.services.find_user(&grant.app_user).await {
        Ok(user) if user.active => user,
        _ => return Ok(None),
    };
    Ok(Some(AppSession {
        caller: Caller {
            user: user.into(),
            credential: Credential::Session(grant.app_parent),
        },
        space_id: grant.app_space,
        port: grant.app_port,
        owner: grant.app_owner,
    }))
}

/// An app host without a good cookie: a browser goes to sign in through Hangar's origin;
/// other clients are told how.
pub fn sign_in(state: &AppState, request: &Request, host: &str, html: bool) -> Response {
    let origin = state
        .config
        .public_url
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/');
    if html && request.method() == http::Method::GET {
        let path = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        return super::forward::redirect(&format!(
            "{origin}/api/v1/apps/authorize?host={}&path={}",
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
    /// The app's host, `{port}--{space}--{owner}.{apps domain}`.
    pub host: String,
    /// The path (and query) to open there.
    #[serde(default)]
    pub path: Option<String>,
}

/// A path of the same origin, safe to redirect to.
fn local_path(path: Option<&str>) -> String {
    match path {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_owned(),
        _ => "/".to_owned(),
    }
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
    let caller = match state.api.caller(&parts).await {
        Ok(caller) => caller,
        Err(_) => {
            let back = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
            return super::forward::redirect(&login_url(back));
        }
    };
    match ticket_for(&state, &caller, &query).await {
        Ok(location) => super::forward::redirect(&location),
        Err(refusal) => page::from_error(&refusal, html),
    }
}

async fn ticket_for(
    state: &AppState,
    caller: &Caller,
    query: &AuthorizeQuery,
) -> ApiResult<String> {
    let host = query.host.trim().to_ascii_lowercase();
    let domain = state
        .config
        .apps_domain
        .as_deref()
        .ok_or_else(|| ApiError::not_found_because("this Hangar serves no apps domain"))?;
    let Some(HostTarget::Port(readings)) = route::parse_host(&host, domain) else {
        return Err(ApiError::invalid(
            "host",
            "not an app address of this Hangar: open apps from the space's page",
        ));
    };
    let Credential::Session(parent) = &caller.credential else {
        return Err(ApiError::bad_request(
            "apps open in a browser signed in to Hangar, not with an API token",
        ));
    };
    let mut refusal = ApiError::not_found("space");
    let mut granted = None;
    for reading in &readings {
        let Some(space) = space_named(&state.services, reading).await? else {
            continue;
        };
        match port_access(&state.services, caller, &space.id, reading.port).await {
            Ok((space, _, _)) => {
                granted = Some((space.id, reading));
                break;
            }
            Err(e) => refusal = e,
        }
    }
    let Some((space_id, reading)) = granted else {
        return Err(refusal);
    };
    let secret = random_hex(32);
    let expires = Utc::now().timestamp() + TICKET_SECS;
    let grant = Grant {
        app_parent: parent.clone(),
        app_user: caller.id().clone(),
        app_space: space_id,
        app_port: reading.port,
        app_host: host.clone(),
        app_owner: reading.owner.clone(),
    };
    store(
        &state.services.db,
        format!("{TICKET_ID}{}", hash_token(&secret)),
        &grant,
        Duration::seconds(TICKET_SECS),
    )
    .await?;
    let tag = sign(&state.proxy.signing_key, &host, &secret, expires)
        .ok_or_else(|| ApiError::internal("cannot sign an app ticket"))?;
    Ok(format!(
        "{}://{host}{EXCHANGE_PATH}?ticket={secret}.{expires}.{tag}&next={}",
        scheme(state),
        encode(&local_path(query.path.as_deref()))
    ))
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
    let Some(secret) = verify(
        &state.proxy.signing_key,
        host,
        &query.ticket,
        Utc::now().timestamp(),
    ) else {
        return refused();
    };
    match claim(state, host, &secret).await {
        Ok(Some(cookie_secret)) => {
            let mut response = super::forward::redirect(&local_path(query.next.as_deref()));
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

/// Uses up the ticket (once, whoever races for it) and makes the app session; its cookie's
/// secret, when the ticket was good.
async fn claim(state: &AppState, host: &str, secret: &str) -> ApiResult<Option<String>> {
    let db = &state.services.db;
    let ticket_id = format!("{TICKET_ID}{}", hash_token(secret));
    let Some(grant) = grant(db, ticket_id.clone()).await? else {
        return Ok(None);
    };
    if grant.app_host != host {
        return Ok(None);
    }
    let taken = session::Entity::delete_by_id(ticket_id).exec(db).await?;
    if taken.rows_affected != 1 {
        return Ok(None);
    }
    let cookie_secret = random_hex(32);
    store(
        db,
        format!("{APP_ID}{}", hash_token(&cookie_secret)),
        &grant,
        Duration::days(state.config.session_days),
    )
    .await?;
    Ok(Some(cookie_secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_hold_only_for_their_host_and_minute() {
        let key = b"key";
        let now = 1_000_000;
        let tag = sign(key, "80--a1--bb.apps.test", "s3cret", now + 60).unwrap();
        let ticket = format!("s3cret.{}.{tag}", now + 60);
        assert_eq!(
            verify(key, "80--a1--bb.apps.test", &ticket, now).as_deref(),
            Some("s3cret")
        );
        assert_eq!(verify(key, "81--a1--bb.apps.test", &ticket, now), None);
        assert_eq!(verify(key, "80--a1--bb.apps.test", &ticket, now + 61), None);
        assert_eq!(verify(b"other", "80--a1--bb.apps.test", &ticket, now), None);
        let forged = format!("other.{}.{tag}", now + 60);
        assert_eq!(verify(key, "80--a1--bb.apps.test", &forged, now), None);
    }

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/x?y=1")), "/x?y=1");
        for bad in ["//evil.com/", "https://evil.com", "/\\evil.com", ""] {
            assert_eq!(local_path(Some(bad)), "/", "{bad}");
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
