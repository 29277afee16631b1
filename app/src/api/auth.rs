//! Signing in and out, and who the caller is.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
pub use crate::ids::UserId;
use crate::time::Timestamp;
#[cfg(feature = "ssr")]
use sea_orm::sea_query::StringLen;

/// What a user may do: `admin` everything, `member` their own and shared spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "ssr",
    derive(utoipa::ToSchema, sea_orm::EnumIter, sea_orm::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "String(StringLen::None)")
)]
pub enum Role {
    #[cfg_attr(feature = "ssr", sea_orm(string_value = "admin"))]
    Admin,
    #[cfg_attr(feature = "ssr", sea_orm(string_value = "member"))]
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

/// A user as the API shows it (never the password hash).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDto {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub role: Role,
    pub active: bool,
    /// The user's own quota (null = unlimited); groups add to it.
    pub max_spaces: Option<i64>,
    pub compute_units: Option<i64>,
    pub storage_units: Option<i64>,
    #[serde(default)]
    pub max_tunnels: Option<i64>,
    pub created_at: Timestamp,
    /// IANA time zone of their schedules and of the times pages show them (null: UTC).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Their dotfiles repository, installed at the first start of each new space (null: none).
    #[serde(default)]
    pub dotfiles_url: Option<String>,
}

/// A short reference to a user, as other resources name them.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
}

impl From<&UserDto> for UserRef {
    fn from(user: &UserDto) -> Self {
        UserRef {
            id: user.id.clone(),
            username: user.username.clone(),
            display_name: user.display_name.clone(),
        }
    }
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// 1 to 64 characters, not all blank (surrounding blanks and case are ignored).
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 64, pattern = "[^ \\t\\n\\f\\r]")
    )]
    pub username: String,
    /// 1 to 1024 characters.
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 1024))]
    pub password: String,
}

/// `{"user": ...}`, the answer of login and of `GET /api/v1/me`.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserEnvelope {
    pub user: UserDto,
}

/// Who may sign in with a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum PasswordSignIn {
    /// Every active account.
    Everyone,
    /// Only the break-glass local admin: everyone else signs in through the identity provider.
    BreakGlass,
}

/// How one signs in here: `GET /api/v1/auth/methods` and the sign-in page.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignInMethods {
    /// The identity provider's name ("Sign in with <name>"), when sign-in through one is
    /// configured: it starts at `GET /api/v1/auth/oidc/login`.
    pub provider: Option<String>,
    pub password: PasswordSignIn,
    /// What the last sign-in or sign-out of this browser has to say (why a sign-in through
    /// the provider was refused, whether the provider's session remains), once.
    pub notice: Option<String>,
}

/// The command line's browser sign-in, finished: the one-time code Hangar sent to its
/// loopback address, and the secret whose SHA-256 it sent when it began.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CliTokenRequest {
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 200))]
    pub code: String,
    #[cfg_attr(feature = "ssr", schema(min_length = 43, max_length = 128))]
    pub verifier: String,
    /// The new token's name (e.g. `hangar CLI on laptop`).
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 64))]
    pub name: Option<String>,
}

/// The command line's token, made by its browser sign-in.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CliSignedIn {
    pub user: UserDto,
    /// The secret is in it, once.
    pub token: crate::api::users::TokenCreated,
}

/// How one signs in here, and this browser's notice (once).
#[server]
pub async fn sign_in_options() -> Result<SignInMethods, ApiError> {
    use crate::api::ssr::{answer, api, presented};
    answer(api()?.sign_in_methods(&presented()?).await)
}

#[server]
pub async fn login(username: String, password: String) -> Result<UserDto, ApiError> {
    use crate::api::ssr::{answer, api, presented};
    answer(
        api()?
            .login(&presented()?, LoginRequest { username, password })
            .await,
    )
}

#[server]
pub async fn logout() -> Result<(), ApiError> {
    use crate::api::ssr::{answer, api, presented};
    answer(api()?.logout(&presented()?).await)
}

/// The signed-in user, if any.
#[server]
pub async fn current_user() -> Result<Option<UserDto>, ApiError> {
    use crate::api::ssr::{answer, api, presented};
    answer(api()?.current_user(&presented()?).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{LoginRequest, SignInMethods, UserDto};
    use crate::api::ssr::{Caller, Presented};
    use crate::error::ApiResult;

    /// Who is asking, and signing in and out (what the request presented carries the session).
    #[async_trait::async_trait]
    pub trait AuthApi: Send + Sync + 'static {
        /// The signed-in caller of this request (session cookie or API token); 401 when none.
        async fn caller(&self, presented: &Presented) -> ApiResult<Caller>;
        async fn login(&self, presented: &Presented, input: LoginRequest) -> ApiResult<UserDto>;
        async fn logout(&self, presented: &Presented) -> ApiResult<()>;
        /// The session's signed-in user, if any (no error when signed out).
        async fn current_user(&self, presented: &Presented) -> ApiResult<Option<UserDto>>;
        /// How one signs in here, with the session's notice (taken: shown once).
        async fn sign_in_methods(&self, presented: &Presented) -> ApiResult<SignInMethods>;
    }
}
