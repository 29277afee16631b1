//! The JSON API of repositories in spaces: cloning a space's repository again, the caller's
//! dotfiles repository.

use app::api::repos::{ssr::ReposApi, DotfilesSetting};
use app::api::spaces::SpaceDto;
use app::api::ssr::Caller;
use app::error::ErrorBody;
use app::ids::SpaceId;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::error::ApiResult;
use crate::http::extract::ValidJson;
use crate::services::Services;

/// Clones the space's repository again, in the background, when its clone failed (the folder
/// must be absent: Hangar never clones over existing work); the space's `repository.state`
/// and `setup_log` follow it.
#[utoipa::path(post, path = "/api/v1/spaces/{id}/clone", tag = "spaces", params(("id" = String, Path, description = "the resource id")), responses((status = 202, body = SpaceDto), (status = 403, description = "shared with the caller: only its owner or an admin may", body = ErrorBody), (status = 409, description = "the space is not running, has no repository, or its clone did not fail", body = ErrorBody)))]
pub async fn clone_again(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<(StatusCode, Json<SpaceDto>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(services.clone_again(&caller, &id).await?),
    ))
}

/// The caller's dotfiles repository.
#[utoipa::path(get, path = "/api/v1/me/dotfiles", tag = "me", responses((status = 200, body = DotfilesSetting)))]
pub async fn dotfiles(
    State(services): State<Services>,
    caller: Caller,
) -> ApiResult<Json<DotfilesSetting>> {
    Ok(Json(services.dotfiles(&caller).await?))
}

/// Sets the caller's dotfiles repository (null: none): cloned into `~/.dotfiles` at the first
/// start of each space made from then on, and installed.
#[utoipa::path(put, path = "/api/v1/me/dotfiles", tag = "me", request_body = DotfilesSetting, responses((status = 200, body = DotfilesSetting), (status = 400, description = "not a repository URL (or one with credentials in it)", body = ErrorBody)))]
pub async fn set_dotfiles(
    State(services): State<Services>,
    caller: Caller,
    ValidJson(input): ValidJson<DotfilesSetting>,
) -> ApiResult<Json<DotfilesSetting>> {
    Ok(Json(services.set_dotfiles(&caller, input).await?))
}
