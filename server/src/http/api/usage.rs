//! The JSON API of a space's use over time.

use app::api::ssr::Caller;
use app::api::usage::{ssr::UsageApi, QuotaUsage, SpaceUsage, UsageQuery};
use app::error::ErrorBody;
use app::ids::{GroupId, SpaceId, UserId};
use axum::extract::{Path, State};
use axum::Json;

use crate::error::ApiResult;
use crate::http::extract::ValidQuery;
use crate::services::Services;

/// What the space used (CPU, memory against its limit, processes, network) over the last
/// hour or day (a point a minute) or 90 days (a point an hour), oldest first.
#[utoipa::path(get, path = "/api/v1/spaces/{id}/usage", tag = "spaces", params(("id" = String, Path, description = "the resource id"), UsageQuery), responses((status = 200, body = SpaceUsage), (status = 400, description = "an unknown `range`", body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, description = "no such space, or not one the caller may see", body = ErrorBody)))]
pub async fn space_usage(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
    ValidQuery(query): ValidQuery<UsageQuery>,
) -> ApiResult<Json<SpaceUsage>> {
    let range = query.range.unwrap_or_default();
    Ok(Json(services.space_usage(&caller, &id, range).await?))
}

/// What the caller's spaces held of their quota (spaces, compute units running, storage units)
/// over the last hour or day (a point a minute) or 90 days (a point an hour), against their
/// effective quota now.
#[utoipa::path(get, path = "/api/v1/me/quota-usage", tag = "me", params(UsageQuery), responses((status = 200, body = QuotaUsage), (status = 400, description = "an unknown `range`", body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn my_quota_usage(
    State(services): State<Services>,
    caller: Caller,
    ValidQuery(query): ValidQuery<UsageQuery>,
) -> ApiResult<Json<QuotaUsage>> {
    let range = query.range.unwrap_or_default();
    Ok(Json(services.my_quota_usage(&caller, range).await?))
}

/// What a user's spaces held of their quota over the range (admins).
#[utoipa::path(get, path = "/api/v1/users/{id}/quota-usage", tag = "users", params(("id" = String, Path, description = "the resource id"), UsageQuery), responses((status = 200, body = QuotaUsage), (status = 400, description = "an unknown `range`", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "not an admin", body = ErrorBody), (status = 404, description = "no such user", body = ErrorBody)))]
pub async fn user_quota_usage(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<UserId>,
    ValidQuery(query): ValidQuery<UsageQuery>,
) -> ApiResult<Json<QuotaUsage>> {
    let range = query.range.unwrap_or_default();
    Ok(Json(services.user_quota_usage(&caller, &id, range).await?))
}

/// What a group's members' spaces held together over the range, against the group's
/// contribution (admins). Members are those of now: a member who left takes their history.
#[utoipa::path(get, path = "/api/v1/groups/{id}/quota-usage", tag = "groups", params(("id" = String, Path, description = "the resource id"), UsageQuery), responses((status = 200, body = QuotaUsage), (status = 400, description = "an unknown `range`", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "not an admin", body = ErrorBody), (status = 404, description = "no such group", body = ErrorBody)))]
pub async fn group_quota_usage(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<GroupId>,
    ValidQuery(query): ValidQuery<UsageQuery>,
) -> ApiResult<Json<QuotaUsage>> {
    let range = query.range.unwrap_or_default();
    Ok(Json(services.group_quota_usage(&caller, &id, range).await?))
}
