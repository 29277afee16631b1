//! Wire types and server functions, one file per resource; each has an `ssr` part that
//! declares what the server must provide.

pub mod admin;
pub mod auth;
pub mod groups;
pub mod quota;
pub mod serde_helpers;
pub mod spaces;
pub mod templates;
pub mod users;

#[cfg(feature = "ssr")]
pub mod ssr {
    //! How server functions reach the server's services: the server provides an
    //! `Arc<dyn Backend>` as Leptos context and every request's `http::request::Parts`.

    use std::sync::Arc;

    use leptos::prelude::use_context;

    use crate::error::{ApiError, ErrorCode};

    /// Everything the UI's server functions need from the server.
    pub trait Backend:
        super::auth::ssr::AuthBackend
        + super::spaces::ssr::SpacesBackend
        + super::users::ssr::UsersBackend
        + super::groups::ssr::GroupsBackend
        + super::templates::ssr::TemplatesBackend
    {
    }

    impl<T> Backend for T where
        T: super::auth::ssr::AuthBackend
            + super::spaces::ssr::SpacesBackend
            + super::users::ssr::UsersBackend
            + super::groups::ssr::GroupsBackend
            + super::templates::ssr::TemplatesBackend
    {
    }

    pub type SharedBackend = Arc<dyn Backend>;

    pub fn backend() -> Result<SharedBackend, ApiError> {
        use_context::<SharedBackend>()
            .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the server provided no backend"))
    }

    /// Passes a server function's result on, giving a failed one the HTTP status its error
    /// code stands for (instead of a blanket 500).
    pub fn answer<T>(result: Result<T, ApiError>) -> Result<T, ApiError> {
        if let Err(error) = &result {
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(error.code.status());
            }
        }
        result
    }

    pub fn request_parts() -> Result<http::request::Parts, ApiError> {
        use_context::<http::request::Parts>()
            .ok_or_else(|| ApiError::new(ErrorCode::Internal, "no request in context"))
    }
}
