//! JSON API v1 handlers: thin wrappers that extract the caller and input and call the same
//! service methods the UI's server functions call, with the same arguments. [`routes`]
//! declares each handler once: its route and its OpenAPI entry both come from that.

use app::api::admin::{
    ssr::AdminApi, ssr::AuditApi, DockerObject, MoveReport, MoveSpaceRequest, NodeDto, OrphanReport,
};
use app::api::auth::{ssr::AuthApi, LoginRequest, UserDto, UserEnvelope};
use app::api::groups::{ssr::GroupsApi, CreateGroup, GroupDto, UpdateGroup};
use app::api::page::PageQuery;
use app::api::quota::{ssr::QuotaApi, QuotaReport, UserQuota};
use app::api::spaces::ssr::{Sharing, SpaceLifecycle, SpaceQueries};
use app::api::spaces::{
    AuditEventDto, AuditFilter, CreatePreview, CreateSpace, ShareDto, SpaceDto, SpaceListQuery,
    VolumeUsage,
};
use app::api::ssr::{AdminCaller, Caller};
use app::api::templates::{
    ssr::TemplatesApi, CreateTemplate, TemplateDto, TemplateListQuery, UpdateTemplate,
};
use app::api::users::ssr::{CredentialsApi, UsersApi};
use app::api::users::{
    ChangePassword, CreateSshKey, CreateToken, CreateUser, SshKeyDto, TokenCreated, TokenDto,
    UpdateUser,
};
use app::error::ErrorBody;
use app::ids::{GroupId, SpaceId, SshKeyId, TemplateId, TokenId, UserId};
use app::lifecycle::Action;
use axum::extract::{Path, State};
use axum::http::{request::Parts, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ValidJson, ValidQuery};
use crate::error::{ApiError, ApiResult};
use crate::services::Services;
use crate::state::AppState;

type Created<T> = (StatusCode, Json<T>);

// --- auth and me -------------------------------------------------------------------------

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest, security(()), responses((status = 200, body = UserEnvelope), (status = 401, description = "wrong username or password, or the account is deactivated", body = ErrorBody), (status = 429, description = "too many failed sign-ins from this client: `Retry-After` says when to try again", body = ErrorBody), (status = 503, description = "too many passwords being checked at once: `Retry-After` says when to try again", body = ErrorBody)))]
pub async fn login(
    State(services): State<Services>,
    parts: Parts,
    ValidJson(input): ValidJson<LoginRequest>,
) -> ApiResult<Json<UserEnvelope>> {
    let user = services.login(&parts, input).await?;
    Ok(Json(UserEnvelope { user }))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204, description = "signed out")))]
pub async fn logout(
    State(services): State<Services>,
    _caller: Caller,
    parts: Parts,
) -> ApiResult<StatusCode> {
    services.logout(&parts).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/me", tag = "me", responses((status = 200, body = UserEnvelope)))]
pub async fn me(caller: Caller) -> Json<UserEnvelope> {
    Json(UserEnvelope { user: caller.user })
}

#[utoipa::path(get, path = "/api/v1/me/quota", tag = "me", responses((status = 200, body = QuotaReport)))]
pub async fn my_quota(
    State(services): State<Services>,
    caller: Caller,
) -> ApiResult<Json<QuotaReport>> {
    Ok(Json(services.my_quota(&caller).await?))
}

#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", request_body = ChangePassword, responses((status = 204, description = "changed; the caller's other sessions ended"), (status = 400, description = "wrong current password or weak new one", body = ErrorBody), (status = 403, description = "an API token without the `credentials` scope", body = ErrorBody), (status = 429, description = "too many wrong passwords from this client: `Retry-After` says when to try again", body = ErrorBody), (status = 503, description = "too many passwords being checked at once", body = ErrorBody)))]
pub async fn change_password(
    State(services): State<Services>,
    caller: Caller,
    parts: Parts,
    ValidJson(input): ValidJson<ChangePassword>,
) -> ApiResult<StatusCode> {
    services.change_password(&caller, &parts, input).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/me/tokens", tag = "me", params(PageQuery), responses((status = 200, description = "a page of the caller's tokens, oldest first", body = [TokenDto])))]
pub async fn list_tokens(
    State(services): State<Services>,
    caller: Caller,
    ValidQuery(page): ValidQuery<PageQuery>,
) -> ApiResult<Json<Vec<TokenDto>>> {
    Ok(Json(services.list_tokens(&caller, page).await?))
}

#[utoipa::path(post, path = "/api/v1/me/tokens", tag = "me", request_body = CreateToken, responses((status = 201, description = "the secret is in the answer, once", body = TokenCreated), (status = 403, description = "an API token without the `credentials` scope, or asking for more than it has", body = ErrorBody), (status = 409, description = "the caller has the most tokens allowed", body = ErrorBody)))]
pub async fn create_token(
    State(services): State<Services>,
    caller: Caller,
    ValidJson(input): ValidJson<CreateToken>,
) -> ApiResult<Created<TokenCreated>> {
    Ok((
        StatusCode::CREATED,
        Json(services.create_token(&caller, input).await?),
    ))
}

#[utoipa::path(delete, path = "/api/v1/me/tokens/{id}", tag = "me", params(("id" = String, Path, description = "the resource id")), responses((status = 204, description = "revoked"), (status = 403, description = "an API token without the `credentials` scope", body = ErrorBody)))]
pub async fn revoke_token(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<TokenId>,
) -> ApiResult<StatusCode> {
    services.revoke_token(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/me/ssh-keys", tag = "me", params(PageQuery), responses((status = 200, description = "a page of the caller's keys, oldest first", body = [SshKeyDto])))]
pub async fn list_ssh_keys(
    State(services): State<Services>,
    caller: Caller,
    ValidQuery(page): ValidQuery<PageQuery>,
) -> ApiResult<Json<Vec<SshKeyDto>>> {
    Ok(Json(services.list_ssh_keys(&caller, page).await?))
}

#[utoipa::path(post, path = "/api/v1/me/ssh-keys", tag = "me", request_body = CreateSshKey, responses((status = 201, body = SshKeyDto), (status = 400, description = "not an OpenSSH public key line", body = ErrorBody), (status = 403, description = "an API token without the `credentials` scope", body = ErrorBody), (status = 409, description = "the caller registered this key already, or has the most keys allowed", body = ErrorBody)))]
pub async fn add_ssh_key(
    State(services): State<Services>,
    caller: Caller,
    ValidJson(input): ValidJson<CreateSshKey>,
) -> ApiResult<Created<SshKeyDto>> {
    Ok((
        StatusCode::CREATED,
        Json(services.add_ssh_key(&caller, input).await?),
    ))
}

#[utoipa::path(delete, path = "/api/v1/me/ssh-keys/{id}", tag = "me", params(("id" = String, Path, description = "the resource id")), responses((status = 204, description = "removed"), (status = 403, description = "an API token without the `credentials` scope", body = ErrorBody)))]
pub async fn remove_ssh_key(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SshKeyId>,
) -> ApiResult<StatusCode> {
    services.remove_ssh_key(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- users -------------------------------------------------------------------------------

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

// --- groups ------------------------------------------------------------------------------

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

// --- templates ---------------------------------------------------------------------------

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

// --- spaces ------------------------------------------------------------------------------

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

// --- audit -------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditFilter), responses((status = 200, body = [AuditEventDto]), (status = 403, description = "admins only", body = ErrorBody)))]
pub async fn audit(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    ValidQuery(query): ValidQuery<AuditFilter>,
) -> ApiResult<Json<Vec<AuditEventDto>>> {
    Ok(Json(services.audit_events(&caller, query).await?))
}

// --- admin ------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/admin/orphans", tag = "admin", responses((status = 200, description = "this installation's containers and volumes whose space is unknown or deleted, and unlabelled Hangar objects no space here owns", body = OrphanReport), (status = 403, description = "admins only", body = ErrorBody), (status = 503, description = "the Docker engine does not answer", body = ErrorBody)))]
pub async fn list_orphans(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
) -> ApiResult<Json<OrphanReport>> {
    Ok(Json(services.orphans(&caller).await?))
}

#[utoipa::path(delete, path = "/api/v1/admin/orphans", tag = "admin", responses((status = 200, description = "the orphans removed (unlabelled objects stay)", body = [DockerObject]), (status = 403, description = "admins only", body = ErrorBody), (status = 503, description = "the Docker engine does not answer", body = ErrorBody)))]
pub async fn remove_orphans(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
) -> ApiResult<Json<Vec<DockerObject>>> {
    Ok(Json(services.remove_orphans(&caller).await?))
}

#[utoipa::path(get, path = "/api/v1/admin/nodes", tag = "admin", responses((status = 200, description = "the machines spaces run on (the one Docker engine, or each node of the swarm) with their capacity, what is reserved, and the spaces running and kept there", body = [NodeDto]), (status = 401, body = ErrorBody), (status = 403, description = "admins only", body = ErrorBody), (status = 503, description = "the container engine does not answer", body = ErrorBody)))]
pub async fn list_nodes(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
) -> ApiResult<Json<Vec<NodeDto>>> {
    Ok(Json(services.nodes(&caller).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/spaces/{id}/move", tag = "admin", params(("id" = String, Path, description = "the space id")), request_body = MoveSpaceRequest, responses((status = 200, description = "the space's volumes were copied to the node, where it starts from now on; the old node's copies are removed", body = MoveReport), (status = 400, description = "no such node", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "admins only", body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the space is not stopped, the node cannot take it (drained, down), it is already there, or the runtime has one node only", body = ErrorBody), (status = 503, description = "the container engine does not answer", body = ErrorBody)))]
pub async fn move_space(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<SpaceId>,
    ValidJson(request): ValidJson<MoveSpaceRequest>,
) -> ApiResult<Json<MoveReport>> {
    Ok(Json(services.move_space(&caller, &id, request).await?))
}

#[utoipa::path(delete, path = "/api/v1/admin/unlabelled/{name}", tag = "admin", params(("name" = String, Path, description = "the object's name, as listed under `unlabelled`")), responses((status = 200, description = "the objects removed", body = [DockerObject]), (status = 403, description = "admins only", body = ErrorBody), (status = 503, description = "the Docker engine does not answer", body = ErrorBody)))]
pub async fn remove_unlabelled(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<DockerObject>>> {
    Ok(Json(services.remove_unlabelled(&caller, &name).await?))
}

pub async fn no_such_route() -> ApiError {
    ApiError::not_found_because("no such API route: see /api/v1/openapi.json")
}

/// Every JSON API route, each declared once with its OpenAPI entry.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(my_quota))
        .routes(routes!(change_password))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(list_ssh_keys, add_ssh_key))
        .routes(routes!(remove_ssh_key))
        .routes(routes!(list_users, create_user))
        .routes(routes!(user_quotas))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(user_quota))
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group, update_group, delete_group))
        .routes(routes!(add_member, remove_member))
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template, update_template, delete_template))
        .routes(routes!(create_preview))
        .routes(routes!(list_spaces, create_space))
        .routes(routes!(get_space, delete_space))
        .routes(routes!(space_history))
        .routes(routes!(space_storage))
        .routes(routes!(start_space))
        .routes(routes!(stop_space))
        .routes(routes!(restart_space))
        .routes(routes!(crate::terminal::ws::terminal))
        .routes(routes!(crate::ssh::routes::ssh_config))
        .routes(routes!(crate::ssh::routes::live_sessions))
        .routes(routes!(
            super::files::get_files,
            super::files::put_file,
            super::files::post_files,
            super::files::delete_file
        ))
        .routes(routes!(list_shares))
        .routes(routes!(share_space, revoke_share))
        .routes(routes!(audit))
        .routes(routes!(crate::live::sse::events))
        .routes(routes!(list_orphans, remove_orphans))
        .routes(routes!(list_nodes))
        .routes(routes!(move_space))
        .routes(routes!(remove_unlabelled))
        .merge(super::ports::routes())
}
