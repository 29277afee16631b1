//! The JSON API of groups and their members (admins).

use app::api::groups::{ssr::GroupsApi, CreateGroup, GroupDto, UpdateGroup};
use app::api::page::PageQuery;
use app::api::ssr::AdminCaller;
use app::error::ErrorBody;
use app::ids::{GroupId, UserId};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::error::ApiResult;
use crate::http::extract::{ValidJson, ValidQuery};
use crate::services::Services;

type Created<T> = (StatusCode, Json<T>);

#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", params(PageQuery), responses((status = 200, description = "a page of groups, by name", body = [GroupDto]), (status = 403, description = "admins only", body = ErrorBody)))]
pub async fn list_groups(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    ValidQuery(page): ValidQuery<PageQuery>,
) -> ApiResult<Json<Vec<GroupDto>>> {
    Ok(Json(services.list_groups(&caller, page).await?))
}

#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = CreateGroup, responses((status = 201, body = GroupDto), (status = 403, description = "admins only", body = ErrorBody), (status = 409, description = "the name is taken", body = ErrorBody)))]
pub async fn create_group(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    ValidJson(input): ValidJson<CreateGroup>,
) -> ApiResult<Created<GroupDto>> {
    Ok((
        StatusCode::CREATED,
        Json(services.create_group(&caller, input).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/groups/{id}", tag = "groups", params(("id" = String, Path, description = "the resource id")), responses((status = 200, body = GroupDto), (status = 403, description = "admins only", body = ErrorBody)))]
pub async fn get_group(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<GroupId>,
) -> ApiResult<Json<GroupDto>> {
    Ok(Json(services.get_group(&caller, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/groups/{id}", tag = "groups", request_body = UpdateGroup, params(("id" = String, Path, description = "the resource id")), responses((status = 200, body = GroupDto), (status = 403, description = "admins only", body = ErrorBody), (status = 409, description = "the name is taken", body = ErrorBody)))]
pub async fn update_group(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<GroupId>,
    ValidJson(input): ValidJson<UpdateGroup>,
) -> ApiResult<Json<GroupDto>> {
    Ok(Json(services.update_group(&caller, &id, input).await?))
}

#[utoipa::path(delete, path = "/api/v1/groups/{id}", tag = "groups", params(("id" = String, Path, description = "the resource id")), responses((status = 204, description = "deleted"), (status = 403, description = "admins only", body = ErrorBody)))]
pub async fn delete_group(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<GroupId>,
) -> ApiResult<StatusCode> {
    services.delete_group(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/groups/{id}/members/{user_id}", tag = "groups", params(("id" = String, Path, description = "the group id"), ("user_id" = String, Path, description = "a user id")), responses((status = 200, body = GroupDto), (status = 403, description = "admins only", body = ErrorBody)))]
pub async fn add_member(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path((id, user_id)): Path<(GroupId, UserId)>,
) -> ApiResult<Json<GroupDto>> {
    Ok(Json(
        services
            .set_membership(&caller, &id, &user_id, true)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/groups/{id}/members/{user_id}", tag = "groups", params(("id" = String, Path, description = "the group id"), ("user_id" = String, Path, description = "a user id")), responses((status = 200, body = GroupDto), (status = 403, description = "admins only", body = ErrorBody)))]
pub async fn remove_member(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path((id, user_id)): Path<(GroupId, UserId)>,
) -> ApiResult<Json<GroupDto>> {
    Ok(Json(
        services
            .set_membership(&caller, &id, &user_id, false)
            .await?,
    ))
}
