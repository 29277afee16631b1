//! What every request passes through before its handler: who the client is, the
//! cross-origin check, what it presents to prove who is asking, request metrics, and the
//! site files' caching.

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
