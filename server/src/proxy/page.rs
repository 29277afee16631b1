//! What the proxy answers when it cannot pass a request on: a small page for browsers (one
//! that retries by itself while an app may be starting), JSON for everything else.

use axum::response::{Html, IntoResponse, Response};
use http::header::{self, HeaderMap};
use http::StatusCode;

use crate::error::{ApiError, ErrorCode};

/// Whether the client is a browser asking for a page.
pub fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn code_of(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::BAD_REQUEST => ErrorCode::InvalidInput,
        _ => ErrorCode::Unavailable,
    }
}

/// An answer that says why, with `status`. `retry`: the page reloads itself every few
/// seconds (an app that is still starting shows up without the person doing anything).
pub fn refusal(
    status: StatusCode,
    title: &str,
    message: &str,
    html: bool,
    retry: bool,
) -> Response {
    if !html {
        let error = ApiError::new(code_of(status), message);
        return (status, axum::Json(app::error::ErrorBody { error })).into_response();
    }
    let refresh = if retry {
        r#"<meta http-equiv="refresh" content="3">"#
    } else {
        ""
    };
    let hint = if retry {
        "<p class=\"hint\">This page tries again every 3 seconds.</p>"
    } else {
        ""
    };
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Hangar</title><style>body{{font-family:system-ui,sans-serif;\
         max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1f2933}}h1{{font-size:1.4rem}}\
         .hint{{color:#616e7c}}</style></head><body data-status=\"{code}\"><h1>{title}</h1>\
         <p id=\"reason\">{message}</p>{hint}</body></html>",
        title = escape(title),
        message = escape(message),
        code = status.as_u16(),
    );
    let mut response = (status, Html(body)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

/// An [`ApiError`] from a service as a proxy answer.
pub fn from_error(error: &ApiError, html: bool) -> Response {
    let status = error.code.status();
    let title = match error.code {
        ErrorCode::NotFound => "Not found",
        ErrorCode::Forbidden => "Not allowed",
        ErrorCode::Unauthorized => "Sign in first",
        _ => "Cannot open this",
    };
    if html {
        return refusal(status, title, &error.message, true, false);
    }
    (
        status,
        axum::Json(app::error::ErrorBody {
            error: error.clone(),
        }),
    )
        .into_response()
}
