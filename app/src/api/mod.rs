//! Wire types and server functions, one file per resource; each has an `ssr` part that
//! declares what the server must provide.

pub mod admin;
pub mod auth;
pub mod autostop;
pub mod features;
pub mod files;
pub mod groups;
pub mod notifications;
pub mod overview;
pub mod page;
pub mod ports;
pub mod quota;
pub mod repos;
#[cfg(feature = "ssr")]
pub mod schema;
pub mod serde_helpers;
pub mod spaces;
pub mod ssh;
pub mod templates;
pub mod usage;
pub mod users;

#[cfg(feature = "ssr")]
pub mod ssr {
    //! The one interface both doors reach the services through: the JSON API's handlers
    //! and the pages' server functions call the same trait methods with the same arguments,
    //! and the server's `Services` implements them (every rule lives there). The server
    //! provides itself as an `Arc<dyn Api>` in the Leptos context.

    use std::net::IpAddr;
    use std::sync::Arc;

    use leptos::prelude::use_context;

    use crate::api::auth::{Role, UserDto};
    use crate::api::users::TokenScope;
    use crate::error::{ApiError, ApiResult, ErrorCode};
    use crate::ids::{SshKeyId, TokenId, UserId};

    /// Who is asking: a signed-in, active user, and what they proved it with.
    #[derive(Debug, Clone)]
    pub struct Caller {
        pub user: UserDto,
        pub credential: Credential,
    }

    /// What a caller signed in with: the right to act lasts as long as it does.
    #[derive(Clone, PartialEq, Eq)]
    pub enum Credential {
        /// A browser session (its record id: secret, never logged).
        Session(String),
        /// A personal API token, with what it may do.
        Token(TokenId, Vec<TokenScope>),
        /// A registered SSH key (the SSH gateway).
        SshKey(SshKeyId),
    }

    impl std::fmt::Debug for Credential {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Credential::Session(_) => f.write_str("Session(..)"),
                Credential::Token(id, scopes) => write!(f, "Token({id}, {scopes:?})"),
                Credential::SshKey(id) => write!(f, "SshKey({id})"),
            }
        }
    }

    impl Caller {
        pub fn id(&self) -> &UserId {
            &self.user.id
        }

        pub fn is_admin(&self) -> bool {
            self.user.role == Role::Admin
        }

        /// Admin-only actions: others are told it exists but is not theirs to use.
        pub fn require_admin(&self) -> ApiResult<()> {
            if self.is_admin() {
                Ok(())
            } else {
                Err(ApiError::forbidden("only admins may do this"))
            }
        }

        /// Whether what the caller signed in with allows `scope`: an API token only what it
        /// was made for, anything else everything.
        pub fn may(&self, scope: TokenScope) -> bool {
            match &self.credential {
                Credential::Token(_, scopes) => scopes.contains(&scope),
                Credential::Session(_) | Credential::SshKey(_) => true,
            }
        }

        /// 403 unless the caller's credential allows `scope`.
        pub fn require_scope(&self, scope: TokenScope) -> ApiResult<()> {
            if self.may(scope) {
                Ok(())
            } else {
                Err(ApiError::forbidden(format!(
                    "this API token lacks the `{}` scope: create one that has it",
                    scope.as_str()
                ))
                .with_detail("scope", scope.as_str()))
            }
        }
    }

    /// What a request shows to prove who is asking, read from it once by the door (the server's
    /// HTTP layer puts it in the request's extensions): the rooms below the doors never see a
    /// request.
    #[derive(Clone)]
    pub struct Presented {
        /// The browser session (every request has one, empty when signed out).
        pub session: tower_sessions::Session,
        /// What the `Authorization` header says.
        pub authorization: Authorization,
        /// The client's address (behind a trusted proxy, the one it forwarded).
        pub client: IpAddr,
        /// The request only reads (GET, HEAD, OPTIONS): all a `read` token may do.
        pub reads_only: bool,
        /// The session's user, looked up once however many server functions of one page ask.
        pub session_user: Arc<tokio::sync::OnceCell<Option<UserDto>>>,
    }

    /// The `Authorization` header of a request.
    #[derive(Clone, PartialEq, Eq)]
    pub enum Authorization {
        None,
        /// `Bearer <secret>`, the secret trimmed.
        Bearer(String),
        /// Anything else: answered 401, saying what the header must be.
        Malformed,
    }

    impl Authorization {
        pub fn parse(header: Option<&http::HeaderValue>) -> Self {
            let Some(header) = header else {
                return Authorization::None;
            };
            match header.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) {
                Some(secret) => Authorization::Bearer(secret.trim().to_owned()),
                None => Authorization::Malformed,
            }
        }
    }

    impl std::fmt::Debug for Authorization {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Authorization::None => f.write_str("None"),
                Authorization::Bearer(_) => f.write_str("Bearer(..)"),
                Authorization::Malformed => f.write_str("Malformed"),
            }
        }
    }

    impl Presented {
        /// What the request in hand presented (put there by the server's HTTP layer).
        pub fn of(parts: &http::request::Parts) -> ApiResult<Presented> {
            parts.extensions.get::<Presented>().cloned().ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Internal,
                    "the request was not read for credentials",
                )
            })
        }
    }

    /// For the JSON API's handlers that need more than the caller (signing in and out,
    /// proving a password).
    impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Presented {
        type Rejection = ApiError;

        async fn from_request_parts(
            parts: &mut http::request::Parts,
            _state: &S,
        ) -> Result<Self, Self::Rejection> {
            Presented::of(parts)
        }
    }

    /// Everything the server provides: who is asking, and every operation.
    pub trait Api:
        super::auth::ssr::AuthApi
        + super::spaces::ssr::SpaceQueries
        + super::spaces::ssr::SpaceLifecycle
        + super::spaces::ssr::Sharing
        + super::quota::ssr::QuotaApi
        + super::users::ssr::UsersApi
        + super::users::ssr::CredentialsApi
        + super::groups::ssr::GroupsApi
        + super::templates::ssr::TemplatesApi
        + super::admin::ssr::AdminApi
        + super::admin::ssr::AuditApi
        + super::ssh::ssr::SshApi
        + super::features::ssr::FeaturesApi
        + super::ports::ssr::PortsApi
        + super::files::ssr::FilesApi
        + super::autostop::ssr::AutostopApi
        + super::repos::ssr::ReposApi
        + super::usage::ssr::UsageApi
        + super::overview::ssr::OverviewApi
        + super::notifications::ssr::NotificationsApi
    {
    }

    impl<T> Api for T where
        T: super::auth::ssr::AuthApi
            + super::spaces::ssr::SpaceQueries
            + super::spaces::ssr::SpaceLifecycle
            + super::spaces::ssr::Sharing
            + super::quota::ssr::QuotaApi
            + super::users::ssr::UsersApi
            + super::users::ssr::CredentialsApi
            + super::groups::ssr::GroupsApi
            + super::templates::ssr::TemplatesApi
            + super::admin::ssr::AdminApi
            + super::admin::ssr::AuditApi
            + super::ssh::ssr::SshApi
            + super::features::ssr::FeaturesApi
            + super::ports::ssr::PortsApi
            + super::files::ssr::FilesApi
            + super::autostop::ssr::AutostopApi
            + super::repos::ssr::ReposApi
            + super::usage::ssr::UsageApi
            + super::overview::ssr::OverviewApi
            + super::notifications::ssr::NotificationsApi
    {
    }

    pub type SharedApi = Arc<dyn Api>;

    /// The server's services, as the server function being served reaches them.
    pub fn api() -> ApiResult<SharedApi> {
        use_context::<SharedApi>()
            .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the server provided no API"))
    }

    /// The services and who is asking, for a server function that needs a signed-in user.
    pub async fn caller() -> ApiResult<(SharedApi, Caller)> {
        let api = api()?;
        let caller = api.caller(&presented()?).await?;
        Ok((api, caller))
    }

    /// What the request being served presented, for a server function.
    pub fn presented() -> ApiResult<Presented> {
        Presented::of(&request_parts()?)
    }

    /// Passes a server function's result on, giving a failed one the HTTP status its error
    /// code stands for (instead of a blanket 500).
    pub fn answer<T>(result: ApiResult<T>) -> ApiResult<T> {
        if let Err(error) = &result {
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(error.code.status());
            }
        }
        result
    }

    /// The JSON API's door: the caller by session cookie or `Authorization: Bearer`; 401
    /// otherwise.
    impl<S> axum::extract::FromRequestParts<S> for Caller
    where
        S: Send + Sync,
        SharedApi: axum::extract::FromRef<S>,
    {
        type Rejection = ApiError;

        async fn from_request_parts(
            parts: &mut http::request::Parts,
            state: &S,
        ) -> Result<Self, Self::Rejection> {
            let api = <SharedApi as axum::extract::FromRef<S>>::from_ref(state);
            api.caller(&Presented::of(parts)?).await
        }
    }

    /// A caller who must be an admin: checked before the body is read, so a member learns
    /// nothing from validation messages of routes they may not use.
    pub struct AdminCaller(pub Caller);

    impl<S> axum::extract::FromRequestParts<S> for AdminCaller
    where
        S: Send + Sync,
        SharedApi: axum::extract::FromRef<S>,
    {
        type Rejection = ApiError;

        async fn from_request_parts(
            parts: &mut http::request::Parts,
            state: &S,
        ) -> Result<Self, Self::Rejection> {
            let caller = Caller::from_request_parts(parts, state).await?;
            caller.require_admin()?;
            Ok(AdminCaller(caller))
        }
    }

    pub fn request_parts() -> ApiResult<http::request::Parts> {
        use_context::<http::request::Parts>()
            .ok_or_else(|| ApiError::new(ErrorCode::Internal, "no request in context"))
    }
}
