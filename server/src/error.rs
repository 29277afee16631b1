//! The server's error type, its constructors, and its one mapping to HTTP and to the wire.

use std::time::Duration;

use app::error::{ApiError, ErrorBody, ErrorCode};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

pub type AppResult<T> = Result<T, AppError>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    InvalidInput {
        field: Option<String>,
        message: String,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    QuotaExceeded(crate::domain::quota::QuotaExceeded),
    #[error("{0}")]
    InvalidState(crate::domain::lifecycle::InvalidTransition),
    /// The space is not in a state that allows this (other than a lifecycle action).
    #[error("{message}")]
    WrongState {
        state: crate::domain::lifecycle::SpaceState,
        message: String,
    },
    #[error("too many attempts: try again in {} seconds", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    #[error("{0}")]
    Unavailable(String),
    /// Something broke inside; the details go to the log, never to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        AppError::InvalidInput {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        AppError::InvalidInput {
            field: None,
            message: message.into(),
        }
    }

    pub fn unauthorized() -> Self {
        AppError::Unauthorized("sign in first: no valid session or API token".into())
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden(message.into())
    }

    pub fn not_found(what: &str) -> Self {
        AppError::NotFound(format!("{what} not found"))
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        AppError::Internal(error.to_string())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::InvalidInput { .. } => ErrorCode::InvalidInput,
            AppError::Unauthorized(_) => ErrorCode::Unauthorized,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::Conflict(_) => ErrorCode::Conflict,
            AppError::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            AppError::InvalidState(_) | AppError::WrongState { .. } => ErrorCode::InvalidState,
            AppError::RateLimited { .. } => ErrorCode::RateLimited,
            AppError::Unavailable(_) => ErrorCode::Unavailable,
            AppError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        let code = error.code();
        match error {
            AppError::InvalidInput { field, message } => {
                let api = ApiError::new(code, message);
                match field {
                    Some(field) => api.with_field(field),
                    None => api,
                }
            }
            AppError::RateLimited { retry_after } => ApiError::new(
                code,
                format!(
                    "too many attempts: try again in {} seconds",
                    retry_after.as_secs().max(1)
                ),
            )
            .with_detail("retry_after_secs", retry_after.as_secs().max(1)),
            AppError::QuotaExceeded(refusal) => ApiError::new(code, refusal.to_string())
                .with_detail("limit", refusal.dimension.as_str())
                .with_detail("usage", refusal.used)
                .with_detail("quota", refusal.quota)
                .with_detail("needed", refusal.needed),
            AppError::InvalidState(refusal) => ApiError::new(code, refusal.to_string())
                .with_detail("state", refusal.state.as_str())
                .with_detail("action", refusal.action.as_str()),
            AppError::WrongState { state, message } => {
                ApiError::new(code, message).with_detail("state", state.as_str())
            }
            AppError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                ApiError::new(
                    code,
                    "something went wrong inside Hangar; the details are in the server log",
                )
            }
            other => ApiError::new(code, other.to_string()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            AppError::RateLimited { retry_after } => Some(retry_after.as_secs().max(1)),
            _ => None,
        };
        let error = ApiError::from(self);
        let mut response = (error.code.status(), Json(ErrorBody { error })).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<crate::domain::quota::QuotaExceeded> for AppError {
    fn from(refusal: crate::domain::quota::QuotaExceeded) -> Self {
        AppError::QuotaExceeded(refusal)
    }
}

impl From<crate::domain::lifecycle::InvalidTransition> for AppError {
    fn from(refusal: crate::domain::lifecycle::InvalidTransition) -> Self {
        AppError::InvalidState(refusal)
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(error: sea_orm::DbErr) -> Self {
        AppError::Internal(format!("database: {error}"))
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(error: tower_sessions::session::Error) -> Self {
        AppError::Internal(format!("session: {error}"))
    }
}
