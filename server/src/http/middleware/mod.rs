//! What every request passes through before its handler: who the client is, the
//! cross-origin check, what it presents to prove who is asking, request metrics, the site
//! files' caching, the refusal to be framed, and what of a request may be logged.

pub mod client;
pub mod csrf;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use app::api::ssr::{Authorization, Presented};
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, Method};
use tower_sessions::Session;

use crate::error::ApiError;

/// Reads once what the request presents to prove who is asking ([`Presented`]: its session,
/// its `Authorization`, its client) for every door after it. Runs inside the session layer
/// and after [`client::resolve_client`].
pub async fn read_credentials(mut request: Request, next: Next) -> Response {
    let Some(session) = request.extensions().get::<Session>().cloned() else {
        return ApiError::internal("the session layer is missing").into_response();
    };
    let client = match request.extensions().get::<client::Client>() {
        Some(client) => client.ip,
        None => request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip()),
    };
    let presented = Presented {
        session,
        authorization: Authorization::parse(request.headers().get(header::AUTHORIZATION)),
        client,
        reads_only: matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        ),
        session_user: Arc::default(),
    };
    request.extensions_mut().insert(presented);
    next.run(request).await
}

/// Records every request: `hangar_http_requests_total` and
/// `hangar_http_request_duration_seconds` by method, route pattern and status.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    // The route's pattern, not the path: ids would make every space a series of its own.
    // Written `/spaces/:id`, as some text-format parsers stop at a `}` inside a label.
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || "unmatched".to_owned(),
        |p| p.as_str().replace('{', ":").replace('}', ""),
    );
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("hangar_http_requests_total", &labels).increment(1);
    metrics::histogram!("hangar_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The site's files (`/pkg/`: the wasm, its parts, the JS, the style sheet) keep their names
/// from one release to the next, and a main wasm only works with the parts built with it:
/// browsers ask again each time (a cheap 304 when nothing changed) rather than guess how long a
/// file stays fresh and mix an old main wasm with new parts.
pub async fn revalidate_site_files(request: Request, next: Next) -> Response {
    let site_file = request.uri().path().starts_with("/pkg/");
    let mut response = next.run(request).await;
    if site_file {
        response
            .headers_mut()
            .entry(header::CACHE_CONTROL)
            .or_insert(http::HeaderValue::from_static("no-cache"));
    }
    response
}

/// Hangar's own pages and answers may not be shown inside another page (clickjacking: an app
/// beside Hangar, on the same site, could otherwise frame the admin pages under a decoy).
/// Hangar frames none of its own pages (the desktop opens in a tab of its own). What an app
/// answers through the proxy is the app's to decide, and left alone.
pub async fn refuse_framing(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if response
        .extensions()
        .get::<crate::proxy::forward::AppAnswer>()
        .is_none()
    {
        let headers = response.headers_mut();
        headers.insert(
            header::X_FRAME_OPTIONS,
            http::HeaderValue::from_static("DENY"),
        );
        headers.append(
            header::CONTENT_SECURITY_POLICY,
            http::HeaderValue::from_static("frame-ancestors 'none'"),
        );
    }
    response
}

/// Query parameters that carry secrets: an app sign-in's ticket; the code and the states a
/// provider's callback and the command line's browser sign-in carry.
const SECRET_PARAMETERS: [&str; 4] = ["ticket", "code", "state", "cli_state"];

/// What of a request's address may go to the logs: its path and query, with the secrets
/// some carry masked (a public link's `/t/<secret>/`, the parameters above). Never the host
/// (a public link on an apps domain is `t--<secret>.…`).
pub fn loggable_path(uri: &http::Uri) -> String {
    let path = uri.path();
    let path = match path.strip_prefix("/t/") {
        Some(rest) => {
            let after = rest.find('/').map_or("", |at| &rest[at..]);
            format!("/t/<secret>{after}")
        }
        None => path.to_owned(),
    };
    match uri.query() {
        None => path,
        Some(query) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    // App tickets, and a sign-in's code and states at the provider's callback.
                    Some((key, _))
                        if SECRET_PARAMETERS
                            .iter()
                            .any(|s| key.eq_ignore_ascii_case(s)) =>
                    {
                        format!("{key}=<secret>")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_the_log() {
        let logged = |uri: &str| loggable_path(&uri.parse().unwrap());
        let secret = "0123456789abcdef0123456789abcdef";
        assert_eq!(logged(&format!("/t/{secret}/x?y=1")), "/t/<secret>/x?y=1");
        assert_eq!(logged(&format!("/t/{secret}")), "/t/<secret>");
        assert_eq!(
            logged(&format!(
                "http://t--{secret}.apps.localhost:3000/__hangar/auth?ticket={secret}.1.x&next=%2F"
            )),
            "/__hangar/auth?ticket=<secret>&next=%2F"
        );
        assert_eq!(
            logged(&format!(
                "/api/v1/auth/oidc/callback?code={secret}&state={secret}&iss=x"
            )),
            "/api/v1/auth/oidc/callback?code=<secret>&state=<secret>&iss=x"
        );
        assert_eq!(
            logged(&format!("/login?cli_state={secret}")),
            "/login?cli_state=<secret>"
        );
        assert_eq!(
            logged("/spaces/ann/api?tab=ports"),
            "/spaces/ann/api?tab=ports"
        );
    }
}
