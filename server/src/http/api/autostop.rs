//! The JSON API of automatic stops and starts: a space's settings and schedule, keepalives,
//! the caller's time zone and the installation's retention of stopped spaces.

use app::api::autostop::{
    ssr::AutostopApi, AutoStop, Keepalive, Retention, SpaceAutostop, TimeZoneSetting,
    UpdateSpaceAutostop,
};
use app::api::ssr::{AdminCaller, Caller};
use app::error::ErrorBody;
use app::ids::SpaceId;
use axum::extract::{Path, State};
use axum::Json;

use crate::error::ApiResult;
use crate::http::extract::ValidJson;
use crate::services::Services;

/// The space's automatic stops (in force, the owner's, the template's bounds), its schedule
/// and its retention pin.
#[utoipa::path(get, path = "/api/v1/spaces/{id}/autostop", tag = "spaces", params(("id" = String, Path, description = "the space id")), responses((status = 200, body = SpaceAutostop), (status = 404, body = ErrorBody)))]
pub async fn space_autostop(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<Json<SpaceAutostop>> {
    Ok(Json(services.space_autostop(&caller, &id).await?))
}

/// Changes the space's own stops (shorter than the template's, where it lets owners), its
/// weekly schedule (in the owner's time zone) or its retention pin.
#[utoipa::path(patch, path = "/api/v1/spaces/{id}/autostop", tag = "spaces", params(("id" = String, Path, description = "the space id")), request_body = UpdateSpaceAutostop, responses((status = 200, body = SpaceAutostop), (status = 400, description = "a stop above the template's, a template that does not let owners choose, or an invalid schedule", body = ErrorBody), (status = 403, description = "shared with the caller: only its owner or an admin may", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_space_autostop(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
    ValidJson(input): ValidJson<UpdateSpaceAutostop>,
) -> ApiResult<Json<SpaceAutostop>> {
    Ok(Json(
        services.update_space_autostop(&caller, &id, input).await?,
    ))
}

/// The running space counts as in use now and, with `for_minutes`, until then (for long
/// unattended jobs); answers its coming automatic stop, if any.
#[utoipa::path(post, path = "/api/v1/spaces/{id}/keepalive", tag = "spaces", params(("id" = String, Path, description = "the space id")), request_body = Keepalive, responses((status = 200, description = "the coming automatic stop (null: none)", body = Option<AutoStop>), (status = 400, body = ErrorBody), (status = 403, description = "an API token without the `write` scope", body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the space is not running", body = ErrorBody)))]
pub async fn keepalive(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
    ValidJson(input): ValidJson<Keepalive>,
) -> ApiResult<Json<Option<AutoStop>>> {
    Ok(Json(services.keepalive(&caller, &id, input).await?))
}

/// Sets the caller's time zone (an IANA name; null: UTC): their spaces' schedules are in it,
/// and pages show them times in it.
#[utoipa::path(put, path = "/api/v1/me/time-zone", tag = "me", request_body = TimeZoneSetting, responses((status = 200, body = TimeZoneSetting), (status = 400, description = "not a time zone", body = ErrorBody)))]
pub async fn set_time_zone(
    State(services): State<Services>,
    caller: Caller,
    ValidJson(input): ValidJson<TimeZoneSetting>,
) -> ApiResult<Json<TimeZoneSetting>> {
    Ok(Json(services.set_time_zone(&caller, input).await?))
}

/// The retention of stopped spaces (off by default).
#[utoipa::path(get, path = "/api/v1/admin/retention", tag = "admin", responses((status = 200, body = Retention), (status = 403, description = "admins only", body = ErrorBody)))]
pub async fn retention(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
) -> ApiResult<Json<Retention>> {
    Ok(Json(services.retention(&caller).await?))
}

/// Sets the retention: a space stopped and unused for `days` is deleted, its owner warned
/// `warning_days` before; never one pinned `keep`.
#[utoipa::path(put, path = "/api/v1/admin/retention", tag = "admin", request_body = Retention, responses((status = 200, body = Retention), (status = 400, body = ErrorBody), (status = 403, description = "admins only", body = ErrorBody)))]
pub async fn set_retention(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    ValidJson(input): ValidJson<Retention>,
) -> ApiResult<Json<Retention>> {
    Ok(Json(services.set_retention(&caller, input).await?))
}
