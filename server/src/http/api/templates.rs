//! The JSON API of templates (everyone reads those they may use; admins write).

use app::api::spaces::ssr::SpaceQueries;
use app::api::spaces::CreatePreview;
use app::api::ssr::{AdminCaller, Caller};
use app::api::templates::{
    ssr::TemplatesApi, CreateTemplate, TemplateDto, TemplateListQuery, UpdateTemplate,
};
use app::error::ErrorBody;
use app::ids::TemplateId;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::error::ApiResult;
use crate::http::extract::{ValidJson, ValidQuery};
use crate::services::Services;

type Created<T> = (StatusCode, Json<T>);

#[utoipa::path(get, path = "/api/v1/templates", tag = "templates", params(TemplateListQuery), responses((status = 200, description = "a page of the templates the caller may use, by name", body = [TemplateDto])))]
pub async fn list_templates(
    State(services): State<Services>,
    caller: Caller,
    ValidQuery(query): ValidQuery<TemplateListQuery>,
) -> ApiResult<Json<Vec<TemplateDto>>> {
    Ok(Json(services.list_templates(&caller, query).await?))
}

#[utoipa::path(post, path = "/api/v1/templates", tag = "templates", request_body = CreateTemplate, responses((status = 201, body = TemplateDto), (status = 400, description = "invalid input, such as two volumes of one name or an unknown group", body = ErrorBody), (status = 403, description = "admins only", body = ErrorBody), (status = 409, description = "the name is taken", body = ErrorBody)))]
pub async fn create_template(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    ValidJson(input): ValidJson<CreateTemplate>,
) -> ApiResult<Created<TemplateDto>> {
    Ok((
        StatusCode::CREATED,
        Json(services.create_template(&caller, input).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/templates/{id}", tag = "templates", params(("id" = String, Path, description = "the resource id")), responses((status = 200, body = TemplateDto)))]
pub async fn get_template(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<TemplateId>,
) -> ApiResult<Json<TemplateDto>> {
    Ok(Json(services.get_template(&caller, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/templates/{id}", tag = "templates", request_body = UpdateTemplate, params(("id" = String, Path, description = "the resource id")), responses((status = 200, body = TemplateDto), (status = 400, description = "invalid input, such as two volumes of one name or an unknown group", body = ErrorBody), (status = 403, description = "admins only", body = ErrorBody), (status = 409, description = "the name is taken", body = ErrorBody)))]
pub async fn update_template(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<TemplateId>,
    ValidJson(input): ValidJson<UpdateTemplate>,
) -> ApiResult<Json<TemplateDto>> {
    Ok(Json(services.update_template(&caller, &id, input).await?))
}

/// 204 when deleted; 200 with the template when it was archived because spaces use it.
#[utoipa::path(delete, path = "/api/v1/templates/{id}", tag = "templates", params(("id" = String, Path, description = "the resource id")), responses((status = 204, description = "deleted"), (status = 200, description = "archived: spaces use it", body = TemplateDto), (status = 403, description = "admins only", body = ErrorBody)))]
pub async fn delete_template(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<TemplateId>,
) -> ApiResult<Response> {
    Ok(match services.delete_template(&caller, &id).await? {
        Some(archived) => Json(archived).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// What creating a space from this template would do to the caller's quota.
#[utoipa::path(get, path = "/api/v1/templates/{id}/preview", tag = "templates", params(("id" = String, Path, description = "the resource id")), responses((status = 200, body = CreatePreview), (status = 409, description = "the template is archived", body = ErrorBody)))]
pub async fn create_preview(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<TemplateId>,
) -> ApiResult<Json<CreatePreview>> {
    Ok(Json(services.create_preview(&caller, &id).await?))
}
