//! The JSON API of a space's ports: what listens (now and live), tunnels (public links) and
//! the VS Code tunnel.

use std::convert::Infallible;

use app::api::ports::{
    ssr::PortsApi, CreateTunnel, SpacePorts, TunnelCreated, TunnelDto, VscodeTunnelStatus,
};
use app::api::ssr::Caller;
use app::error::ErrorBody;
use app::ids::{SpaceId, TunnelId};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::{self, Stream, StreamExt};

use crate::error::ApiResult;
use crate::http::extract::ValidJson;
use crate::services::apps::scan::EVERY as SCAN_EVERY;
use crate::services::watch::Need;
use crate::services::Services;

/// What listens in a running space now, with where to open each port.
#[utoipa::path(get, path = "/api/v1/spaces/{id}/ports", tag = "ports", params(("id" = String, Path, description = "the space id")), responses((status = 200, body = SpacePorts), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn space_ports(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<Json<SpacePorts>> {
    Ok(Json(services.space_ports(&caller, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/spaces/{id}/tunnels", tag = "ports", params(("id" = String, Path, description = "the space id")), responses((status = 200, body = [TunnelDto]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_tunnels(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<Json<Vec<TunnelDto>>> {
    Ok(Json(services.list_tunnels(&caller, &id).await?))
}

/// Publishes a port at a public link (shown once), within the owner's tunnel quota.
#[utoipa::path(post, path = "/api/v1/spaces/{id}/tunnels", tag = "ports", request_body = CreateTunnel, params(("id" = String, Path, description = "the space id")), responses((status = 201, body = TunnelCreated), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "a sharee, or the `tunnels` permission is missing", body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "quota_exceeded, or no public links are served", body = ErrorBody)))]
pub async fn create_tunnel(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
    ValidJson(input): ValidJson<CreateTunnel>,
) -> ApiResult<(StatusCode, Json<TunnelCreated>)> {
    Ok((
        StatusCode::CREATED,
        Json(services.create_tunnel(&caller, &id, input).await?),
    ))
}

/// Revokes a public link at once: what is open through it closes.
#[utoipa::path(delete, path = "/api/v1/tunnels/{id}", tag = "ports", params(("id" = String, Path, description = "the tunnel id")), responses((status = 204, description = "revoked"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_tunnel(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<TunnelId>,
) -> ApiResult<StatusCode> {
    services.revoke_tunnel(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tunnels of the caller's own spaces.
#[utoipa::path(get, path = "/api/v1/me/tunnels", tag = "me", responses((status = 200, body = [TunnelDto]), (status = 401, body = ErrorBody)))]
pub async fn my_tunnels(
    State(services): State<Services>,
    caller: Caller,
) -> ApiResult<Json<Vec<TunnelDto>>> {
    Ok(Json(services.my_tunnels(&caller).await?))
}

/// The VS Code tunnel of a running space and its sign-in code.
#[utoipa::path(get, path = "/api/v1/spaces/{id}/vscode-tunnel", tag = "ports", params(("id" = String, Path, description = "the space id")), responses((status = 200, body = VscodeTunnelStatus), (status = 401, body = ErrorBody), (status = 403, description = "an API token without the `write` scope (the code signs the tunnel in for whoever enters it), or the `vscode_tunnel` permission is missing", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn vscode_tunnel(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<Json<VscodeTunnelStatus>> {
    Ok(Json(services.vscode_tunnel(&caller, &id).await?))
}

/// The ports listening in a space, pushed as they change (server-sent events named `ports`,
/// each a SpacePorts).
#[utoipa::path(get, path = "/api/v1/spaces/{id}/ports/live", tag = "ports", params(("id" = String, Path, description = "the space id")), responses((status = 200, description = "text/event-stream of `ports` events (each a SpacePorts)", content_type = "text/event-stream"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn live_ports(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let (space, _) = services.visible_space(&caller, &id).await?;
    let receiver = services
        .apps
        .scans
        .watch(services.runtime.clone(), &space.id);
    let mut lost = services.watch_access(&caller, Need::Space(space.id.clone()));
    let shutdown = services.shutdown_signal();
    let updates = stream::unfold(
        (receiver, services, caller, space.id, None::<SpacePorts>),
        |(mut receiver, services, caller, space_id, mut last)| async move {
            loop {
                if last.is_some() {
                    // A new scan; or a while, since the report also follows the space's state,
                    // which the scan does not see (ports found while the space was still
                    // `starting` must show once it is `running`).
                    tokio::select! {
                        changed = receiver.changed() => changed.ok()?,
                        () = tokio::time::sleep(SCAN_EVERY) => {}
                    }
                }
                let scan = receiver.borrow_and_update().clone();
                let report = services.ports_report(&caller, &space_id, scan).await.ok()?;
                if last.as_ref() != Some(&report) {
                    let event = Event::default().event("ports").json_data(&report).ok()?;
                    last = Some(report);
                    return Some((Ok(event), (receiver, services, caller, space_id, last)));
                }
            }
        },
    );
    let ended = async move {
        tokio::select! {
            () = shutdown => {}
            _ = lost.lost() => {}
        }
    };
    Ok(Sse::new(updates.take_until(ended))
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15))))
}
