//! The services as the UI's server functions reach them (the `app` crate's backend traits).

use std::sync::Arc;

use app::api::auth::{ssr::AuthBackend, LoginRequest, UserDto};
use app::error::ApiError;
use http::request::Parts;

use app::api::spaces::{ssr::SpacesBackend, SpaceDto};

use crate::auth::{client_ip_of, session_of, AuthService};
use crate::http::extract::caller_of;
use crate::services::spaces::SpaceListQuery;
use crate::state::AppState;

pub struct ServerBackend {
    pub auth: Arc<AuthService>,
    pub state: AppState,
}

#[async_trait::async_trait]
impl SpacesBackend for ServerBackend {
    async fn list_spaces(&self, parts: &Parts) -> Result<Vec<SpaceDto>, ApiError> {
        let caller = caller_of(parts, &self.state).await?;
        Ok(self
            .state
            .services
            .list_spaces(&caller, SpaceListQuery::default())
            .await?)
    }
}

#[async_trait::async_trait]
impl AuthBackend for ServerBackend {
    async fn login(&self, parts: &Parts, input: LoginRequest) -> Result<UserDto, ApiError> {
        let session = session_of(parts)?;
        Ok(self
            .auth
            .login(&session, client_ip_of(parts), &input)
            .await?)
    }

    async fn logout(&self, parts: &Parts) -> Result<(), ApiError> {
        let session = session_of(parts)?;
        Ok(self.auth.logout(&session).await?)
    }

    async fn current_user(&self, parts: &Parts) -> Result<Option<UserDto>, ApiError> {
        let session = session_of(parts)?;
        Ok(self.auth.session_user(&session).await?.map(UserDto::from))
    }
}
