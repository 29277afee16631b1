//! Users as admins manage them, API tokens and SSH keys.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::auth::{Role, UserDto};
use super::quota::{QuotaReport, UserQuota};
use super::serde_helpers::double_option;
use crate::error::ApiError;
use crate::ids::{SshKeyId, TokenId, UserId};
use crate::time::Timestamp;

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    /// Absent: the server's default for new users; `null`: unlimited.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_spaces: Option<Option<i64>>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub compute_units: Option<Option<i64>>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub storage_units: Option<Option<i64>>,
    /// Tunnels (public links) at once.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_tunnels: Option<Option<i64>>,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_spaces: Option<Option<i64>>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub compute_units: Option<Option<i64>>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub storage_units: Option<Option<i64>>,
    /// Tunnels (public links) at once.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_tunnels: Option<Option<i64>>,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    /// Days until it expires; absent or null: 90 days.
    #[serde(default)]
    pub expires_in_days: Option<i64>,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenDto {
    pub id: TokenId,
    pub name: String,
    /// The first characters of the secret, to tell tokens apart.
    pub prefix: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

/// The answer to creating a token: the only time the secret is shown.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenCreated {
    pub token: TokenDto,
    pub secret: String,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSshKey {
    #[serde(default)]
    pub name: Option<String>,
    pub public_key: String,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SshKeyDto {
    pub id: SshKeyId,
    pub name: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: Timestamp,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

/// Every user (admins only).
#[server]
pub async fn list_users() -> Result<Vec<UserDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.list_users(&caller).await)
}

#[server(name = CreateUserCall, input = server_fn::codec::Json)]
pub async fn create_user(input: CreateUser) -> Result<UserDto, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.create_user(&caller, input).await)
}

#[server(name = UpdateUserCall, input = server_fn::codec::Json)]
pub async fn update_user(id: UserId, input: UpdateUser) -> Result<UserDto, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.update_user(&caller, &id, input).await)
}

/// A user's effective quota, its sources and live usage (admins only).
#[server(name = UserQuotaCall)]
pub async fn user_quota(id: UserId) -> Result<QuotaReport, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.user_quota(&caller, &id).await)
}

/// Every user's quota report in one answer (admins only): what pages listing many users read,
/// instead of one request per user.
#[server]
pub async fn user_quotas() -> Result<Vec<UserQuota>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.user_quotas(&caller).await)
}

#[server(name = ChangePasswordCall, input = server_fn::codec::Json)]
pub async fn change_password(input: ChangePassword) -> Result<(), ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.change_password(&caller, input).await)
}

#[server]
pub async fn list_tokens() -> Result<Vec<TokenDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.list_tokens(&caller).await)
}

#[server(name = CreateTokenCall, input = server_fn::codec::Json)]
pub async fn create_token(input: CreateToken) -> Result<TokenCreated, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.create_token(&caller, input).await)
}

#[server]
pub async fn revoke_token(id: TokenId) -> Result<(), ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.revoke_token(&caller, &id).await)
}

#[server]
pub async fn list_ssh_keys() -> Result<Vec<SshKeyDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.list_ssh_keys(&caller).await)
}

#[server(input = server_fn::codec::Json)]
pub async fn add_ssh_key(input: CreateSshKey) -> Result<SshKeyDto, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.add_ssh_key(&caller, input).await)
}

#[server]
pub async fn remove_ssh_key(id: SshKeyId) -> Result<(), ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.remove_ssh_key(&caller, &id).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{
        ChangePassword, CreateSshKey, CreateToken, CreateUser, SshKeyDto, TokenCreated, TokenDto,
        UpdateUser,
    };
    use crate::api::auth::UserDto;
    use crate::api::ssr::Caller;
    use crate::error::ApiResult;
    use crate::ids::{SshKeyId, TokenId, UserId};

    /// Users as admins manage them, and the caller's own password.
    #[async_trait::async_trait]
    pub trait UsersApi: Send + Sync + 'static {
        async fn list_users(&self, caller: &Caller) -> ApiResult<Vec<UserDto>>;
        async fn get_user(&self, caller: &Caller, id: &UserId) -> ApiResult<UserDto>;
        async fn create_user(&self, caller: &Caller, input: CreateUser) -> ApiResult<UserDto>;
        async fn update_user(
            &self,
            caller: &Caller,
            id: &UserId,
            input: UpdateUser,
        ) -> ApiResult<UserDto>;
        async fn delete_user(&self, caller: &Caller, id: &UserId) -> ApiResult<()>;
        async fn change_password(&self, caller: &Caller, input: ChangePassword) -> ApiResult<()>;
    }

    /// The caller's API tokens and SSH keys.
    #[async_trait::async_trait]
    pub trait CredentialsApi: Send + Sync + 'static {
        async fn list_tokens(&self, caller: &Caller) -> ApiResult<Vec<TokenDto>>;
        async fn create_token(
            &self,
            caller: &Caller,
            input: CreateToken,
        ) -> ApiResult<TokenCreated>;
        async fn revoke_token(&self, caller: &Caller, id: &TokenId) -> ApiResult<()>;
        async fn list_ssh_keys(&self, caller: &Caller) -> ApiResult<Vec<SshKeyDto>>;
        async fn add_ssh_key(&self, caller: &Caller, input: CreateSshKey) -> ApiResult<SshKeyDto>;
        async fn remove_ssh_key(&self, caller: &Caller, id: &SshKeyId) -> ApiResult<()>;
    }
}
