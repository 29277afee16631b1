//! Who is asking: password sign-in, browser sessions (kept in the database), the sign-in
//! rate limit and the cross-origin check.

pub mod client;
pub mod csrf;
pub mod password;
pub mod rate_limit;
pub mod session_store;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use std::sync::Arc;

use app::api::auth::{LoginRequest, UserDto};
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tower_sessions::Session;

use crate::entities::user;
use crate::error::{ApiError, ApiResult};
use rate_limit::LoginRateLimiter;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "hangar_session";

/// Session key under which the signed-in user's id is kept.
pub const SESSION_USER_ID: &str = "user_id";

/// Longest username typed at sign-in.
const MAX_USERNAME_CHARS: usize = 64;

#[derive(Debug)]
pub struct AuthService {
    db: DatabaseConnection,
    limiter: LoginRateLimiter,
    /// Verified against when the username is unknown, so failures take the same time.
    dummy_hash: String,
}

impl AuthService {
    pub async fn new(db: DatabaseConnection, limiter: LoginRateLimiter) -> ApiResult<Self> {
        let dummy_hash = password::hash_password(password::random_password()).await?;
        Ok(Self {
            db,
            limiter,
            dummy_hash,
        })
    }

    /// Checks a username and password; the same error (and about the same time) whether the
    /// user is unknown, inactive or the password wrong.
    pub async fn authenticate(
        &self,
        input: &LoginRequest,
        client: IpAddr,
    ) -> ApiResult<user::Model> {
        let typed = input.username.chars().count();
        let username = input.username.trim().to_ascii_lowercase();
        if username.is_empty() || typed > MAX_USERNAME_CHARS {
            return Err(ApiError::invalid(
                "username",
                format!("give your username (1 to {MAX_USERNAME_CHARS} characters)"),
            ));
        }
        let length = input.password.chars().count();
        if length == 0 || length > password::MAX_PASSWORD_CHARS {
            return Err(ApiError::invalid(
                "password",
                format!(
                    "give your password (1 to {} characters)",
                    password::MAX_PASSWORD_CHARS
                ),
            ));
        }
        let user = self
            .check_password(&username, client, input.password.clone())
            .await?;
        match user {
            Some(user) if user.active => Ok(user),
            // The typed name is not logged: people type passwords into it by mistake.
            _ => {
                tracing::info!(%client, "failed sign-in");
                Err(ApiError::unauthorized_because(
                    "wrong username or password (or the account is deactivated)",
                ))
            }
        }
    }

    /// The user named `username` if `password` is theirs, within the sign-in limits of
    /// `client` (the same limits for signing in and for proving the password elsewhere: both
    /// are guesses at it). None when the user is unknown or the password wrong, in about the
    /// same time either way.
    pub async fn check_password(
        &self,
        username: &str,
        client: IpAddr,
        password: String,
    ) -> ApiResult<Option<user::Model>> {
        let attempt = self.limiter.begin(username, client)?;
        let found = match user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(&self.db)
            .await
        {
            Ok(found) => found,
            Err(e) => {
                self.limiter.cancel(attempt);
                return Err(e.into());
            }
        };
        let stored_hash = found
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |u| u.password_hash.clone());
        match password::verify_password(password, stored_hash).await {
            Ok(true) if found.is_some() => {
                self.limiter.succeeded(attempt);
                Ok(found)
            }
            Ok(_) => Ok(None),
            Err(e) => {
                // Not judged (Hangar was too busy): it costs the client nothing.
                self.limiter.cancel(attempt);
                Err(e)
            }
        }
    }

    /// Lifts the sign-in limits on an account whose password an admin just reset.
    pub fn forget_failures(&self, username: &str) {
        self.limiter.forget_account(username);
    }

    /// Signs in with a password and binds the session to the user under a fresh session id.
    pub async fn login(
        &self,
        session: &Session,
        client: IpAddr,
        input: &LoginRequest,
    ) -> ApiResult<UserDto> {
        let user = self.authenticate(input, client).await?;
        // A new id at sign-in defeats session fixation.
        session.cycle_id().await?;
        session.insert(SESSION_USER_ID, &user.id).await?;
        tracing::info!(username = %user.username, %client, "signed in");
        Ok(user.into())
    }

    pub async fn logout(&self, session: &Session) -> ApiResult<()> {
        session.flush().await?;
        Ok(())
    }

    /// The active user of the request's session, if any: looked up once however many server
    /// functions of one page ask for it (they share the request's extensions).
    pub async fn request_user(&self, request: &Parts) -> ApiResult<Option<user::Model>> {
        let session = session_of(request)?;
        match request.extensions.get::<SessionUser>() {
            Some(SessionUser(cell)) => cell
                .get_or_try_init(|| self.session_user(&session))
                .await
                .cloned(),
            None => self.session_user(&session).await,
        }
    }

    /// The active user the session belongs to, if any.
    pub async fn session_user(&self, session: &Session) -> ApiResult<Option<user::Model>> {
        let Some(user_id) = session.get::<String>(SESSION_USER_ID).await? else {
            return Ok(None);
        };
        let user = user::Entity::find_by_id(user_id).one(&self.db).await?;
        Ok(user.filter(|u| u.active))
    }
}

/// The signed-in user of one request, once looked up.
#[derive(Clone, Default)]
pub struct SessionUser(Arc<tokio::sync::OnceCell<Option<user::Model>>>);

/// Gives each request its own [`SessionUser`].
pub async fn remember_session_user(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    request.extensions_mut().insert(SessionUser::default());
    next.run(request).await
}

impl From<user::Model> for UserDto {
    fn from(user: user::Model) -> Self {
        UserDto {
            id: user.id,
            role: user.role,
            username: user.username,
            display_name: user.display_name,
            email: user.email,
            active: user.active,
            max_spaces: user.max_spaces,
            compute_units: user.compute_units,
            storage_units: user.storage_units,
            max_tunnels: user.max_tunnels,
            created_at: user.created_at.into(),
        }
    }
}

/// The session of the request (the session layer always provides one).
pub fn session_of(parts: &Parts) -> ApiResult<Session> {
    parts
        .extensions
        .get::<Session>()
        .cloned()
        .ok_or_else(|| ApiError::internal("the session layer is missing"))
}

/// The client's address: as [`client::resolve_client`] found it (behind a trusted proxy, the
/// forwarded one), else as the socket saw it.
pub fn client_ip_of(parts: &Parts) -> IpAddr {
    if let Some(client) = parts.extensions.get::<client::Client>() {
        return client.ip;
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}
