//! JSON API v1 handlers: thin wrappers that extract the caller and input and call the
//! services (the same ones the UI's server functions use).

use std::sync::Arc;

use app::api::auth::{LoginRequest, UserDto, UserEnvelope};
use app::api::groups::{CreateGroup, GroupDto, UpdateGroup};
use app::api::quota::QuotaReport;
use app::api::spaces::{AuditEventDto, CreateSpace, ShareDto, SpaceDto};
use app::api::templates::{CreateTemplate, TemplateDto, UpdateTemplate};
use app::api::users::{
    CreateSshKey, CreateToken, CreateUser, SshKeyDto, TokenCreated, TokenDto, UpdateUser,
};
use axum::extract::{Path, Query, State};
use axum::http::{request::Parts, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::extract::{AdminCaller, ValidJson};
use crate::auth::{client_ip_of, session_of, AuthService};
use crate::domain::lifecycle::Action;
use crate::error::{AppError, AppResult};
use crate::services::access::Caller;
use crate::services::audit::AuditQuery;
use crate::services::spaces::SpaceListQuery;
use crate::services::Services;

type Created<T> = (StatusCode, Json<T>);

// --- auth and me -------------------------------------------------------------------------

pub async fn login(
    State(auth): State<Arc<AuthService>>,
    parts: Parts,
    ValidJson(input): ValidJson<LoginRequest>,
) -> AppResult<Json<UserEnvelope>> {
    let session = session_of(&parts)?;
    let user = auth.login(&session, client_ip_of(&parts), &input).await?;
    Ok(Json(UserEnvelope { user }))
}

pub async fn logout(
    State(auth): State<Arc<AuthService>>,
    _caller: Caller,
    parts: Parts,
) -> AppResult<StatusCode> {
    auth.logout(&session_of(&parts)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(caller: Caller) -> Json<UserEnvelope> {
    Json(UserEnvelope {
        user: caller.user.into(),
    })
}

pub async fn my_quota(
    State(services): State<Services>,
    caller: Caller,
) -> AppResult<Json<QuotaReport>> {
    Ok(Json(services.quota_report(&caller.user).await?))
}

pub async fn list_tokens(
    State(services): State<Services>,
    caller: Caller,
) -> AppResult<Json<Vec<TokenDto>>> {
    Ok(Json(services.list_tokens(&caller).await?))
}

pub async fn create_token(
    State(services): State<Services>,
    caller: Caller,
    ValidJson(input): ValidJson<CreateToken>,
) -> AppResult<Created<TokenCreated>> {
    Ok((
        StatusCode::CREATED,
        Json(services.create_token(&caller, input).await?),
    ))
}

pub async fn revoke_token(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    services.revoke_token(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_ssh_keys(
    State(services): State<Services>,
    caller: Caller,
) -> AppResult<Json<Vec<SshKeyDto>>> {
    Ok(Json(services.list_ssh_keys(&caller).await?))
}

pub async fn add_ssh_key(
    State(services): State<Services>,
    caller: Caller,
    ValidJson(input): ValidJson<CreateSshKey>,
) -> AppResult<Created<SshKeyDto>> {
    Ok((
        StatusCode::CREATED,
        Json(services.add_ssh_key(&caller, input).await?),
    ))
}

pub async fn remove_ssh_key(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    services.remove_ssh_key(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- users -------------------------------------------------------------------------------

pub async fn list_users(
    State(services): State<Services>,
    caller: Caller,
) -> AppResult<Json<Vec<UserDto>>> {
    Ok(Json(services.list_users(&caller).await?))
}

pub async fn create_user(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    ValidJson(input): ValidJson<CreateUser>,
) -> AppResult<Created<UserDto>> {
    Ok((
        StatusCode::CREATED,
        Json(services.create_user(&caller, input).await?),
    ))
}

pub async fn get_user(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<UserDto>> {
    Ok(Json(services.get_user(&caller, &id).await?))
}

pub async fn update_user(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
    ValidJson(input): ValidJson<UpdateUser>,
) -> AppResult<Json<UserDto>> {
    Ok(Json(services.update_user(&caller, &id, input).await?))
}

pub async fn delete_user(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    services.delete_user(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn user_quota(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<QuotaReport>> {
    Ok(Json(services.user_quota(&caller, &id).await?))
}

// --- groups ------------------------------------------------------------------------------

pub async fn list_groups(
    State(services): State<Services>,
    caller: Caller,
) -> AppResult<Json<Vec<GroupDto>>> {
    Ok(Json(services.list_groups(&caller).await?))
}

pub async fn create_group(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    ValidJson(input): ValidJson<CreateGroup>,
) -> AppResult<Created<GroupDto>> {
    Ok((
        StatusCode::CREATED,
        Json(services.create_group(&caller, input).await?),
    ))
}

pub async fn get_group(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<GroupDto>> {
    Ok(Json(services.get_group(&caller, &id).await?))
}

pub async fn update_group(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
    ValidJson(input): ValidJson<UpdateGroup>,
) -> AppResult<Json<GroupDto>> {
    Ok(Json(services.update_group(&caller, &id, input).await?))
}

pub async fn delete_group(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    services.delete_group(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_member(
    State(services): State<Services>,
    caller: Caller,
    Path((id, user_id)): Path<(String, String)>,
) -> AppResult<Json<GroupDto>> {
    Ok(Json(services.add_member(&caller, &id, &user_id).await?))
}

pub async fn remove_member(
    State(services): State<Services>,
    caller: Caller,
    Path((id, user_id)): Path<(String, String)>,
) -> AppResult<Json<GroupDto>> {
    Ok(Json(services.remove_member(&caller, &id, &user_id).await?))
}

// --- templates ---------------------------------------------------------------------------

pub async fn list_templates(
    State(services): State<Services>,
    caller: Caller,
) -> AppResult<Json<Vec<TemplateDto>>> {
    Ok(Json(services.list_templates(&caller).await?))
}

pub async fn create_template(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    ValidJson(input): ValidJson<CreateTemplate>,
) -> AppResult<Created<TemplateDto>> {
    Ok((
        StatusCode::CREATED,
        Json(services.create_template(&caller, input).await?),
    ))
}

pub async fn get_template(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<TemplateDto>> {
    Ok(Json(services.get_template(&caller, &id).await?))
}

pub async fn update_template(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
    ValidJson(input): ValidJson<UpdateTemplate>,
) -> AppResult<Json<TemplateDto>> {
    Ok(Json(services.update_template(&caller, &id, input).await?))
}

/// 204 when deleted; 200 with the template when it was archived because spaces use it.
pub async fn delete_template(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Response> {
    Ok(match services.delete_template(&caller, &id).await? {
        Some(archived) => Json(archived).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

// --- spaces ------------------------------------------------------------------------------

pub async fn list_spaces(
    State(services): State<Services>,
    caller: Caller,
    query: Result<Query<SpaceListQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Json<Vec<SpaceDto>>> {
    let Query(query) = query.map_err(|e| AppError::bad_request(e.body_text()))?;
    Ok(Json(services.list_spaces(&caller, query).await?))
}

pub async fn create_space(
    State(services): State<Services>,
    caller: Caller,
    ValidJson(input): ValidJson<CreateSpace>,
) -> AppResult<Created<SpaceDto>> {
    Ok((
        StatusCode::CREATED,
        Json(services.create_space(&caller, input).await?),
    ))
}

pub async fn get_space(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<SpaceDto>> {
    Ok(Json(services.get_space(&caller, &id).await?))
}

/// 204 when deleted at once; 202 with the space when it must stop first.
pub async fn delete_space(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Response> {
    Ok(match services.delete_space(&caller, &id).await? {
        Some(stopping) => (StatusCode::ACCEPTED, Json(stopping)).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

async fn transition(
    services: Services,
    caller: Caller,
    id: String,
    action: Action,
) -> AppResult<(StatusCode, Json<SpaceDto>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(services.transition(&caller, &id, action).await?),
    ))
}

pub async fn start_space(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<(StatusCode, Json<SpaceDto>)> {
    transition(services, caller, id, Action::Start).await
}

pub async fn stop_space(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<(StatusCode, Json<SpaceDto>)> {
    transition(services, caller, id, Action::Stop).await
}

pub async fn restart_space(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<(StatusCode, Json<SpaceDto>)> {
    transition(services, caller, id, Action::Restart).await
}

pub async fn list_shares(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<ShareDto>>> {
    Ok(Json(services.list_shares(&caller, &id).await?))
}

pub async fn share_space(
    State(services): State<Services>,
    caller: Caller,
    Path((id, user_id)): Path<(String, String)>,
) -> AppResult<Json<Vec<ShareDto>>> {
    Ok(Json(services.share_space(&caller, &id, &user_id).await?))
}

pub async fn revoke_share(
    State(services): State<Services>,
    caller: Caller,
    Path((id, user_id)): Path<(String, String)>,
) -> AppResult<Json<Vec<ShareDto>>> {
    Ok(Json(services.revoke_share(&caller, &id, &user_id).await?))
}

// --- audit -------------------------------------------------------------------------------

pub async fn audit(
    State(services): State<Services>,
    caller: Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Json<Vec<AuditEventDto>>> {
    let Query(query) = query.map_err(|e| AppError::bad_request(e.body_text()))?;
    Ok(Json(services.audit_events(&caller, query).await?))
}

pub async fn no_such_route() -> AppError {
    AppError::NotFound("no such API route: see /api/v1/openapi.json".into())
}
