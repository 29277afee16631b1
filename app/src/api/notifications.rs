//! Notifications: what Hangar tells a user of their spaces (stopped or about to stop by
//! themselves, a failed start, an OOM kill, a full volume, a quota reached, retention about to
//! delete, a share received), in the app (the bell), by webhook and by email; each user
//! chooses the channels per kind, admins set the defaults.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::page::{PageQuery, Paged};
use crate::error::ApiError;
use crate::time::Timestamp;

/// Most notifications kept per user: older ones go as new ones come.
pub const KEPT_PER_USER: u64 = 500;
/// Longest webhook URL.
pub const MAX_WEBHOOK_URL: usize = 2_048;
/// Webhook secrets: at least this long (a short one is guessed), at most the second.
pub const WEBHOOK_SECRET_LEN: (usize, usize) = (16, 256);

/// What happened.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A space was stopped by its idle stop, longest run or schedule, or stopped on its own
    /// (its container ended, its node was drained or went down).
    SpaceStopped,
    /// A space will soon be stopped by its idle stop, longest run or schedule.
    StopSoon,
    /// A space failed to start.
    StartFailed,
    /// A process in a space was killed for memory (the space's limit).
    OomKill,
    /// A space's volume is over 90 % full.
    VolumeFull,
    /// A start or a new space was refused by the quota.
    QuotaReached,
    /// Retention will soon delete a stopped space.
    RetentionSoon,
    /// Someone shared a space with the user.
    ShareReceived,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 8] = [
        NotificationKind::SpaceStopped,
        NotificationKind::StopSoon,
        NotificationKind::StartFailed,
        NotificationKind::OomKill,
        NotificationKind::VolumeFull,
        NotificationKind::QuotaReached,
        NotificationKind::RetentionSoon,
        NotificationKind::ShareReceived,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::SpaceStopped => "space_stopped",
            NotificationKind::StopSoon => "stop_soon",
            NotificationKind::StartFailed => "start_failed",
            NotificationKind::OomKill => "oom_kill",
            NotificationKind::VolumeFull => "volume_full",
            NotificationKind::QuotaReached => "quota_reached",
            NotificationKind::RetentionSoon => "retention_soon",
            NotificationKind::ShareReceived => "share_received",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// What a person reads in the settings.
    pub fn label(self) -> &'static str {
        match self {
            NotificationKind::SpaceStopped => {
                "A space was stopped automatically or stopped on its own"
            }
            NotificationKind::StopSoon => "A space is about to stop automatically",
            NotificationKind::StartFailed => "A space failed to start",
            NotificationKind::OomKill => "A process was killed for memory",
            NotificationKind::VolumeFull => "A volume is over 90 % full",
            NotificationKind::QuotaReached => "The quota refused a start",
            NotificationKind::RetentionSoon => "Retention will delete a stopped space",
            NotificationKind::ShareReceived => "A space was shared with me",
        }
    }
}

/// A notification in the caller's bell.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationDto {
    /// Grows with each notification: `POST …/read` marks those up to one.
    pub id: i64,
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    /// A page of Hangar about it (`/spaces/…`).
    pub link: Option<String>,
    pub created_at: Timestamp,
    pub read_at: Option<Timestamp>,
}

impl Paged for NotificationDto {
    fn cursor(&self) -> String {
        self.id.to_string()
    }
}

/// How many of the caller's notifications are unread.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadCount {
    pub unread: u64,
}

/// `POST /api/v1/me/notifications/read`: marks all of the caller's notifications read, or
/// those up to `up_to` (an id) only.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    #[serde(default)]
    pub up_to: Option<i64>,
}

/// Where one kind of notification goes.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationChoice {
    pub kind: NotificationKind,
    /// In the bell.
    pub in_app: bool,
    /// To the user's email address (when the server has SMTP settings).
    pub email: bool,
    /// To the user's webhook (when they set one).
    pub webhook: bool,
}

impl NotificationChoice {
    /// Hangar's own default: in the app only.
    pub fn built_in(kind: NotificationKind) -> Self {
        NotificationChoice {
            kind,
            in_app: true,
            email: false,
            webhook: false,
        }
    }
}

/// The caller's notification settings.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationSettings {
    /// Every kind, with the channels it goes to now (the caller's choice, else the admins'
    /// default).
    pub choices: Vec<NotificationChoice>,
    /// The kinds the caller chose for themselves (the others follow the admins' defaults).
    pub chosen: Vec<NotificationKind>,
    /// The caller's webhook, if set.
    pub webhook_url: Option<String>,
    /// Whether a signing secret is set (it is never shown again).
    pub webhook_secret_set: bool,
    /// Where email goes (the account's address), when the server can send email.
    pub email_to: Option<String>,
}

/// `PUT /api/v1/me/notification-settings`: what is given changes, the rest stays.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateNotificationSettings {
    /// Choices for these kinds (others unchanged); at most two per kind in all.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_items = 16))]
    pub choices: Option<Vec<NotificationChoice>>,
    /// These kinds follow the admins' defaults again; at most two per kind in all.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_items = 16))]
    pub reset: Option<Vec<NotificationKind>>,
    /// `http://` or `https://`, a host name or IPv4 address (a private one only where the
    /// server allows it: 403 otherwise), an optional port and path; at most 2048 characters;
    /// empty removes the webhook.
    #[serde(default)]
    #[cfg_attr(
        feature = "ssr",
        schema(
            max_length = 2048,
            pattern = "^$|^https?://(([a-zA-Z0-9]+(-[a-zA-Z0-9]+)*\\.)*[a-zA-Z][a-zA-Z0-9]*(-[a-zA-Z0-9]+)*|((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[!-~]*)?$"
        )
    )]
    pub webhook_url: Option<String>,
    /// The secret the webhook's bodies are signed with (16 to 256 characters); empty removes
    /// it.
    #[serde(default)]
    #[cfg_attr(
        feature = "ssr",
        schema(max_length = 256, pattern = "^$|^[\\s\\S]{16,}$")
    )]
    pub webhook_secret: Option<String>,
}

/// One delivery by webhook or email, as admins see it.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryDto {
    pub id: i64,
    pub username: String,
    /// `webhook` or `email`.
    pub channel: String,
    pub kind: NotificationKind,
    /// The webhook's origin (`https://host[:port]`: its path may be a secret) or the email
    /// address.
    pub target: String,
    /// `pending`, `delivered` or `failed` (given up after the last attempt).
    pub status: String,
    pub attempts: i32,
    /// When the next attempt is due (pending ones).
    pub next_at: Timestamp,
    /// The receiver's last HTTP status, or SMTP reply code.
    pub last_code: Option<i32>,
    /// A short excerpt of what went wrong last.
    pub last_error: Option<String>,
    pub created_at: Timestamp,
}

impl Paged for DeliveryDto {
    fn cursor(&self) -> String {
        self.id.to_string()
    }
}

#[server(name = NotificationsCall, input = server_fn::codec::Json)]
pub async fn my_notifications(page: PageQuery) -> Result<Vec<NotificationDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.notifications(&caller, page).await)
}

#[server(name = UnreadCountCall)]
pub async fn unread_count() -> Result<UnreadCount, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.unread_count(&caller).await)
}

#[server(name = MarkReadCall, input = server_fn::codec::Json)]
pub async fn mark_read(input: MarkRead) -> Result<UnreadCount, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.mark_read(&caller, input).await)
}

#[server(name = NotificationSettingsCall)]
pub async fn notification_settings() -> Result<NotificationSettings, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.notification_settings(&caller).await)
}

#[server(name = UpdateNotificationSettingsCall, input = server_fn::codec::Json)]
pub async fn update_notification_settings(
    input: UpdateNotificationSettings,
) -> Result<NotificationSettings, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.update_notification_settings(&caller, input).await)
}

#[server(name = NotificationDefaultsCall)]
pub async fn notification_defaults() -> Result<Vec<NotificationChoice>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.notification_defaults(&caller).await)
}

#[server(name = SetNotificationDefaultsCall, input = server_fn::codec::Json)]
pub async fn set_notification_defaults(
    input: Vec<NotificationChoice>,
) -> Result<Vec<NotificationChoice>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.set_notification_defaults(&caller, input).await)
}

#[server(name = DeliveriesCall, input = server_fn::codec::Json)]
pub async fn deliveries(page: PageQuery) -> Result<Vec<DeliveryDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.deliveries(&caller, page).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{
        DeliveryDto, MarkRead, NotificationChoice, NotificationDto, NotificationSettings,
        UnreadCount, UpdateNotificationSettings,
    };
    use crate::api::page::PageQuery;
    use crate::api::ssr::Caller;
    use crate::error::ApiResult;

    #[async_trait::async_trait]
    pub trait NotificationsApi: Send + Sync + 'static {
        /// The caller's notifications, newest first.
        async fn notifications(
            &self,
            caller: &Caller,
            page: PageQuery,
        ) -> ApiResult<Vec<NotificationDto>>;
        async fn unread_count(&self, caller: &Caller) -> ApiResult<UnreadCount>;
        async fn mark_read(&self, caller: &Caller, input: MarkRead) -> ApiResult<UnreadCount>;
        async fn notification_settings(&self, caller: &Caller) -> ApiResult<NotificationSettings>;
        async fn update_notification_settings(
            &self,
            caller: &Caller,
            input: UpdateNotificationSettings,
        ) -> ApiResult<NotificationSettings>;
        /// The admins' defaults, every kind (admins only).
        async fn notification_defaults(
            &self,
            caller: &Caller,
        ) -> ApiResult<Vec<NotificationChoice>>;
        async fn set_notification_defaults(
            &self,
            caller: &Caller,
            input: Vec<NotificationChoice>,
        ) -> ApiResult<Vec<NotificationChoice>>;
        /// Deliveries by webhook and email, newest first (admins only).
        async fn deliveries(&self, caller: &Caller, page: PageQuery)
            -> ApiResult<Vec<DeliveryDto>>;
    }
}
