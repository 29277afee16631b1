//! The domain services: every rule about users, groups, templates, spaces, shares, tokens and
//! audit lives here, called alike by the JSON API and by the UI's server functions.

pub mod access;
pub mod activity;
pub mod apps;
pub mod audit;
pub mod deliveries;
pub mod events;
pub mod features;
pub mod files;
pub mod gauges;
pub mod git_credentials;
pub mod groups;
pub mod nodes;
pub mod notifications;
pub mod oidc;
pub mod orphans;
pub mod overview;
pub mod paging;
pub mod ports;
pub mod quota;
pub mod recent;
pub mod slots;
pub mod spaces;
pub mod ssh;
pub mod templates;
pub mod tokens;
pub mod usage;
pub mod users;
pub mod watch;

use std::sync::Arc;

use app::ids::{SpaceId, UserId};
use sea_orm::{DatabaseConnection, DbErr, SqlErr};

use crate::auth::AuthService;
use crate::config::Config;
use crate::error::ApiError;
use crate::live::{Change, Notifier};
use crate::runtime::Runtime;
use crate::terminal::TerminalHub;

/// The services with what they share: the database, the configuration and the runtime.
#[derive(Clone)]
pub struct Services {
    pub db: DatabaseConnection,
    pub auth: Arc<AuthService>,
    pub config: Arc<Config>,
    pub runtime: Arc<dyn Runtime>,
    pub space_locks: Arc<spaces::SpaceLocks>,
    /// One lock per space's setup log, which several writers (the setup, a build, the
    /// lifecycle commands) may grow at once.
    pub setup_logs: Arc<spaces::SpaceLocks>,
    pub terminals: Arc<TerminalHub>,
    /// The SSH gateway's live connections and address.
    pub ssh: Arc<ssh::SshSessions>,
    /// What the apps of spaces share (port scans, app tickets' key, bridges).
    pub apps: Arc<apps::Apps>,
    pub notifier: Arc<Notifier>,
    /// Live-update streams open on this server, per user.
    pub live_streams: Arc<slots::Slots>,
    /// Turns true when the server begins to shut down, so long-lived streams end.
    pub shutting_down: Arc<tokio::sync::watch::Sender<bool>>,
    /// File transfers under way, for the per-user limit.
    pub transfers: Arc<slots::Slots>,
    /// The identity provider, when sign-in through one is configured.
    pub oidc: Option<Arc<crate::auth::oidc::OidcProvider>>,
    /// The time the rules go by (tests move it).
    pub clock: Arc<dyn crate::domain::clock::Clock>,
    /// Activity seen at the doors, written down every few seconds.
    pub activity: Arc<activity::Activity>,
    /// What the automatic-stop loop keeps between passes on this server.
    pub autostop: Arc<spaces::autostop::AutostopState>,
    /// Wakes the sending loop when a notification is queued for webhook or email.
    pub deliveries_queued: Arc<tokio::sync::Notify>,
    /// The notices sent lately, not repeated within their quiet window.
    pub notice_quiet: Arc<notifications::NoticeQuiet>,
    /// Who is asking and which space a name is, reused for a moment.
    pub remembered: Arc<recent::Remembered>,
}

impl Services {
    pub fn new(
        db: DatabaseConnection,
        auth: Arc<AuthService>,
        config: Arc<Config>,
        runtime: Arc<dyn Runtime>,
        terminals: Arc<TerminalHub>,
        apps: apps::Apps,
    ) -> Self {
        let oidc = config.oidc().and_then(|settings| {
            crate::auth::oidc::OidcProvider::new(settings)
                .map_err(|e| tracing::error!("sign-in through the identity provider is off: {e}"))
                .ok()
                .map(Arc::new)
        });
        let clock: Arc<dyn crate::domain::clock::Clock> =
            Arc::new(crate::domain::clock::SystemClock);
        Self {
            oidc,
            activity: Arc::new(activity::Activity::new(clock.clone())),
            clock,
            autostop: Arc::default(),
            db,
            auth,
            config,
            runtime,
            space_locks: Arc::default(),
            setup_logs: Arc::default(),
            terminals,
            ssh: Arc::default(),
            apps: Arc::new(apps),
            notifier: Arc::default(),
            live_streams: Arc::default(),
            shutting_down: Arc::new(tokio::sync::watch::channel(false).0),
            transfers: Arc::default(),
            deliveries_queued: Arc::default(),
            notice_quiet: Arc::default(),
            remembered: Arc::default(),
        }
    }
}

/// A fresh id for a new record (a UUID), of whichever id type is wanted.
pub fn new_id<T: From<String>>() -> T {
    T::from(uuid::Uuid::new_v4().to_string())
}

/// Maps a unique-constraint violation to a 409 that says which name is taken.
pub fn conflict_on_duplicate(error: DbErr, message: impl FnOnce() -> String) -> ApiError {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => ApiError::conflict(message()),
        _ => error.into(),
    }
}

/// Parses a JSON column written by Hangar itself.
pub fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, ApiError> {
    serde_json::from_str(text)
        .map_err(|e| ApiError::internal(format!("stored {what} unreadable: {e}")))
}

pub fn to_json<T: serde::Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(ApiError::internal)
}

/// Largest quota value that can be given (beyond it, use null: unlimited).
pub const MAX_QUOTA: i64 = 1_000_000;

/// A quota value given in input: 0 to [`MAX_QUOTA`], or null for unlimited.
pub fn check_limit(field: &str, value: Option<i64>) -> Result<Option<i64>, ApiError> {
    match value {
        Some(v) if !(0..=MAX_QUOTA).contains(&v) => Err(ApiError::invalid(
            field,
            format!("{field} must be 0 to {MAX_QUOTA} (or null for unlimited), not {v}"),
        )),
        other => Ok(other),
    }
}

impl Services {
    /// Ends live streams and terminal sessions so that a graceful shutdown can finish
    /// (spaces keep running).
    pub fn begin_shutdown(&self) {
        self.shutting_down.send_replace(true);
        self.terminals
            .close_all("Hangar is restarting: the terminal reconnects when it is back");
    }

    /// Completes when the server begins to shut down.
    pub fn shutdown_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut receiver = self.shutting_down.subscribe();
        async move {
            let _ = receiver.wait_for(|down| *down).await;
        }
    }

    /// A place for one more live-update stream of the caller, or 409 when they have as many
    /// open as `--live-streams-per-user` allows (each open page holds one).
    pub fn open_live_stream(&self, caller: &access::Caller) -> Result<slots::Slot, ApiError> {
        let max = self.config.live_streams_per_user as usize;
        self.live_streams.take(caller.id(), max).ok_or_else(|| {
            ApiError::conflict(format!(
                "you have {max} live-update streams open, the most allowed (one per open Hangar \
                 page): close some pages"
            ))
            .with_detail("limit", max)
        })
    }

    /// Tells live views that these users' quota or spaces changed.
    pub fn users_changed(&self, users: Vec<UserId>) {
        self.notifier.notify(Change {
            users,
            space_id: None,
            presence: false,
            ..Default::default()
        });
    }

    /// Tells live views of the space's owner and sharees (and admins) that it changed.
    pub async fn space_changed(&self, space_id: &SpaceId) {
        self.notify_space(space_id, false).await;
    }

    /// Tells them that only who is connected to the space changed (a session opened or
    /// closed): access watches let it pass ([`Change::presence`]).
    pub async fn space_presence_changed(&self, space_id: &SpaceId) {
        self.notify_space(space_id, true).await;
    }

    async fn notify_space(&self, space_id: &SpaceId, presence: bool) {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let mut users = Vec::new();
        if let Ok(Some(space)) = crate::entities::space::Entity::find_by_id(space_id.clone())
            .one(&self.db)
            .await
        {
            users.push(space.owner_id);
        }
        if let Ok(shares) = crate::entities::share::Entity::find()
            .filter(crate::entities::share::Column::SpaceId.eq(space_id.clone()))
            .all(&self.db)
            .await
        {
            users.extend(shares.into_iter().map(|s| s.user_id));
        }
        self.notifier.notify(Change {
            users,
            space_id: Some(space_id.clone()),
            presence,
            ..Default::default()
        });
    }
}
