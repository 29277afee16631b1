//! Extractors whose rejections are Hangar errors that say what was wrong.

use axum::extract::rejection::JsonRejection;
use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;

use crate::auth::session_of;
use crate::entities::user;
use crate::error::AppError;
use crate::services::access::Caller;
use crate::state::AppState;

/// `axum::Json`, but a malformed body answers 400 in Hangar's error format.
pub struct ValidJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ValidJson(value)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

fn json_error(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            AppError::bad_request("send the body as JSON with `Content-Type: application/json`")
        }
        JsonRejection::JsonDataError(e) => {
            AppError::bad_request(format!("the JSON body does not fit: {}", e.body_text()))
        }
        JsonRejection::JsonSyntaxError(e) => {
            AppError::bad_request(format!("the body is not valid JSON: {}", e.body_text()))
        }
        other => AppError::bad_request(other.body_text()),
    }
}

/// The signed-in caller, by session cookie or `Authorization: Bearer <token>`; 401 otherwise.
impl axum::extract::FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        caller_of(parts, state).await
    }
}

pub async fn caller_of(
    parts: &axum::http::request::Parts,
    state: &AppState,
) -> Result<Caller, AppError> {
    if let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                AppError::Unauthorized(
                    "the Authorization header must be `Bearer <api token>`".into(),
                )
            })?;
        return state
            .services
            .user_for_token(token.trim())
            .await?
            .map(|user| Caller { user })
            .ok_or_else(|| {
                AppError::Unauthorized(
                    "the API token is unknown, revoked or expired: create a new one".into(),
                )
            });
    }
    session_user_of(parts, state)
        .await?
        .map(|user| Caller { user })
        .ok_or_else(AppError::unauthorized)
}

/// The signed-in user of a request, looked up once however many server functions of one
/// page ask for it (they share the request's extensions).
#[derive(Clone, Default)]
pub struct SessionUser(Arc<tokio::sync::OnceCell<Option<user::Model>>>);

/// Gives each request its own [`SessionUser`].
pub async fn remember_session_user(mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(SessionUser::default());
    next.run(request).await
}

/// The session's active user, if any.
pub async fn session_user_of(
    parts: &axum::http::request::Parts,
    state: &AppState,
) -> Result<Option<user::Model>, AppError> {
    let session = session_of(parts)?;
    match parts.extensions.get::<SessionUser>() {
        Some(SessionUser(cell)) => cell
            .get_or_try_init(|| state.auth.session_user(&session))
            .await
            .cloned(),
        None => state.auth.session_user(&session).await,
    }
}

/// A caller who must be an admin: checked before the body is read, so a member learns
/// nothing from validation messages of routes they may not use.
pub struct AdminCaller(pub Caller);

impl axum::extract::FromRequestParts<AppState> for AdminCaller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = caller_of(parts, state).await?;
        caller.require_admin()?;
        Ok(AdminCaller(caller))
    }
}
