//! The JSON API of spaces: listing, creating, their lifecycle, history, storage and shares.

use app::api::spaces::ssr::{Sharing, SpaceLifecycle, SpaceQueries};
use app::api::spaces::{
    AuditEventDto, CreateSpace, ShareDto, SpaceDto, SpaceListQuery, VolumeUsage,
};
use app::api::ssr::Caller;
use app::error::ErrorBody;
use app::ids::SpaceId;
use app::lifecycle::Action;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::error::ApiResult;
use crate::http::extract::{ValidJson, ValidQuery};
use crate::services::Services;

type Created<T> = (StatusCode, Json<T>);

/// The space's audit trail since it was created, newest first.
#[utoipa::path(get, path = "/api/v1/spaces/{id}/history", tag = "spaces", params(("id" = String, Path, description = "the resource id")), responses((status = 200, body = [AuditEventDto])))]
pub async fn space_history(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<Json<Vec<AuditEventDto>>> {
    Ok(Json(services.space_history(&caller, &id).await?))
}

/// What each of the space's volumes holds, measured now: used bytes against its size.
#[utoipa::path(get, path = "/api/v1/spaces/{id}/storage", tag = "spaces",  params(("id" = String, Path, description = "the resource id")), responses((status = 200, body = [VolumeUsage]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn space_storage(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<Json<Vec<VolumeUsage>>> {
    Ok(Json(services.space_storage(&caller, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/spaces", tag = "spaces", params(SpaceListQuery), responses((status = 200, description = "a page of spaces, oldest first", body = [SpaceDto]), (status = 403, description = "`all` asked by a member", body = ErrorBody)))]
pub async fn list_spaces(
    State(services): State<Services>,
    caller: Caller,
    ValidQuery(query): ValidQuery<SpaceListQuery>,
) -> ApiResult<Json<Vec<SpaceDto>>> {
    Ok(Json(services.list_spaces(&caller, query).await?))
}

#[utoipa::path(post, path = "/api/v1/spaces", tag = "spaces", request_body = CreateSpace, responses((status = 201, body = SpaceDto), (status = 400, description = "invalid input, such as a template that does not exist or is not available", body = ErrorBody), (status = 403, description = "a member naming another owner", body = ErrorBody), (status = 409, description = "quota_exceeded, or the name is taken", body = ErrorBody), (status = 503, description = "the Docker engine could not make the volumes; nothing was kept", body = ErrorBody)))]
pub async fn create_space(
    State(services): State<Services>,
    caller: Caller,
    ValidJson(input): ValidJson<CreateSpace>,
) -> ApiResult<Created<SpaceDto>> {
    Ok((
        StatusCode::CREATED,
        Json(services.create_space(&caller, input).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/spaces/{id}", tag = "spaces", params(("id" = String, Path, description = "the resource id")), responses((status = 200, body = SpaceDto)))]
pub async fn get_space(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<Json<SpaceDto>> {
    Ok(Json(services.get_space(&caller, &id).await?))
}

/// 204 when deleted at once; 202 with the space when it must stop first.
#[utoipa::path(delete, path = "/api/v1/spaces/{id}", tag = "spaces", params(("id" = String, Path, description = "the resource id")), responses((status = 204, description = "deleted"), (status = 202, description = "stopping first", body = SpaceDto), (status = 403, description = "shared with the caller: only its owner or an admin may", body = ErrorBody), (status = 409, description = "invalid_state", body = ErrorBody)))]
pub async fn delete_space(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<Response> {
    Ok(match services.delete_space(&caller, &id).await? {
        Some(stopping) => (StatusCode::ACCEPTED, Json(stopping)).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

async fn transition(
    services: Services,
    caller: Caller,
    id: SpaceId,
    action: Action,
) -> ApiResult<(StatusCode, Json<SpaceDto>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(services.transition(&caller, &id, action).await?),
    ))
}

#[utoipa::path(post, path = "/api/v1/spaces/{id}/start", tag = "spaces", params(("id" = String, Path, description = "the resource id")), responses((status = 202, body = SpaceDto), (status = 403, description = "shared with the caller: only its owner or an admin may", body = ErrorBody), (status = 409, description = "quota_exceeded or invalid_state", body = ErrorBody)))]
pub async fn start_space(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<(StatusCode, Json<SpaceDto>)> {
    transition(services, caller, id, Action::Start).await
}

#[utoipa::path(post, path = "/api/v1/spaces/{id}/stop", tag = "spaces", params(("id" = String, Path, description = "the resource id")), responses((status = 202, body = SpaceDto), (status = 403, description = "shared with the caller: only its owner or an admin may", body = ErrorBody), (status = 409, description = "invalid_state", body = ErrorBody)))]
pub async fn stop_space(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<(StatusCode, Json<SpaceDto>)> {
    transition(services, caller, id, Action::Stop).await
}

#[utoipa::path(post, path = "/api/v1/spaces/{id}/restart", tag = "spaces", params(("id" = String, Path, description = "the resource id")), responses((status = 202, body = SpaceDto), (status = 403, description = "shared with the caller: only its owner or an admin may", body = ErrorBody), (status = 409, description = "quota_exceeded or invalid_state", body = ErrorBody)))]
pub async fn restart_space(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<(StatusCode, Json<SpaceDto>)> {
    transition(services, caller, id, Action::Restart).await
}

#[utoipa::path(get, path = "/api/v1/spaces/{id}/shares", tag = "spaces", params(("id" = String, Path, description = "the resource id")), responses((status = 200, body = [ShareDto]), (status = 403, description = "shared with the caller: only its owner or an admin may", body = ErrorBody)))]
pub async fn list_shares(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<Json<Vec<ShareDto>>> {
    Ok(Json(services.list_shares(&caller, &id).await?))
}

#[utoipa::path(put, path = "/api/v1/spaces/{id}/shares/{user_id}", tag = "spaces", params(("id" = String, Path, description = "the space id"), ("user_id" = String, Path, description = "a user id or username")), responses((status = 200, body = [ShareDto]), (status = 400, description = "there is no such user, or it is the owner", body = ErrorBody), (status = 403, description = "shared with the caller: only its owner or an admin may", body = ErrorBody)))]
pub async fn share_space(
    State(services): State<Services>,
    caller: Caller,
    Path((id, user)): Path<(SpaceId, String)>,
) -> ApiResult<Json<Vec<ShareDto>>> {
    Ok(Json(services.share_space(&caller, &id, &user).await?))
}

#[utoipa::path(delete, path = "/api/v1/spaces/{id}/shares/{user_id}", tag = "spaces", params(("id" = String, Path, description = "the space id"), ("user_id" = String, Path, description = "a user id or username")), responses((status = 200, body = [ShareDto]), (status = 400, description = "there is no such user", body = ErrorBody), (status = 403, description = "shared with the caller: only its owner or an admin may", body = ErrorBody)))]
pub async fn revoke_share(
    State(services): State<Services>,
    caller: Caller,
    Path((id, user)): Path<(SpaceId, String)>,
) -> ApiResult<Json<Vec<ShareDto>>> {
    Ok(Json(services.revoke_share(&caller, &id, &user).await?))
}
