//! The JSON API of a space's use over time.

use app::api::ssr::Caller;
use app::api::usage::{ssr::UsageApi, SpaceUsage, UsageQuery};
use app::error::ErrorBody;
use app::ids::SpaceId;
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
