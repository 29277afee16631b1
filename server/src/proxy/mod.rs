//! The port proxy: HTTP and WebSocket traffic to any port of a running space, for its owner
//! and those it is shared with (others, and anonymous requests, get 404 as for the space
//! itself), and to tunnels (ports published at an unguessable public link).
//!
//! Two ways in:
//! - an apps domain (`--apps-domain`): each port on an origin of its own,
//!   `{port}--{space}--{owner}.{domain}`, routed by the `Host` the client sent. Hangar's session
//!   cookie never goes there: a browser signs in to an app through Hangar's own origin, which
//!   hands over a short-lived signed ticket that the app host exchanges for a cookie of its
//!   own ([`apps`]);
//! - by path on Hangar's origin (`/spaces/{owner}/{space}/ports/{port}/…`) when no apps domain
//!   is set and `--path-apps` is on. Pages of a space then run on Hangar's origin; answers to
//!   anyone but the space's owner are sandboxed so that their scripts cannot act as the visitor.
//!
//! Either way the proxy dials the space's own container (its address from the runtime), strips
//! Hangar's cookies and `Authorization`, sets `X-Forwarded-*`/`Forwarded`, streams bodies,
//! joins upgrades, and cuts the exchange within a second once the right to it ends. The VNC
//! desktop is bridged by [`vnc`]; [`ports`] finds what listens in a space; [`launch`] starts
//! code-server, the desktop and the VS Code tunnel when a space starts.

pub mod apps;
pub mod connect;
pub mod forward;
pub mod launch;
pub mod links;
pub mod page;
pub mod ports;
pub mod route;
pub mod tcp;
pub mod vnc;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use app::api::ssr::Caller;
use app::api::templates::Feature;
use app::ids::SpaceId;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header;
use http::StatusCode;

use crate::entities::space;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::runtime::{Reach, Runtime};
use crate::services::access::SpaceRole;
use crate::services::watch::Need;
use crate::services::Services;
use crate::state::AppState;
use connect::{SpaceStream, Upstream};
use forward::{Cut, Forward, HttpClient};
use links::CODE_SERVER_PORT;
use route::{HostTarget, PathTarget, PortTarget};

/// What the proxy keeps between requests.
pub struct Proxy {
    pub client: HttpClient,
    /// How each space is reached, by the container it belongs to (a new container, a new
    /// look).
    reaches: Mutex<HashMap<SpaceId, (String, Reach)>>,
    /// The scans of what listens in spaces that someone is watching.
    pub ports: ports::PortScans,
    /// Signs the tickets that sign browsers in to app domains.
    signing_key: Vec<u8>,
    /// Desktop and port-forward connections open, per user (each holds a TCP connection into
    /// a space).
    pub bridges: std::sync::Arc<crate::services::slots::Slots>,
}

/// Desktop and port-forward connections one user may have open at once.
pub const MAX_BRIDGES_PER_USER: usize = 64;

impl Proxy {
    pub fn new(signing_key: Vec<u8>, runtime: Arc<dyn Runtime>) -> Self {
        Self {
            client: forward::client(connect::SpaceConnector::new(runtime)),
            reaches: Mutex::default(),
            ports: ports::PortScans::default(),
            signing_key,
            bridges: std::sync::Arc::default(),
        }
    }

    /// A place among the caller's open bridges, or 429 when they have the most.
    pub fn bridge_slot(&self, caller: &Caller) -> ApiResult<crate::services::slots::Slot> {
        self.bridges
            .take(caller.id(), MAX_BRIDGES_PER_USER)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "you have {MAX_BRIDGES_PER_USER} desktop and port-forward connections open, \
                         the most allowed: close one"
                    ),
                )
            })
    }

    /// How the space's running container is reached; None when it has none.
    pub async fn reach(
        &self,
        services: &Services,
        space: &space::Model,
    ) -> ApiResult<Option<Reach>> {
        let container = space.container_id.clone().unwrap_or_default();
        {
            let known = self.reaches.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((id, reach)) = known.get(&space.id) {
                if *id == container && !container.is_empty() {
                    return Ok(Some(*reach));
                }
            }
        }
        let found = services
            .runtime
            .reach(&space.id)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
        let mut known = self.reaches.lock().unwrap_or_else(|p| p.into_inner());
        match found {
            Some(reach) if !container.is_empty() => {
                if known.len() > 4096 {
                    known.clear();
                }
                known.insert(space.id.clone(), (container, reach));
            }
            _ => {
                known.remove(&space.id);
            }
        }
        Ok(found)
    }

    /// A connection to `port` of the space's running container, or 503 saying why not
    /// (`what` names the port).
    pub async fn dial(
        &self,
        services: &Services,
        space: &space::Model,
        port: u16,
        what: &str,
    ) -> ApiResult<SpaceStream> {
        let reach = self
            .reach(services, space)
            .await?
            .ok_or_else(|| ApiError::unavailable("the space has no running container right now"))?;
        connect::dial(
            services.runtime.as_ref(),
            &Upstream::new(&space.id, reach, port),
            what,
        )
        .await
    }
}

/// The client's address as the socket saw it.
fn client_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |info| {
            info.0.ip()
        })
}

/// The request as Hangar authenticates it on a proxied path: an `Authorization` that is not
/// one of Hangar's API tokens is the app's business (it is not passed on either), and the
/// session cookie decides.
fn hangar_credentials_only(parts: &http::request::Parts) -> http::request::Parts {
    let mut parts = parts.clone();
    let hangar_token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer hgr_"));
    if !hangar_token {
        parts.headers.remove(header::AUTHORIZATION);
    }
    parts
}

/// How the client reached Hangar.
pub fn scheme(state: &AppState) -> &'static str {
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

/// The feature that opens `port`: code-server's own port with the `code_server` feature, any
/// port with `port_forwarding`.
async fn port_access(
    services: &Services,
    caller: &Caller,
    space_id: &SpaceId,
    port: u16,
) -> ApiResult<(space::Model, SpaceRole, Feature)> {
    if port == CODE_SERVER_PORT {
        match services
            .space_with_feature(caller, space_id, Feature::CodeServer)
            .await
        {
            Ok((space, role)) => return Ok((space, role, Feature::CodeServer)),
            Err(refusal) if refusal.code == ErrorCode::Forbidden => {
                return services
                    .space_with_feature(caller, space_id, Feature::PortForwarding)
                    .await
                    .map(|(space, role)| (space, role, Feature::PortForwarding))
                    .map_err(|_| refusal);
            }
            Err(other) => return Err(other),
        }
    }
    services
        .space_with_feature(caller, space_id, Feature::PortForwarding)
        .await
        .map(|(space, role)| (space, role, Feature::PortForwarding))
}

/// The space the names point at, if it exists (visibility is checked by the caller).
async fn space_named(services: &Services, target: &PortTarget) -> ApiResult<Option<space::Model>> {
    services.space_by_names(&target.owner, &target.space).await
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
    match state.proxy.reach(&state.services, space).await {
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
    let (space, role, feature) = match port_access(&state.services, caller, space_id, port).await {
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
        cut: access_cut(&state.services, caller, &space.id, feature),
        what: format!("port {port} of {owner}/{}", space.name),
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
    let forward_to = Forward {
        upstream,
        // Visitors of a public link are strangers: on Hangar's origin, always sandboxed.
        sandbox: prefix.is_some(),
        prefix,
        client_ip: client_ip(&request),
        scheme: scheme(state),
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
pub async fn path_apps(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(route) = route::parse_path(request.uri().path()) else {
        return next.run(request).await;
    };
    let html = page::accepts_html(request.headers());
    if state.config.apps_domain.is_some() || !state.config.path_apps {
        let message = if state.config.apps_domain.is_some() {
            "apps of spaces are served on the apps domain: open the link from the space's page"
        } else {
            "this Hangar does not serve apps by path (--path-apps false)"
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
            let caller = match state.api.caller(&hangar_credentials_only(&parts)).await {
                Ok(caller) => caller,
                // A browser is sent to sign in (whatever the space: nothing is revealed);
                // anything else learns no more than that there is nothing here.
                Err(_) if html && parts.method == http::Method::GET => {
                    return forward::redirect(&apps::login_url(
                        parts.uri.path_and_query().map_or("/", |pq| pq.as_str()),
                    ));
                }
                Err(_) => return page::from_error(&ApiError::not_found("space"), html),
            };
            let request = Request::from_parts(parts, body);
            let space = match space_named(&state.services, &target).await {
                Ok(Some(space)) => space,
                Ok(None) => return page::from_error(&ApiError::not_found("space"), html),
                Err(e) => return page::from_error(&e, html),
            };
            serve_port(
                &state,
                request,
                &caller,
                &space.id,
                target.port,
                &target.owner,
                Some(route.prefix),
            )
            .await
        }
    }
}

/// Every request whose `Host` is under the apps domain: never Hangar's own pages there.
/// Runs outside the session layer: Hangar's session does not exist on these origins.
pub async fn apps_domain(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(domain) = state.config.apps_domain.clone() else {
        return next.run(request).await;
    };
    let Some(host) = request_host(&request) else {
        return next.run(request).await;
    };
    if route::app_label(&host, &domain).is_none() {
        return next.run(request).await;
    }
    let html = page::accepts_html(request.headers());
    if request.uri().path() == apps::EXCHANGE_PATH {
        return apps::exchange(&state, request.uri(), request.headers(), &host).await;
    }
    match route::parse_host(&host, &domain) {
        None => page::refusal(
            StatusCode::NOT_FOUND,
            "No such app",
            "this address names no port of a space: open apps from the space's page in Hangar",
            html,
            false,
        ),
        Some(HostTarget::Tunnel(secret)) => serve_tunnel(&state, request, &secret, None).await,
        Some(HostTarget::Port(_)) => {
            match apps::app_session(&state, request.headers(), &host).await {
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
                Ok(None) => apps::sign_in(&state, &request, &host, html),
                Err(e) => page::from_error(&e, html),
            }
        }
    }
}
