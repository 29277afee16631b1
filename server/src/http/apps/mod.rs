//! The doors to spaces' ports: HTTP and WebSocket traffic to any port of a running space,
//! for its owner and those it is shared with (others, and anonymous requests, get 404 as for
//! the space itself), and to tunnels (ports published at an unguessable public link).
//!
//! Two ways in (`crate::config::AppsServed`):
//! - an apps domain: each port on an origin of its own, `{port}--{space}--{owner}.{domain}`,
//!   routed by the `Host` the client sent. The domain is `--apps-domain`, or on a Hangar
//!   reached on this machine only `apps.localhost:<port>` (browsers resolve `*.localhost` to
//!   this machine by themselves). Hangar's session cookie never goes there: a browser signs in
//!   to an app through Hangar's own origin, which hands over a short-lived signed ticket that
//!   the app host exchanges for a cookie of its own ([`sign_in`]). Hangar's own pages never
//!   answer anywhere under the apps domain;
//! - by path on Hangar's origin (`/spaces/{owner}/{space}/ports/{port}/…`) only with an explicit
//!   `--path-apps true`. Pages of a space then run on Hangar's origin; answers to anyone but
//!   the space's owner are sandboxed so that their scripts cannot act as the visitor, and a
//!   public link there never redirects to another site.
//!
//! Who may use which port is the services' (`crate::services::apps`); the bytes go through the
//! proxy engine (`crate::proxy`), which cuts the exchange within a second once the right to it
//! ends. The desktop's WebSocket is [`desktop`], `hangar port-forward`'s is [`tcp`].

pub mod desktop;
pub mod sign_in;
pub mod tcp;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use app::api::autostop::ActivityKind;
use app::api::ssr::{Authorization, Caller, Presented};
use app::api::templates::Feature;
use app::ids::SpaceId;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header;
use http::StatusCode;

use super::AppState;
use crate::config::AppsServed;
use crate::entities::space;
use crate::error::ApiError;
use crate::proxy::connect::Upstream;
use crate::proxy::forward::{self, Cut, Forward};
use crate::proxy::page;
use crate::services::access::{SpaceRole, Use};
use crate::services::apps::route::{self, HostTarget, PathTarget};
use crate::services::apps::tickets::EXCHANGE_PATH;
use crate::services::watch::Need;
use crate::services::Services;

/// The client's address as the socket saw it.
fn client_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |info| {
            info.0.ip()
        })
}

/// What a request presented, as Hangar authenticates it on a proxied path: an `Authorization`
/// that is not one of Hangar's API tokens is the app's business (it is not passed on either),
/// and the session cookie decides. It proves who is asking only: what the request may do in
/// the space is the services' to decide, from its [`Use`] ([`Services::port_access`]).
fn hangar_credentials_only(presented: &Presented) -> Presented {
    let mut presented = presented.clone();
    let hangar_token = matches!(&presented.authorization, Authorization::Bearer(secret) if secret.starts_with("hgr_"));
    if !hangar_token {
        presented.authorization = Authorization::None;
    }
    presented.reads_only = true;
    presented
}

/// What a request to an app does in its space: GET and HEAD only read, unless they upgrade
/// the connection (a WebSocket carries anything); every other method may change something.
fn request_use(request: &Request) -> Use {
    let upgrade = request.headers().contains_key(header::UPGRADE);
    match *request.method() {
        http::Method::GET | http::Method::HEAD if !upgrade => Use::Read,
        _ => Use::Change,
    }
}

/// How the client reached Hangar.
fn scheme(state: &AppState) -> &'static str {
    if state.config.secure_cookies() {
        "https"
    } else {
        "http"
    }
}

/// The host the client asked for: the `Host` header (or an HTTP/2 authority), never a
/// forwarding header.
pub fn request_host(request: &Request) -> Option<String> {
    request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .map(|h| h.to_ascii_lowercase())
}

/// Where a running space's port is, or why the request cannot go there (502).
async fn upstream(
    state: &AppState,
    space: &space::Model,
    port: u16,
    html: bool,
) -> Result<Upstream, Response> {
    let unreachable = |message: String| {
        page::refusal(
            StatusCode::BAD_GATEWAY,
            "The space is not running",
            &message,
            html,
            true,
        )
    };
    if !space.state.is_running() {
        return Err(unreachable(format!(
            "the space `{}` is {}: start it, and this page opens",
            space.name, space.state
        )));
    }
    match state.proxy.reach(space).await {
        Ok(Some(reach)) => Ok(Upstream::new(&space.id, reach, port)),
        Ok(None) => Err(unreachable(format!(
            "the space `{}` has no running container right now",
            space.name
        ))),
        Err(e) => Err(page::refusal(
            StatusCode::BAD_GATEWAY,
            "Docker does not answer",
            &e.message,
            html,
            true,
        )),
    }
}

/// Ends the exchange once `caller` may no longer use `feature` of the space.
fn access_cut(services: &Services, caller: &Caller, space_id: &SpaceId, feature: Feature) -> Cut {
    let mut watch = services.watch_access(caller, Need::Feature(space_id.clone(), feature));
    Box::pin(async move { watch.lost().await })
}

/// Passes a request for a port of a space on, once `caller` proved they may use it.
async fn serve_port(
    state: &AppState,
    request: Request,
    caller: &Caller,
    space_id: &SpaceId,
    port: u16,
    owner: &str,
    prefix: Option<String>,
) -> Response {
    let html = page::accepts_html(request.headers());
    let intent = request_use(&request);
    let (space, role, feature) = match state
        .services
        .port_access(caller, space_id, port, intent)
        .await
    {
        Ok(found) => found,
        Err(refusal) => return page::from_error(&refusal, html),
    };
    let upstream = match upstream(state, &space, port, html).await {
        Ok(upstream) => upstream,
        Err(response) => return response,
    };
    // On Hangar's own origin, a page of someone else's space is sandboxed.
    let sandbox = prefix.is_some() && role != SpaceRole::Owner;
    let forward_to = Forward {
        upstream,
        prefix,
        client_ip: client_ip(&request),
        scheme: scheme(state),
        sandbox,
        redirects_stay_here: false,
        cut: access_cut(&state.services, caller, &space.id, feature),
        what: format!("port {port} of {owner}/{}", space.name),
        activity: Some(
            state
                .services
                .activity
                .toucher(&space.id, ActivityKind::Proxy),
        ),
    };
    let via = if forward_to.prefix.is_some() {
        "path"
    } else {
        "apps_domain"
    };
    let response = forward::forward(&state.proxy.client, request, forward_to).await;
    metrics::counter!("hangar_proxy_requests_total", "via" => via, "status" => response.status().as_u16().to_string())
        .increment(1);
    response
}

/// Passes a request for a tunnel on: no sign-in, the link is the key.
async fn serve_tunnel(
    state: &AppState,
    request: Request,
    secret: &str,
    prefix: Option<String>,
) -> Response {
    let html = page::accepts_html(request.headers());
    let found = match state.services.open_tunnel(secret).await {
        Ok(found) => found,
        Err(refusal) => return page::from_error(&refusal, html),
    };
    let upstream = match upstream(state, &found.space, found.port, html).await {
        Ok(upstream) => upstream,
        Err(response) => return response,
    };
    let services = state.services.clone();
    let tunnel_id = found.tunnel_id.clone();
    let space_id = found.space.id.clone();
    // Visitors of a public link are strangers: on Hangar's origin, always sandboxed, and never
    // sent on to another site (on an origin of its own, where it leads is the app's business).
    let on_hangars_origin = prefix.is_some();
    let forward_to = Forward {
        upstream,
        sandbox: on_hangars_origin,
        redirects_stay_here: on_hangars_origin,
        prefix,
        client_ip: client_ip(&request),
        scheme: scheme(state),
        activity: Some(
            state
                .services
                .activity
                .toucher(&space_id, ActivityKind::Tunnel),
        ),
        cut: Box::pin(async move { services.tunnel_lost(tunnel_id, space_id).await }),
        what: format!("the published port {}", found.port),
    };
    let response = forward::forward(&state.proxy.client, request, forward_to).await;
    metrics::counter!("hangar_proxy_requests_total", "via" => "tunnel", "status" => response.status().as_u16().to_string())
        .increment(1);
    response
}

/// Requests on Hangar's origin for `/spaces/{owner}/{space}/ports/{port}/…` and `/t/{secret}/…`.
/// Runs inside the session layer: the caller is the session's (or an API token's).
pub async fn path_apps(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(route) = route::parse_path(request.uri().path()) else {
        return next.run(request).await;
    };
    let html = page::accepts_html(request.headers());
    let apps = state.config.apps();
    if apps != AppsServed::Path {
        let message = match apps {
            AppsServed::Domain(_) => {
                "apps of spaces open on origins of their own, never on Hangar's: open the link \
                 from the space's page"
            }
            _ => {
                "this Hangar serves no apps of spaces: it is reached from other machines and \
                 has no apps domain; its operator gives --apps-domain (with wildcard DNS) to \
                 serve them"
            }
        };
        return page::refusal(
            StatusCode::NOT_FOUND,
            "Not served here",
            message,
            html,
            false,
        );
    }
    // `/…/ports/8080` → `/…/ports/8080/`: the app's relative links need the slash.
    if request.uri().path() == route.prefix {
        let query = request
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        return axum::response::IntoResponse::into_response(axum::response::Redirect::permanent(
            &format!("{}/{query}", route.prefix),
        ));
    }
    match route.target {
        PathTarget::Tunnel(secret) => {
            serve_tunnel(&state, request, &secret, Some(route.prefix)).await
        }
        PathTarget::Port(target) => {
            let (parts, body) = request.into_parts();
            let presented = match Presented::of(&parts) {
                Ok(presented) => hangar_credentials_only(&presented),
                Err(e) => return page::from_error(&e, html),
            };
            let caller = match state.api.caller(&presented).await {
                Ok(caller) => caller,
                // A browser is sent to sign in (whatever the space: nothing is revealed);
                // anything else learns no more than that there is nothing here.
                Err(_) if html && parts.method == http::Method::GET => {
                    return forward::redirect(&sign_in::login_url(
                        parts.uri.path_and_query().map_or("/", |pq| pq.as_str()),
                    ));
                }
                Err(_) => return page::from_error(&ApiError::not_found("space"), html),
            };
            let request = Request::from_parts(parts, body);
            let space_id = match state
                .services
                .space_id_by_names(&target.owner, &target.space)
                .await
            {
                Ok(Some(space_id)) => space_id,
                Ok(None) => return page::from_error(&ApiError::not_found("space"), html),
                Err(e) => return page::from_error(&e, html),
            };
            serve_port(
                &state,
                request,
                &caller,
                &space_id,
                target.port,
                &target.owner,
                Some(route.prefix),
            )
            .await
        }
    }
}

/// Every request whose `Host` is the apps domain or under it: never Hangar's own pages there.
/// Runs outside the session layer: Hangar's session does not exist on these origins.
pub async fn apps_domain(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let apps = state.config.apps();
    let Some(domain) = apps.domain() else {
        return next.run(request).await;
    };
    let Some(host) = request_host(&request) else {
        return next.run(request).await;
    };
    if !route::is_apps_host(&host, domain) {
        return next.run(request).await;
    }
    let html = page::accepts_html(request.headers());
    if request.uri().path() == EXCHANGE_PATH {
        return sign_in::exchange(&state, request.uri(), request.headers(), &host).await;
    }
    match route::parse_host(&host, domain) {
        None => page::refusal(
            StatusCode::NOT_FOUND,
            "No such app",
            "this address names no port of a space: open apps from the space's page in Hangar",
            html,
            false,
        ),
        Some(HostTarget::Tunnel(secret)) => serve_tunnel(&state, request, &secret, None).await,
        Some(HostTarget::Port(_)) => {
            match sign_in::app_session(&state, request.headers(), &host).await {
                Ok(Some(session)) => {
                    serve_port(
                        &state,
                        request,
                        &session.caller,
                        &session.space_id,
                        session.port,
                        &session.owner,
                        None,
                    )
                    .await
                }
                Ok(None) => sign_in::sign_in(&state, &request, &host, html),
                Err(e) => page::from_error(&e, html),
            }
        }
    }
}
