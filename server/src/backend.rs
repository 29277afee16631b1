//! The services as the UI's server functions reach them (the `app` crate's backend traits).

use std::sync::Arc;

use app::api::auth::{ssr::AuthBackend, LoginRequest, UserDto};
use app::error::ApiError;
use http::request::Parts;

use crate::auth::{client_ip_of, session_of, AuthService};

pub struct ServerBackend {
    pub auth: Arc<AuthService>,
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
