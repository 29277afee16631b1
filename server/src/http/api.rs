//! JSON API v1 handlers: thin wrappers over the services.

use std::sync::Arc;

use app::api::auth::{LoginRequest, UserEnvelope};
use axum::extract::State;
use axum::http::{request::Parts, StatusCode};
use axum::Json;

use super::extract::ValidJson;
use crate::auth::{client_ip_of, session_of, AuthService, AuthUser};
use crate::error::{AppError, AppResult};

pub async fn login(
    State(auth): State<Arc<AuthService>>,
    parts: Parts,
    ValidJson(input): ValidJson<LoginRequest>,
) -> AppResult<Json<UserEnvelope>> {
    let session = session_of(&parts)?;
    let user = auth.login(&session, client_ip_of(&parts), &input).await?;
    Ok(Json(UserEnvelope { user }))
}

pub async fn logout(
    State(auth): State<Arc<AuthService>>,
    _caller: AuthUser,
    parts: Parts,
) -> AppResult<StatusCode> {
    auth.logout(&session_of(&parts)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(AuthUser(user): AuthUser) -> Json<UserEnvelope> {
    Json(UserEnvelope { user: user.into() })
}

pub async fn no_such_route() -> AppError {
    AppError::NotFound("no such API route: see /api/v1/openapi.json".into())
}
