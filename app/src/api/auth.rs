//! Signing in and out, and who the caller is.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// A user's id: an opaque string.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "ssr", schema(value_type = String))]
pub struct UserId(pub String);

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Member,
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
    pub created_at: String,
}

/// A short reference to a user, as other resources name them.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
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
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(
        crate::api::ssr::backend()?
            .login(&parts, LoginRequest { username, password })
            .await,
    )
}

#[server]
pub async fn logout() -> Result<(), ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.logout(&parts).await)
}

#[server]
pub async fn current_user() -> Result<Option<UserDto>, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.current_user(&parts).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{LoginRequest, UserDto};
    use crate::error::ApiError;

    /// Authentication as the server implements it; `parts` is the HTTP request being served.
    #[async_trait::async_trait]
    pub trait AuthBackend: Send + Sync + 'static {
        async fn login(
            &self,
            parts: &http::request::Parts,
            input: LoginRequest,
        ) -> Result<UserDto, ApiError>;
        async fn logout(&self, parts: &http::request::Parts) -> Result<(), ApiError>;
        async fn current_user(
            &self,
            parts: &http::request::Parts,
        ) -> Result<Option<UserDto>, ApiError>;
    }
}
