//! Users as admins manage them, API tokens and SSH keys.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::auth::{Role, UserDto};
use super::page::{PageQuery, Paged};
use super::quota::body_with_quota;
use super::quota::{QuotaReport, UserQuota};
use crate::error::ApiError;
use crate::ids::{SshKeyId, TokenId, UserId};
use crate::time::Timestamp;

body_with_quota! {
/// A new user (admins only).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// 2 to 32 characters: lowercase letters, digits and `-`, starting with a letter.
    #[cfg_attr(feature = "ssr", schema(pattern = "^[a-z][a-z0-9-]{1,31}$"))]
    pub username: String,
    /// 8 to 1024 characters.
    #[cfg_attr(feature = "ssr", schema(min_length = 8, max_length = 1024))]
    pub password: String,
    #[serde(default)]
    pub role: Option<Role>,
    /// Empty, or an address with an `@` (at most 254 characters).
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 254, pattern = "^$|@"))]
    pub email: Option<String>,
    /// At most 100 characters; absent: the username.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 100))]
    pub display_name: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
}
absent: "Absent: the server's default for new users; `null`: unlimited."
}

body_with_quota! {
/// Changes to a user (admins only); absent fields stay as they are.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// A new password (8 to 1024 characters): the user's sessions end. Not for yourself:
    /// change your own at `POST /api/v1/me/password`, with your current one.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(min_length = 8, max_length = 1024))]
    pub password: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 254, pattern = "^$|@"))]
    pub email: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 100))]
    pub display_name: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    /// Also revoke every API token of the user (their sessions end with a password reset).
    #[serde(default)]
    pub revoke_tokens: Option<bool>,
}
}

/// What an API token may do; each scope includes the ones before it. Browser sessions may
/// do everything.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// Read what the user may see (GET requests and the live-update stream).
    Read,
    /// Also change things: spaces, sharing, terminals, and for admins administration.
    Write,
    /// Also manage the user's credentials: create and revoke API tokens and SSH keys, change
    /// the password.
    Credentials,
}

impl TokenScope {
    pub const ALL: [TokenScope; 3] = [TokenScope::Read, TokenScope::Write, TokenScope::Credentials];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Write => "write",
            TokenScope::Credentials => "credentials",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The scopes asked for, each with those it includes, in order.
    pub fn closure(asked: &[TokenScope]) -> Vec<TokenScope> {
        let highest = asked.iter().max().copied().unwrap_or(TokenScope::Read);
        Self::ALL.into_iter().filter(|s| *s <= highest).collect()
    }
}

/// A new API token.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// 1 to 64 characters, not all blank.
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 64, pattern = "[^ \\t\\n\\f\\r]")
    )]
    pub name: String,
    /// Days until it expires, at most the server's limit (`--token-max-days`); absent or
    /// null: 90 days (or that limit when lower), and when a token creates it, no longer than
    /// that token has left (the answer's `note` says so). Asking for longer than the creating
    /// token has left is refused.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 3650))]
    pub expires_in_days: Option<i64>,
    /// What it may do (each scope includes the ones before it: `read` < `write` <
    /// `credentials`); absent: `read` and `write`. A token may only create tokens if it has
    /// `credentials`, and no more powerful or longer-lived than itself.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(min_items = 1, max_items = 3))]
    pub scopes: Option<Vec<TokenScope>>,
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
    /// What it may do.
    pub scopes: Vec<TokenScope>,
}

/// The answer to creating a token: the only time the secret is shown.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenCreated {
    pub token: TokenDto,
    pub secret: String,
    /// Present when the token ends sooner than the default: made by another token without
    /// `expires_in_days`, it ends when its creator does (a token cannot outlive the token
    /// that creates it); `token.expires_at` says when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A new SSH public key of the caller.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSshKey {
    /// At most 100 characters; absent: the key's comment (cut to 100), else its fingerprint.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 100))]
    pub name: Option<String>,
    /// One OpenSSH public key line (`ssh-ed25519 AAAA… comment`).
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 16384))]
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

/// The caller's new password, proven by the current one. Their other sessions end.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 1024))]
    pub current_password: String,
    /// 8 to 1024 characters.
    #[cfg_attr(feature = "ssr", schema(min_length = 8, max_length = 1024))]
    pub new_password: String,
    /// Also revoke every API token of the caller.
    #[serde(default)]
    pub revoke_tokens: bool,
}

/// A page of users, by username (admins only).
#[server(input = server_fn::codec::Json)]
pub async fn list_users(page: PageQuery) -> Result<Vec<UserDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.list_users(&caller, page).await)
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

/// A page of users' quota reports, by username (admins only): what pages listing many users
/// read, instead of one request per user.
#[server(input = server_fn::codec::Json)]
pub async fn user_quotas(page: PageQuery) -> Result<Vec<UserQuota>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.user_quotas(&caller, page).await)
}

#[server(name = ChangePasswordCall, input = server_fn::codec::Json)]
pub async fn change_password(input: ChangePassword) -> Result<(), ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    let presented = crate::api::ssr::presented()?;
    crate::api::ssr::answer(api.change_password(&caller, &presented, input).await)
}

#[server(input = server_fn::codec::Json)]
pub async fn list_tokens(page: PageQuery) -> Result<Vec<TokenDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.list_tokens(&caller, page).await)
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

#[server(input = server_fn::codec::Json)]
pub async fn list_ssh_keys(page: PageQuery) -> Result<Vec<SshKeyDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.list_ssh_keys(&caller, page).await)
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

impl Paged for UserDto {
    fn cursor(&self) -> String {
        self.id.to_string()
    }
}

impl Paged for TokenDto {
    fn cursor(&self) -> String {
        self.id.to_string()
    }
}

impl Paged for SshKeyDto {
    fn cursor(&self) -> String {
        self.id.to_string()
    }
}

impl Paged for UserQuota {
    fn cursor(&self) -> String {
        self.user_id.to_string()
    }
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{
        ChangePassword, CreateSshKey, CreateToken, CreateUser, SshKeyDto, TokenCreated, TokenDto,
        UpdateUser,
    };
    use crate::api::auth::UserDto;
    use crate::api::page::PageQuery;
    use crate::api::ssr::{Caller, Presented};
    use crate::error::ApiResult;
    use crate::ids::{SshKeyId, TokenId, UserId};

    /// Users as admins manage them, and the caller's own password.
    #[async_trait::async_trait]
    pub trait UsersApi: Send + Sync + 'static {
        /// A page of users, by username.
        async fn list_users(&self, caller: &Caller, page: PageQuery) -> ApiResult<Vec<UserDto>>;
        async fn get_user(&self, caller: &Caller, id: &UserId) -> ApiResult<UserDto>;
        async fn create_user(&self, caller: &Caller, input: CreateUser) -> ApiResult<UserDto>;
        async fn update_user(
            &self,
            caller: &Caller,
            id: &UserId,
            input: UpdateUser,
        ) -> ApiResult<UserDto>;
        async fn delete_user(&self, caller: &Caller, id: &UserId) -> ApiResult<()>;
        /// What the request presented tells who the client is: wrong current passwords count
        /// against the same limits as failed sign-ins.
        async fn change_password(
            &self,
            caller: &Caller,
            presented: &Presented,
            input: ChangePassword,
        ) -> ApiResult<()>;
    }

    /// The caller's API tokens and SSH keys.
    #[async_trait::async_trait]
    pub trait CredentialsApi: Send + Sync + 'static {
        /// A page of the caller's tokens, oldest first.
        async fn list_tokens(&self, caller: &Caller, page: PageQuery) -> ApiResult<Vec<TokenDto>>;
        async fn create_token(
            &self,
            caller: &Caller,
            input: CreateToken,
        ) -> ApiResult<TokenCreated>;
        async fn revoke_token(&self, caller: &Caller, id: &TokenId) -> ApiResult<()>;
        /// A page of the caller's SSH keys, oldest first.
        async fn list_ssh_keys(
            &self,
            caller: &Caller,
            page: PageQuery,
        ) -> ApiResult<Vec<SshKeyDto>>;
        async fn add_ssh_key(&self, caller: &Caller, input: CreateSshKey) -> ApiResult<SshKeyDto>;
        async fn remove_ssh_key(&self, caller: &Caller, id: &SshKeyId) -> ApiResult<()>;
    }
}
