//! Extractors whose rejections are Hangar errors that say what was wrong.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::error::{ApiError, ApiResult};

/// A JSON body of the shape the API document gives `T` (see [`super::shape`]), read into
/// `T`; anything else answers 400 in Hangar's error format, naming the field at fault.
pub struct ValidJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidJson<T>
where
    T: DeserializeOwned + utoipa::ToSchema + 'static,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(ApiError::bad_request(
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        let mut value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
        super::shape::check::<T>(&value)?;
        super::shape::integral_floats_as_integers(&mut value);
        serde_json::from_value(value)
            .map(ValidJson)
            .map_err(|e| ApiError::bad_request(format!("the JSON body does not fit: {e}")))
    }
}

/// Whether the request says its body is JSON (`application/json`, or `application/*+json`).
fn is_json(req: &Request) -> bool {
    let Some(content_type) = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn body_error(rejection: BytesRejection) -> ApiError {
    match rejection {
        BytesRejection::FailedToBufferBody(e)
            if e.body_text().contains("length limit") || e.status().as_u16() == 413 =>
        {
            ApiError::bad_request("the body is too large: at most 2 MiB")
        }
        other => {
            ApiError::bad_request(format!("the body could not be read: {}", other.body_text()))
        }
    }
}

/// `axum::extract::Query`, but a malformed query answers 400 in Hangar's error format.
pub struct ValidQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ValidQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ValidQuery(value))
            .map_err(|e: QueryRejection| ApiError::bad_request(e.body_text()))
    }
}

/// `axum::extract::Path`, but a path parameter that does not parse (a port beyond 65535, say)
/// answers 400 in Hangar's error format.
pub struct ValidPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ValidPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ValidPath(value))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// Every WebSocket of Hangar goes through this: a request that is not an upgrade answers 400
/// in Hangar's error format, and messages (and frames) are at most
/// `--websocket-max-message-bytes` (a bigger one closes the connection). Called in the
/// handler after its own checks, so that those answer first.
pub fn websocket(
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    config: &Config,
) -> ApiResult<WebSocketUpgrade> {
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::bad_request(format!(
            "this is a WebSocket: connect with a WebSocket client ({})",
            rejection.body_text()
        ))
    })?;
    let max = usize::try_from(config.websocket_max_message_bytes).unwrap_or(usize::MAX);
    Ok(upgrade.max_message_size(max).max_frame_size(max))
}
