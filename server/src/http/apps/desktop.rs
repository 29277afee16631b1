//! `GET /api/v1/spaces/{id}/vnc`: the desktop of a space for noVNC. Hangar bridges the
//! browser's WebSocket to the VNC server's TCP port inside the space itself, so no VNC port is
//! ever exposed and no websockify runs: the VNC server answers only Hangar, and Hangar only a
//! signed-in user of Hangar's own pages allowed the `vnc` feature.

use app::api::autostop::ActivityKind;
use app::api::templates::Feature;
use app::error::ErrorBody;
use app::ids::SpaceId;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{ApiError, ApiResult};
use crate::http::extract::websocket;
use crate::http::middleware::csrf::origin_allowed;
use crate::http::AppState;
use crate::proxy::connect::SpaceStream;
use crate::services::access::{Caller, Use};
use crate::services::activity::Touch;
use crate::services::apps::links::VNC_PORT;
use crate::services::watch::{AccessWatch, Need};

/// The VNC stream as WebSocket binary frames (noVNC's protocol), both ways.
#[utoipa::path(get, path = "/api/v1/spaces/{id}/vnc", tag = "ports", params(("id" = String, Path, description = "the space id")), responses((status = 101, description = "switched to the desktop's WebSocket (binary frames carry the RFB stream)"), (status = 401, body = ErrorBody), (status = 403, description = "cross-origin upgrade, an API token without the `write` scope (the desktop's keyboard is a shell), or the `vnc` permission is missing", body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the space is not running", body = ErrorBody), (status = 429, description = "too many desktop and port-forward connections open", body = ErrorBody), (status = 503, description = "the desktop does not answer", body = ErrorBody)))]
pub async fn vnc(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<SpaceId>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    if !origin_allowed(state.config.public_url.as_deref(), &headers) {
        return Err(ApiError::forbidden(
            "cross-origin WebSocket refused: open the desktop from Hangar's own pages",
        ));
    }
    let (space, _) = state
        .services
        .space_with_feature(&caller, &id, Feature::Vnc, Use::Change)
        .await?;
    if !space.state.is_running() {
        return Err(ApiError::wrong_state(
            space.state,
            format!("the space is {}: start it to open its desktop", space.state),
        ));
    }
    let slot = state.services.bridge_slot(&caller)?;
    let upgrade = websocket(upgrade, &state.config)?;
    let desktop = state.proxy.dial(&space, VNC_PORT, "the desktop").await?;
    let watch = state
        .services
        .watch_access(&caller, Need::Feature(space.id.clone(), Feature::Vnc));
    let activity = state
        .services
        .activity
        .toucher(&space.id, ActivityKind::Bridge);
    Ok(upgrade.protocols(["binary"]).on_upgrade(move |socket| {
        bridge(
            socket,
            desktop,
            watch,
            slot,
            "desktop",
            activity,
            Counted::Input,
        )
    }))
}

/// What of a bridge's traffic is the space's activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Counted {
    /// Bytes either way (a forwarded port: a database session, a build's output).
    Both,
    /// The viewer's keys, pointer and clipboard only (the desktop): noVNC asks for screen
    /// updates all the time and a clock or a blinking cursor answers them, while nobody is
    /// there.
    Input,
}

/// The RFB client messages a person makes: KeyEvent, PointerEvent, ClientCutText (RFC 6143
/// 7.5.4-7.5.6). noVNC sends each message in a frame of its own, so its first byte says.
fn is_desktop_input(frame: &[u8]) -> bool {
    matches!(frame.first(), Some(4..=6))
}

/// Carries a TCP connection inside a space over a WebSocket's binary frames, both ways, until
/// either side ends or the caller's right to it goes (`what` names it in the log).
pub(super) async fn bridge(
    socket: WebSocket,
    desktop: SpaceStream,
    mut watch: AccessWatch,
    // Held until the connection ends: the per-user count of bridges.
    _slot: crate::services::slots::Slot,
    what: &'static str,
    activity: Touch,
    counted: Counted,
) {
    let (mut to_browser, mut from_browser) = socket.split();
    let (mut from_desktop, mut to_desktop) = tokio::io::split(desktop);
    let mut typed = activity.clone();
    let mut shown = activity;
    let up = async {
        while let Some(Ok(message)) = from_browser.next().await {
            let data = match message {
                Message::Binary(data) => data,
                Message::Close(_) => break,
                _ => continue,
            };
            if counted == Counted::Both || is_desktop_input(&data) {
                typed.touch();
            }
            if to_desktop.write_all(&data).await.is_err() {
                break;
            }
            metrics::counter!("hangar_proxy_bridged_bytes_total", "what" => what, "direction" => "up")
                .increment(data.len() as u64);
        }
    };
    let down = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match from_desktop.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if counted == Counted::Both {
                        shown.touch();
                    }
                    metrics::counter!("hangar_proxy_bridged_bytes_total", "what" => what, "direction" => "down")
                        .increment(n as u64);
                    let frame = Message::Binary(bytes::Bytes::copy_from_slice(&buffer[..n]));
                    if to_browser.send(frame).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to_browser.send(Message::Close(None)).await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
        reason = watch.lost() => tracing::info!(%reason, what, "closed a bridged connection"),
    }
}
