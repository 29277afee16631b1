//! `GET /api/v1/spaces/{id}/ports/{port}/tcp`: any TCP port of a running space as a WebSocket
//! of binary frames, for `hangar port-forward` (databases, debuggers, anything that is not
//! HTTP). Hangar dials the space's own container, as the HTTP proxy does.

use app::api::templates::Feature;
use app::error::ErrorBody;
use app::ids::SpaceId;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::desktop::{bridge, Counted};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{websocket, ValidPath};
use crate::http::middleware::csrf::origin_allowed;
use crate::http::AppState;
use crate::services::access::Caller;
use crate::services::apps::links::VNC_PORT;
use crate::services::watch::Need;

/// A TCP connection to a port of the space, carried as WebSocket binary frames both ways.
#[utoipa::path(get, path = "/api/v1/spaces/{id}/ports/{port}/tcp", tag = "ports", params(("id" = String, Path, description = "the space id"), ("port" = u16, Path, minimum = 1, maximum = 65535, description = "the port inside the space, 1 to 65535")), responses((status = 101, description = "switched to a WebSocket whose binary frames carry the TCP stream"), (status = 400, description = "a port out of 1 to 65535, or not a WebSocket upgrade", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "cross-origin upgrade, a read-only token, or the `port_forwarding` permission is missing", body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the space is not running", body = ErrorBody), (status = 429, description = "too many desktop and port-forward connections open", body = ErrorBody), (status = 503, description = "nothing answers on the port", body = ErrorBody)))]
pub async fn tcp(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath((id, port)): ValidPath<(SpaceId, u16)>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    if !origin_allowed(state.config.public_url.as_deref(), &headers) {
        return Err(ApiError::forbidden(
            "cross-origin WebSocket refused: forward ports with `hangar port-forward`",
        ));
    }
    if port == 0 {
        return Err(ApiError::invalid("port", "port must be 1 to 65535"));
    }
    let (space, _) = state
        .services
        .usable_space_with_feature(&caller, &id, Feature::PortForwarding)
        .await?;
    // The desktop's VNC server answers only those allowed the desktop.
    if port == VNC_PORT {
        state
            .services
            .usable_space_with_feature(&caller, &id, Feature::Vnc)
            .await?;
    }
    let slot = state.services.bridge_slot(&caller)?;
    let upgrade = websocket(upgrade, &state.config)?;
    let stream = state
        .proxy
        .dial(&space, port, &format!("port {port} of the space"))
        .await?;
    let watch = state.services.watch_access(
        &caller,
        Need::Feature(space.id.clone(), Feature::PortForwarding),
    );
    let activity = state
        .services
        .activity
        .toucher(&space.id, app::api::autostop::ActivityKind::Bridge);
    Ok(upgrade.on_upgrade(move |socket| {
        bridge(
            socket,
            stream,
            watch,
            slot,
            "port forward",
            activity,
            Counted::Both,
        )
    }))
}
