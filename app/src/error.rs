//! The error of the services, of every API answer and of every server function: one type
//! from the rule that refused to the browser, with constructors for each kind and, on the
//! server, its one mapping to HTTP.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};

/// Machine-readable kind of an [`ApiError`]; the HTTP status follows from it.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidInput,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    QuotaExceeded,
    InvalidState,
    RateLimited,
    Unavailable,
    Internal,
    /// A body larger than the server accepts.
    TooLarge,
    /// Not enough free space where it was to be written.
    InsufficientStorage,
}

#[cfg(feature = "ssr")]
impl ErrorCode {
    /// The HTTP status of each error code: the one place where errors meet HTTP.
    pub fn status(self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict | ErrorCode::QuotaExceeded | ErrorCode::InvalidState => {
                StatusCode::CONFLICT
            }
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        }
    }
}

/// `{"code": "...", "message": "...", ...details}`: what went wrong and what to do about it.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// The input field at fault, for `invalid_input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Extra facts a client can act on (quota figures, retry delay, current state...).
    #[serde(flatten, default)]
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub details: BTreeMap<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            details: BTreeMap::new(),
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// Bad input in one field, which the message names and says how to fix.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message).with_field(field)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    /// Not signed in: no valid session or API token.
    pub fn unauthorized() -> Self {
        Self::unauthorized_because("sign in first: no valid session or API token")
    }

    pub fn unauthorized_because(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// Visible to the caller but not theirs to do.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// `{what} not found`: absent, or not visible to the caller.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn not_found_because(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// A name taken, or another clash with what exists.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// The space's state does not allow this (other than a lifecycle action).
    pub fn wrong_state(state: crate::lifecycle::SpaceState, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidState, message).with_detail("state", state.as_str())
    }

    /// A lifecycle action the space's state does not allow.
    pub fn invalid_transition(refusal: crate::lifecycle::InvalidTransition) -> Self {
        Self::new(ErrorCode::InvalidState, refusal.to_string())
            .with_detail("state", refusal.state.as_str())
            .with_detail("action", refusal.action.as_str())
    }

    /// Too many attempts; `retry_after_secs` says when to try again (also as `Retry-After`).
    pub fn rate_limited(retry_after: std::time::Duration) -> Self {
        let secs = whole_seconds(retry_after);
        Self::new(
            ErrorCode::RateLimited,
            format!("too many attempts: try again in {secs} seconds"),
        )
        .with_retry_after(retry_after)
    }

    /// Says when to try again: `retry_after_secs`, and `Retry-After` on the HTTP answer
    /// (whole seconds, at least 1).
    pub fn with_retry_after(self, retry_after: std::time::Duration) -> Self {
        self.with_detail(RETRY_AFTER, whole_seconds(retry_after))
    }

    /// A body over the size the server accepts (`limit_bytes` says which).
    pub fn too_large(message: impl Into<String>, limit_bytes: u64) -> Self {
        Self::new(ErrorCode::TooLarge, message).with_detail("limit_bytes", limit_bytes)
    }

    /// Not enough free space to write it (`available_bytes` says how much there is).
    pub fn insufficient_storage(message: impl Into<String>, available_bytes: u64) -> Self {
        Self::new(ErrorCode::InsufficientStorage, message)
            .with_detail("available_bytes", available_bytes)
    }

    /// Something Hangar depends on (Docker, the database) does not answer now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// Something broke inside: the detail goes to the server log, never to the client.
    #[cfg(feature = "ssr")]
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(detail = %detail, "internal error");
        Self::new(
            ErrorCode::Internal,
            "something went wrong inside Hangar; the details are in the server log",
        )
    }

    /// Seconds to wait before trying again, for a rate-limited answer.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.details.get(RETRY_AFTER).and_then(|v| v.as_u64())
    }
}

impl From<crate::lifecycle::InvalidTransition> for ApiError {
    fn from(refusal: crate::lifecycle::InvalidTransition) -> Self {
        Self::invalid_transition(refusal)
    }
}

const RETRY_AFTER: &str = "retry_after_secs";

/// A wait in whole seconds, rounded up, at least 1: trying again sooner would be refused.
fn whole_seconds(wait: std::time::Duration) -> u64 {
    u64::try_from(wait.as_millis().div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1)
}

/// What services, server functions and API handlers return.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(feature = "ssr")]
impl From<sea_orm::DbErr> for ApiError {
    fn from(error: sea_orm::DbErr) -> Self {
        ApiError::internal(format!("database: {error}"))
    }
}

#[cfg(feature = "ssr")]
impl From<tower_sessions::session::Error> for ApiError {
    fn from(error: tower_sessions::session::Error) -> Self {
        ApiError::internal(format!("session: {error}"))
    }
}

/// The JSON API's answer to an error: its status, `{"error": ...}`, and `Retry-After` when
/// rate-limited.
#[cfg(feature = "ssr")]
impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let retry_after = self.retry_after_secs();
        let mut response =
            (self.code.status(), axum::Json(ErrorBody { error: self })).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        response
    }
}

/// The JSON body of every error answer of the HTTP API.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ApiError,
}

/// Called when a server function's request never reached the server or its answer never came
/// back (the network dropped it). The page's live view registers itself here
/// (`crate::live`): errors know nothing of the views that follow them.
static TRANSPORT_FAILED: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Registers what to do when a request is lost on the way (once per page).
pub fn on_transport_failure(hook: fn()) {
    let _ = TRANSPORT_FAILED.set(hook);
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let code = match value {
            ServerFnErrorErr::Request(_) => {
                if let Some(hook) = TRANSPORT_FAILED.get() {
                    hook();
                }
                ErrorCode::Unavailable
            }
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) => ErrorCode::InvalidInput,
            _ => ErrorCode::Internal,
        };
        ApiError::new(code, value.to_string())
    }
}
