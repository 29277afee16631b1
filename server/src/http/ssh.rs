//! The gateway's JSON routes: the caller's `~/.ssh/config` entries, and the live sessions of
//! a space (web terminals and SSH connections).

use app::api::ssh::ssr::{request_host, SshApi};
use app::api::ssh::{LiveSessionsDto, SshConfigDto};
use app::api::ssr::Caller;
use app::error::ErrorBody;
use app::ids::SpaceId;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;

use crate::error::ApiResult;
use crate::services::Services;

/// The `~/.ssh/config` entries of the caller's own and shared spaces (`text` is the whole
/// file part, ready to paste).
#[utoipa::path(get, path = "/api/v1/me/ssh-config", tag = "me", responses((status = 200, body = SshConfigDto), (status = 401, body = ErrorBody)))]
pub async fn ssh_config(
    State(services): State<Services>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Json<SshConfigDto>> {
    Ok(Json(
        services.ssh_config(&caller, request_host(&headers)).await?,
    ))
}

/// How many web terminal sessions and SSH connections are open into the space (on the
/// server that answers).
#[utoipa::path(get, path = "/api/v1/spaces/{id}/sessions", tag = "spaces", params(("id" = String, Path, description = "the space id")), responses((status = 200, body = LiveSessionsDto), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn live_sessions(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<Json<LiveSessionsDto>> {
    Ok(Json(services.live_sessions(&caller, &id).await?))
}
