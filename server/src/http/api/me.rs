//! The JSON API of signing in and out and of the caller's own account: quota, password, API
//! tokens, SSH keys.

use app::api::auth::{ssr::AuthApi, LoginRequest, UserEnvelope};
use app::api::page::PageQuery;
use app::api::quota::{ssr::QuotaApi, QuotaReport};
use app::api::ssr::{Caller, Presented};
use app::api::users::ssr::{CredentialsApi, UsersApi};
use app::api::users::{
    ChangePassword, CreateSshKey, CreateToken, SshKeyDto, TokenCreated, TokenDto,
};
use app::error::ErrorBody;
use app::ids::{SshKeyId, TokenId};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::error::ApiResult;
use crate::http::extract::{ValidJson, ValidQuery};
use crate::services::Services;

type Created<T> = (StatusCode, Json<T>);

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest, security(()), responses((status = 200, body = UserEnvelope), (status = 401, description = "wrong username or password, or the account is deactivated", body = ErrorBody), (status = 429, description = "too many failed sign-ins from this client: `Retry-After` says when to try again", body = ErrorBody), (status = 503, description = "too many passwords being checked at once: `Retry-After` says when to try again", body = ErrorBody)))]
pub async fn login(
    State(services): State<Services>,
    presented: Presented,
    ValidJson(input): ValidJson<LoginRequest>,
) -> ApiResult<Json<UserEnvelope>> {
    let user = services.login(&presented, input).await?;
    Ok(Json(UserEnvelope { user }))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204, description = "signed out")))]
pub async fn logout(
    State(services): State<Services>,
    _caller: Caller,
    presented: Presented,
) -> ApiResult<StatusCode> {
    services.logout(&presented).await?;
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
    presented: Presented,
    ValidJson(input): ValidJson<ChangePassword>,
) -> ApiResult<StatusCode> {
    services.change_password(&caller, &presented, input).await?;
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
