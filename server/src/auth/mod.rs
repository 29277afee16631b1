//! Who is asking: password sign-in, browser sessions (kept in the database) and the sign-in
//! rate limit. (The cross-origin check and the client's address are the HTTP door's:
//! `crate::http::middleware`.)

pub mod ed25519;
pub mod git_key;
pub mod oidc;
pub mod password;
pub mod rate_limit;
pub mod session_store;

use std::net::IpAddr;

use app::api::auth::{LoginRequest, UserDto};
use app::api::ssr::Presented;
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

    /// The active user of the session a request presented, if any: looked up once however
    /// many server functions of one page ask for it (they share what the request presented).
    pub async fn presented_user(&self, presented: &Presented) -> ApiResult<Option<UserDto>> {
        presented
            .session_user
            .get_or_try_init(|| async {
                Ok::<_, ApiError>(
                    self.session_user(&presented.session)
                        .await?
                        .map(UserDto::from),
                )
            })
            .await
            .cloned()
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
            time_zone: user.time_zone,
            dotfiles_url: user.dotfiles_url,
        }
    }
}
