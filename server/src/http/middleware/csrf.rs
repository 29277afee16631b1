//! CSRF protection: a state-changing request from a browser must come from Hangar's own
//! origin, and nothing at all is answered to a page of an app (an origin under the apps
//! domain): code served from a space never acts on Hangar.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::SESSION_COOKIE;
use crate::config::Config;
use crate::error::ApiError;
use crate::services::apps::route;

/// Refuses requests of any method whose Origin is an app's (and unsafe ones whose Referer
/// is), unsafe requests whose Origin (or Referer) names another site, and unsafe requests
/// that carry the session cookie without saying where they come from.
pub async fn reject_cross_origin(
    State(config): State<Arc<Config>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method();
    let headers = request.headers();
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if let Some(app) = app_origin(&config, headers, safe) {
        tracing::warn!(method = %method, path = %super::loggable_path(request.uri()), origin = %app, "refused a request from an app's page");
        return ApiError::forbidden(format!(
            "refused: this request comes from a page of an app ({app}), and apps of spaces may \
             not act on Hangar. Use Hangar from its own pages, or an API token from a script"
        ))
        .into_response();
    }
    if safe {
        return next.run(request).await;
    }
    let expected = expected_authority(config.public_url.as_deref(), headers);
    let claimed = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    let allowed = match (claimed, expected) {
        (Some(claimed), Some(expected)) => authority_of(claimed).is_some_and(|a| a == expected),
        (Some(_), None) => false,
        (None, _) => !carries_session_cookie(headers),
    };
    if allowed {
        next.run(request).await
    } else {
        tracing::warn!(method = %method, path = %super::loggable_path(request.uri()), "refused a cross-origin request");
        ApiError::forbidden(
            "cross-origin request refused: send it from Hangar's own pages, or use an API token",
        )
        .into_response()
    }
}

/// The app origin (`host[:port]` under the apps domain) a request says it comes from: its
/// Origin, whatever the method (a page's fetches and WebSockets send it; a browser sends none
/// when following a link), or for an unsafe request without an Origin, its Referer. A link
/// from an app to Hangar (an app whose cookie expired goes to sign in through Hangar) carries
/// the app as its Referer and stays allowed: it is a navigation, which changes nothing.
fn app_origin(config: &Config, headers: &HeaderMap, safe: bool) -> Option<String> {
    let apps = config.apps();
    let domain = apps.domain()?;
    let origin = headers.get(header::ORIGIN);
    let claimed = match (origin, safe) {
        (Some(origin), _) => origin,
        (None, false) => headers.get(header::REFERER)?,
        (None, true) => return None,
    };
    authority_of(claimed.to_str().ok()?).filter(|a| route::is_apps_host(a, domain))
}

/// For WebSocket upgrades: a browser's Origin, when given, must be Hangar's own.
pub fn origin_allowed(public_url: Option<&str>, headers: &HeaderMap) -> bool {
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => match expected_authority(public_url, headers) {
            Some(expected) => authority_of(origin).is_some_and(|a| a == expected),
            None => false,
        },
    }
}

/// `host[:port]` that requests must come from: the public URL's, else the Host header's.
fn expected_authority(public_url: Option<&str>, headers: &HeaderMap) -> Option<String> {
    match public_url {
        Some(url) => authority_of(url),
        None => headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(|host| host.to_ascii_lowercase()),
    }
}

/// The `host[:port]` of an absolute URL, lowercased.
fn authority_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    (!authority.is_empty()).then(|| authority.to_ascii_lowercase())
}

fn carries_session_cookie(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|pair| pair.trim_start().starts_with(&format!("{SESSION_COOKIE}=")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_is_host_and_port() {
        assert_eq!(
            authority_of("http://127.0.0.1:3000").as_deref(),
            Some("127.0.0.1:3000")
        );
        assert_eq!(
            authority_of("https://Hangar.example.com/login?x").as_deref(),
            Some("hangar.example.com")
        );
        assert_eq!(authority_of("null"), None);
    }

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; hangar_session=xyz".parse().unwrap());
        assert!(carries_session_cookie(&headers));
        headers.insert(header::COOKIE, "hangar_sessionx=1".parse().unwrap());
        assert!(!carries_session_cookie(&headers));
    }
}
