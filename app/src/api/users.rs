//! Users as admins manage them, API tokens and SSH keys.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::auth::{Role, UserDto};
use super::quota::{QuotaReport, UserQuota};
use super::serde_helpers::double_option;
use crate::error::ApiError;

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
    pub id: String,
    pub name: String,
    /// The first characters of the secret, to tell tokens apart.
    pub prefix: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
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
    pub id: String,
    pub name: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: String,
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
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.list_users(&parts).await)
}

#[server(name = CreateUserCall, input = server_fn::codec::Json)]
pub async fn create_user(input: CreateUser) -> Result<UserDto, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.create_user(&parts, input).await)
}

#[server(name = UpdateUserCall, input = server_fn::codec::Json)]
pub async fn update_user(id: String, input: UpdateUser) -> Result<UserDto, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(
        crate::api::ssr::backend()?
            .update_user(&parts, id, input)
            .await,
    )
}

/// A user's effective quota, its sources and live usage (admins only).
#[server(name = UserQuotaCall)]
pub async fn user_quota(id: String) -> Result<QuotaReport, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.user_quota(&parts, id).await)
}

/// Every user's quota report in one answer (admins only): what pages listing many users read,
/// instead of one request per user.
#[server]
pub async fn user_quotas() -> Result<Vec<UserQuota>, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.user_quotas(&parts).await)
}

#[server(name = ChangePasswordCall, input = server_fn::codec::Json)]
pub async fn change_password(input: ChangePassword) -> Result<(), ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(
        crate::api::ssr::backend()?
            .change_password(&parts, input)
            .await,
    )
}

#[server]
pub async fn list_tokens() -> Result<Vec<TokenDto>, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.list_tokens(&parts).await)
}

#[server(name = CreateTokenCall, input = server_fn::codec::Json)]
pub async fn create_token(input: CreateToken) -> Result<TokenCreated, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(
        crate::api::ssr::backend()?
            .create_token(&parts, input)
            .await,
    )
}

#[server]
pub async fn revoke_token(id: String) -> Result<(), ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.revoke_token(&parts, id).await)
}

#[server]
pub async fn list_ssh_keys() -> Result<Vec<SshKeyDto>, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.list_ssh_keys(&parts).await)
}

#[server(input = server_fn::codec::Json)]
pub async fn add_ssh_key(input: CreateSshKey) -> Result<SshKeyDto, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.add_ssh_key(&parts, input).await)
}

#[server]
pub async fn remove_ssh_key(id: String) -> Result<(), ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.remove_ssh_key(&parts, id).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use http::request::Parts;

    use super::{
        ChangePassword, CreateSshKey, CreateToken, CreateUser, SshKeyDto, TokenCreated, TokenDto,
        UpdateUser,
    };
    use crate::api::auth::UserDto;
    use crate::api::quota::{QuotaReport, UserQuota};
    use crate::error::ApiError;

    /// Users, the caller's password, tokens and SSH keys as the server implements them.
    #[async_trait::async_trait]
    pub trait UsersBackend: Send + Sync + 'static {
        async fn list_users(&self, parts: &Parts) -> Result<Vec<UserDto>, ApiError>;
        async fn create_user(&self, parts: &Parts, input: CreateUser) -> Result<UserDto, ApiError>;
        async fn update_user(
            &self,
            parts: &Parts,
            id: String,
            input: UpdateUser,
        ) -> Result<UserDto, ApiError>;
        async fn user_quota(&self, parts: &Parts, id: String) -> Result<QuotaReport, ApiError>;
        async fn user_quotas(&self, parts: &Parts) -> Result<Vec<UserQuota>, ApiError>;
        async fn change_password(
            &self,
            parts: &Parts,
            input: ChangePassword,
        ) -> Result<(), ApiError>;
        async fn list_tokens(&self, parts: &Parts) -> Result<Vec<TokenDto>, ApiError>;
        async fn create_token(
            &self,
            parts: &Parts,
            input: CreateToken,
        ) -> Result<TokenCreated, ApiError>;
        async fn revoke_token(&self, parts: &Parts, id: String) -> Result<(), ApiError>;
        async fn list_ssh_keys(&self, parts: &Parts) -> Result<Vec<SshKeyDto>, ApiError>;
        async fn add_ssh_key(
            &self,
            parts: &Parts,
            input: CreateSshKey,
        ) -> Result<SshKeyDto, ApiError>;
        async fn remove_ssh_key(&self, parts: &Parts, id: String) -> Result<(), ApiError>;
    }
}
