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
    use super::{LoginRequest, UserDto};
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
    }
}
