//! The JSON API of users (admins).

use app::api::auth::UserDto;
use app::api::page::PageQuery;
use app::api::quota::{ssr::QuotaApi, QuotaReport, UserQuota};
use app::api::ssr::AdminCaller;
use app::api::users::ssr::UsersApi;
use app::api::users::{CreateUser, UpdateUser};
use app::error::ErrorBody;
use app::ids::UserId;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::error::ApiResult;
use crate::http::extract::{ValidJson, ValidQuery};
use crate::services::Services;

type Created<T> = (StatusCode, Json<T>);

#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageQuery), responses((status = 200, description = "a page of users, by username", body = [UserDto]), (status = 403, description = "admins only", body = ErrorBody)))]
pub async fn list_users(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    ValidQuery(page): ValidQuery<PageQuery>,
) -> ApiResult<Json<Vec<UserDto>>> {
    Ok(Json(services.list_users(&caller, page).await?))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser, responses((status = 201, body = UserDto), (status = 403, description = "admins only", body = ErrorBody), (status = 409, description = "the username is taken", body = ErrorBody), (status = 503, description = "too many passwords being hashed at once", body = ErrorBody)))]
pub async fn create_user(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    ValidJson(input): ValidJson<CreateUser>,
) -> ApiResult<Created<UserDto>> {
    Ok((
        StatusCode::CREATED,
        Json(services.create_user(&caller, input).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path, description = "the resource id")), responses((status = 200, body = UserDto), (status = 403, description = "admins only", body = ErrorBody)))]
pub async fn get_user(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<UserId>,
) -> ApiResult<Json<UserDto>> {
    Ok(Json(services.get_user(&caller, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = UpdateUser, params(("id" = String, Path, description = "the resource id")), responses((status = 200, body = UserDto), (status = 403, description = "admins only; and not to demote, deactivate or reset the password of yourself", body = ErrorBody), (status = 503, description = "too many passwords being hashed at once", body = ErrorBody)))]
pub async fn update_user(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<UserId>,
    ValidJson(input): ValidJson<UpdateUser>,
) -> ApiResult<Json<UserDto>> {
    Ok(Json(services.update_user(&caller, &id, input).await?))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path, description = "the resource id")), responses((status = 204, description = "deleted"), (status = 403, description = "admins only", body = ErrorBody), (status = 409, description = "the user owns spaces, or is yourself", body = ErrorBody)))]
pub async fn delete_user(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<UserId>,
) -> ApiResult<StatusCode> {
    services.delete_user(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/users/{id}/quota", tag = "users", params(("id" = String, Path, description = "the resource id")), responses((status = 200, body = QuotaReport), (status = 403, description = "admins only", body = ErrorBody)))]
pub async fn user_quota(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<UserId>,
) -> ApiResult<Json<QuotaReport>> {
    Ok(Json(services.user_quota(&caller, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/users/quotas", tag = "users", params(PageQuery), responses((status = 200, description = "a page of users' quota reports, by username", body = [UserQuota]), (status = 403, description = "admins only", body = ErrorBody)))]
pub async fn user_quotas(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    ValidQuery(page): ValidQuery<PageQuery>,
) -> ApiResult<Json<Vec<UserQuota>>> {
    Ok(Json(services.user_quotas(&caller, page).await?))
}
