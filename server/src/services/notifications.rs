//! Notifications: [`Services::notify`] records what happened for a user in their bell and
//! hands it to the channels they chose for its kind (else the admins' defaults); the OOM
//! watch turns the engine's OOM kills into notifications for the spaces' owners.

use std::time::Duration;

use app::api::notifications::{
    ssr::NotificationsApi, DeliveryDto, MarkRead, NotificationChoice, NotificationDto,
    NotificationKind, NotificationSettings, UnreadCount, UpdateNotificationSettings, KEPT_PER_USER,
    WEBHOOK_SECRET_LEN,
};
use app::api::page::PageQuery;
use app::api::users::TokenScope;
use app::ids::{SpaceId, UserId};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::access::Caller;
use super::{from_json, to_json, Services};
use crate::entities::{notification, notification_setting, space};
use crate::error::{ApiError, ApiResult};

/// The admins' defaults per kind, in the settings table.
const DEFAULTS_SETTING: &str = "notification_defaults";

/// A notification as it is handed to the channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    /// A path of Hangar's pages.
    pub link: Option<String>,
}

impl Notice {
    pub fn new(kind: NotificationKind, title: impl Into<String>, body: impl Into<String>) -> Self {
        Notice {
            kind,
            title: title.into(),
            body: body.into(),
            link: None,
        }
    }

    /// About a space: links to its page.
    pub fn on_space(mut self, space_id: &SpaceId) -> Self {
        self.link = Some(format!("/spaces/{space_id}"));
        self
    }
}

/// At most `max` characters of `text` (an ellipsis ends a cut one).
pub fn excerpt(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn notification_dto(row: notification::Model) -> NotificationDto {
    NotificationDto {
        id: row.id,
        kind: NotificationKind::parse(&row.kind).unwrap_or(NotificationKind::SpaceStopped),
        title: row.title,
        body: row.body,
        link: row.link,
        created_at: row.created_at.into(),
        read_at: row.read_at.map(Into::into),
    }
}

/// `choices` with one entry per kind, in the order of [`NotificationKind::ALL`]: the given
/// one, else `fallback`'s.
fn complete(
    choices: &[NotificationChoice],
    fallback: impl Fn(NotificationKind) -> NotificationChoice,
) -> Vec<NotificationChoice> {
    NotificationKind::ALL
        .into_iter()
        .map(|kind| {
            choices
                .iter()
                .find(|c| c.kind == kind)
                .copied()
                .unwrap_or_else(|| fallback(kind))
        })
        .collect()
}

/// How long the same notice (its user, kind and link) is not repeated: what another user can
/// trigger at will (sharing and unsharing a space, say) must not flood someone's inbox.
pub const NOTICE_QUIET: chrono::Duration = chrono::Duration::minutes(10);

/// What makes two notices the same: whom, what kind, about what.
type NoticeKey = (UserId, NotificationKind, Option<String>);

/// When each notice was last sent by this server, for [`NOTICE_QUIET`].
#[derive(Default)]
pub struct NoticeQuiet(std::sync::Mutex<std::collections::HashMap<NoticeKey, DateTime<Utc>>>);

impl NoticeQuiet {
    /// Whether `notice` for `user` is the first of its kind and link in the window ending at
    /// `now` (it is then remembered).
    pub fn first_in_window(&self, user: &UserId, notice: &Notice, now: DateTime<Utc>) -> bool {
        let mut sent = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sent.retain(|_, at| now - *at < NOTICE_QUIET);
        let key = (user.clone(), notice.kind, notice.link.clone());
        if sent.contains_key(&key) {
            return false;
        }
        sent.insert(key, now);
        true
    }
}

impl Services {
    /// Tells `user` of what happened: in their bell and by the channels they chose for its
    /// kind. Never fails its caller: a notification that cannot be recorded is logged.
    pub async fn notify(&self, user: &UserId, notice: Notice) {
        if let Err(e) = self.try_notify(user, &notice).await {
            tracing::warn!(user = %user, kind = notice.kind.as_str(), error = %e, "could not record a notification");
        }
    }

    async fn try_notify(&self, user: &UserId, notice: &Notice) -> ApiResult<()> {
        if !self
            .notice_quiet
            .first_in_window(user, notice, self.clock.now())
        {
            tracing::debug!(user = %user, kind = notice.kind.as_str(), "a notification repeated within its quiet window was not sent");
            return Ok(());
        }
        // The user's settings row, read once: their choices and their webhook.
        let (settings, own) = self.own_choices(user).await?;
        let choice = self.choice_among(own, notice.kind).await?;
        metrics::counter!("hangar_notifications_total", "kind" => notice.kind.as_str())
            .increment(1);
        if choice.in_app {
            let row = notification::ActiveModel {
                user_id: Set(user.clone()),
                kind: Set(notice.kind.as_str().to_owned()),
                title: Set(excerpt(&notice.title, 200)),
                body: Set(excerpt(&notice.body, 2000)),
                link: Set(notice.link.clone()),
                created_at: Set(self.clock.now()),
                read_at: Set(None),
                ..Default::default()
            };
            notification::Entity::insert(row)
                .exec_without_returning(&self.db)
                .await?;
            self.keep_newest(user).await?;
            self.notifier.notify(crate::live::Change {
                users: vec![user.clone()],
                notification: true,
                ..Default::default()
            });
        }
        if choice.email {
            self.queue_email(user, notice).await?;
        }
        if let Some(settings) = settings.filter(|_| choice.webhook) {
            self.queue_webhook(user, notice, &settings).await?;
        }
        Ok(())
    }

    /// Drops the user's notifications beyond the newest [`KEPT_PER_USER`].
    async fn keep_newest(&self, user: &UserId) -> ApiResult<()> {
        let oldest_kept = notification::Entity::find()
            .select_only()
            .column(notification::Column::Id)
            .filter(notification::Column::UserId.eq(user.clone()))
            .order_by_desc(notification::Column::Id)
            .offset(KEPT_PER_USER - 1)
            .limit(1)
            .into_tuple::<i64>()
            .one(&self.db)
            .await?;
        if let Some(oldest_kept) = oldest_kept {
            notification::Entity::delete_many()
                .filter(notification::Column::UserId.eq(user.clone()))
                .filter(notification::Column::Id.lt(oldest_kept))
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    /// How many of the user's notifications are unread.
    pub async fn unread_of(&self, user: &UserId) -> ApiResult<UnreadCount> {
        let unread = notification::Entity::find()
            .filter(notification::Column::UserId.eq(user.clone()))
            .filter(notification::Column::ReadAt.is_null())
            .count(&self.db)
            .await?;
        Ok(UnreadCount { unread })
    }

    /// The admins' defaults, every kind.
    async fn defaults(&self) -> ApiResult<Vec<NotificationChoice>> {
        let stored: Vec<NotificationChoice> =
            match crate::db::setting(&self.db, DEFAULTS_SETTING).await? {
                Some(text) => from_json(&text, "notification defaults")?,
                None => Vec::new(),
            };
        Ok(complete(&stored, NotificationChoice::built_in))
    }

    /// The user's own choices, for the kinds they chose for.
    async fn own_choices(
        &self,
        user: &UserId,
    ) -> ApiResult<(Option<notification_setting::Model>, Vec<NotificationChoice>)> {
        let row = notification_setting::Entity::find_by_id(user.clone())
            .one(&self.db)
            .await?;
        let choices = match &row {
            Some(row) => from_json(&row.choices, "notification choices")?,
            None => Vec::new(),
        };
        Ok((row, choices))
    }

    /// Where a kind of notification goes for a user whose own choices are `own`: theirs, else
    /// the admins' default, else Hangar's.
    async fn choice_among(
        &self,
        own: Vec<NotificationChoice>,
        kind: NotificationKind,
    ) -> ApiResult<NotificationChoice> {
        if let Some(choice) = own.into_iter().find(|c| c.kind == kind) {
            return Ok(choice);
        }
        Ok(self
            .defaults()
            .await?
            .into_iter()
            .find(|c| c.kind == kind)
            .unwrap_or_else(|| NotificationChoice::built_in(kind)))
    }

    async fn notification_settings_of(&self, caller: &Caller) -> ApiResult<NotificationSettings> {
        let (row, own) = self.own_choices(caller.id()).await?;
        let defaults = self.defaults().await?;
        let choices = complete(&own, |kind| {
            defaults
                .iter()
                .find(|c| c.kind == kind)
                .copied()
                .unwrap_or_else(|| NotificationChoice::built_in(kind))
        });
        Ok(NotificationSettings {
            choices,
            chosen: own.iter().map(|c| c.kind).collect(),
            webhook_url: row.as_ref().and_then(|r| r.webhook_url.clone()),
            webhook_secret_set: row.as_ref().is_some_and(|r| r.webhook_secret.is_some()),
            email_to: self
                .config
                .smtp_host
                .as_ref()
                .map(|_| caller.user.email.trim().to_owned())
                .filter(|email| !email.is_empty()),
        })
    }

    /// Tells the owner of each space the engine reports an OOM kill in.
    pub async fn oom_killed(&self, space_id: &SpaceId) -> ApiResult<()> {
        let Some(space) = space::Entity::find_by_id(space_id.clone())
            .one(&self.db)
            .await?
        else {
            return Ok(());
        };
        metrics::counter!("hangar_oom_kills_total").increment(1);
        tracing::info!(space = %space.id, "a process of the space was killed for memory");
        // 0 CU: no limit of the space's own (admin templates); the machine ran out.
        let limit = u64::try_from(space.compute_units)
            .ok()
            .filter(|units| *units > 0)
            .map(|units| units * self.config.memory_mib_per_cu);
        // A failure of the audit log: the admins' overview lists the latest.
        let target = self.audit_target_of(&space).await;
        super::audit::record(
            &self.db,
            None,
            "space.oom",
            &target,
            super::audit::Outcome::Failed,
            serde_json::json!({ "memory_limit_mib": limit }),
        )
        .await;
        self.notify(
            &space.owner_id,
            Notice::new(
                NotificationKind::OomKill,
                format!("{}: a process was killed for memory", space.name),
                match limit {
                    Some(limit) => format!(
                        "A process in the space {} used all the memory the space may use \
                         ({limit} MiB) and the kernel killed it. Give the space more compute \
                         units, or make the program use less.",
                        space.name
                    ),
                    None => format!(
                        "A process in the space {} was killed by the kernel: the machine ran \
                         out of memory (the space has no limit of its own). Make the program \
                         use less, or ask an admin.",
                        space.name
                    ),
                },
            )
            .on_space(&space.id),
        )
        .await;
        Ok(())
    }
}

/// The engine reports one kill as a burst of `oom` events (one per process the kernel killed
/// or tried to): a space's owner is told once per this long.
const OOM_QUIET: Duration = Duration::from_secs(60);

/// Reads the engine's OOM kills for as long as the server runs, opening the stream again a
/// few seconds after it ends or fails (the engine restarted, say).
pub fn spawn_oom_watch(services: Services) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut said_unsupported = false;
        let mut told: std::collections::HashMap<SpaceId, std::time::Instant> =
            std::collections::HashMap::new();
        loop {
            match services.runtime.oom_kills().await {
                Ok(mut kills) => {
                    said_unsupported = false;
                    while let Some(kill) = kills.next().await {
                        match kill {
                            Ok(space_id) => {
                                let now = std::time::Instant::now();
                                told.retain(|_, at| now.duration_since(*at) < OOM_QUIET);
                                if told.contains_key(&space_id) {
                                    continue;
                                }
                                told.insert(space_id.clone(), now);
                                if let Err(e) = services.oom_killed(&space_id).await {
                                    tracing::warn!(space = %space_id, error = %e, "could not tell of an OOM kill");
                                }
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "the engine's event stream ended");
                                break;
                            }
                        }
                    }
                }
                Err(e) => {
                    if !said_unsupported {
                        tracing::info!(error = %e, "OOM kills are not reported for now");
                        said_unsupported = true;
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    })
}

#[async_trait::async_trait]
impl NotificationsApi for Services {
    async fn notifications(
        &self,
        caller: &Caller,
        page: PageQuery,
    ) -> ApiResult<Vec<NotificationDto>> {
        let limit = u64::from(page.size()?);
        let mut select = notification::Entity::find()
            .filter(notification::Column::UserId.eq(caller.id().clone()))
            .order_by_desc(notification::Column::Id);
        if let Some(after) = &page.after {
            // Not a number: no notification has that id, as for any list's unknown cursor.
            let after: i64 = after.parse().map_err(|_| super::paging::unknown_cursor())?;
            select = select.filter(notification::Column::Id.lt(after));
        }
        let rows = select.limit(limit).all(&self.db).await?;
        Ok(rows.into_iter().map(notification_dto).collect())
    }

    async fn unread_count(&self, caller: &Caller) -> ApiResult<UnreadCount> {
        self.unread_of(caller.id()).await
    }

    async fn mark_read(&self, caller: &Caller, input: MarkRead) -> ApiResult<UnreadCount> {
        caller.require_scope(TokenScope::Write)?;
        let mut update = notification::Entity::update_many()
            .col_expr(notification::Column::ReadAt, Expr::value(self.clock.now()))
            .filter(notification::Column::UserId.eq(caller.id().clone()))
            .filter(notification::Column::ReadAt.is_null());
        if let Some(up_to) = input.up_to {
            update = update.filter(notification::Column::Id.lte(up_to));
        }
        let marked = update.exec(&self.db).await?;
        if marked.rows_affected > 0 {
            // The caller's other pages' bells follow.
            self.notifier.notify(crate::live::Change {
                users: vec![caller.id().clone()],
                notification: true,
                ..Default::default()
            });
        }
        self.unread_of(caller.id()).await
    }

    async fn notification_settings(&self, caller: &Caller) -> ApiResult<NotificationSettings> {
        self.notification_settings_of(caller).await
    }

    async fn update_notification_settings(
        &self,
        caller: &Caller,
        input: UpdateNotificationSettings,
    ) -> ApiResult<NotificationSettings> {
        caller.require_scope(TokenScope::Write)?;
        let (row, mut own) = self.own_choices(caller.id()).await?;
        if let Some(choices) = &input.choices {
            if choices.len() > NotificationKind::ALL.len() * 2 {
                return Err(ApiError::invalid("choices", "one choice per kind at most"));
            }
            for choice in choices {
                own.retain(|c| c.kind != choice.kind);
                own.push(*choice);
            }
        }
        if let Some(reset) = &input.reset {
            if reset.len() > NotificationKind::ALL.len() * 2 {
                return Err(ApiError::invalid("reset", "each kind once at most"));
            }
            own.retain(|c| !reset.contains(&c.kind));
        }
        own.sort_by_key(|c| NotificationKind::ALL.iter().position(|k| *k == c.kind));
        let old_url = row.as_ref().and_then(|r| r.webhook_url.clone());
        let old_secret = row.as_ref().and_then(|r| r.webhook_secret.clone());
        let (webhook_url, webhook_secret) =
            self.webhook_change(caller, &input, old_url.clone(), old_secret.clone())?;
        // What waits for the old webhook does not go to a new one, nor unsigned.
        let webhook_changed = webhook_url != old_url || webhook_secret != old_secret;
        let saved = notification_setting::ActiveModel {
            user_id: Set(caller.id().clone()),
            choices: Set(to_json(&own)?),
            webhook_url: Set(webhook_url),
            webhook_secret: Set(webhook_secret),
            updated_at: Set(Utc::now()),
        };
        notification_setting::Entity::insert(saved)
            .on_conflict(
                OnConflict::column(notification_setting::Column::UserId)
                    .update_columns([
                        notification_setting::Column::Choices,
                        notification_setting::Column::WebhookUrl,
                        notification_setting::Column::WebhookSecret,
                        notification_setting::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        if webhook_changed {
            self.drop_pending_webhooks(caller.id()).await?;
        }
        self.notification_settings_of(caller).await
    }

    async fn notification_defaults(&self, caller: &Caller) -> ApiResult<Vec<NotificationChoice>> {
        caller.require_admin()?;
        self.defaults().await
    }

    async fn set_notification_defaults(
        &self,
        caller: &Caller,
        input: Vec<NotificationChoice>,
    ) -> ApiResult<Vec<NotificationChoice>> {
        caller.require_admin()?;
        caller.require_scope(TokenScope::Write)?;
        // Any number of choices (the request's size bounds it): the last one per kind wins.
        let current = self.defaults().await?;
        // The last choice given for a kind wins; kinds not given keep theirs.
        let merged = complete(&current, NotificationChoice::built_in)
            .into_iter()
            .map(|c| {
                input
                    .iter()
                    .rev()
                    .find(|given| given.kind == c.kind)
                    .copied()
                    .unwrap_or(c)
            })
            .collect::<Vec<_>>();
        crate::db::set_setting(&self.db, DEFAULTS_SETTING, &to_json(&merged)?).await?;
        super::audit::record(
            &self.db,
            Some(caller),
            "settings.notification_defaults",
            "notifications",
            super::audit::Outcome::Success,
            serde_json::json!({ "defaults": merged }),
        )
        .await;
        Ok(merged)
    }

    async fn deliveries(&self, caller: &Caller, page: PageQuery) -> ApiResult<Vec<DeliveryDto>> {
        caller.require_admin()?;
        self.list_deliveries(page).await
    }
}

impl Services {
    /// The webhook's URL and sealed secret after `input` (unchanged when not given).
    fn webhook_change(
        &self,
        caller: &Caller,
        input: &UpdateNotificationSettings,
        url: Option<String>,
        secret: Option<String>,
    ) -> ApiResult<(Option<String>, Option<String>)> {
        if input.webhook_url.is_none() && input.webhook_secret.is_none() {
            return Ok((url, secret));
        }
        // The secret is a credential: as API tokens and keys, a token needs that scope.
        caller.require_scope(TokenScope::Credentials)?;
        let url = match input.webhook_url.as_deref().map(str::trim) {
            None => url,
            Some("") => None,
            Some(given) => Some(
                super::deliveries::check_webhook_url(given, self.config.webhook_allow_private)?
                    .to_string(),
            ),
        };
        let secret = match input.webhook_secret.as_deref() {
            None => secret,
            Some("") => None,
            Some(given) => {
                let (min, max) = WEBHOOK_SECRET_LEN;
                if !(min..=max).contains(&given.chars().count()) {
                    return Err(ApiError::invalid(
                        "webhook_secret",
                        format!("the secret must be {min} to {max} characters"),
                    ));
                }
                Some(self.git_key()?.seal(given).map_err(ApiError::internal)?)
            }
        };
        Ok((url, secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_gets_a_choice_and_given_ones_win() {
        let given = [NotificationChoice {
            kind: NotificationKind::OomKill,
            in_app: false,
            email: true,
            webhook: true,
        }];
        let all = complete(&given, NotificationChoice::built_in);
        assert_eq!(all.len(), NotificationKind::ALL.len());
        assert_eq!(
            all.iter().find(|c| c.kind == NotificationKind::OomKill),
            given.first()
        );
        assert!(all
            .iter()
            .filter(|c| c.kind != NotificationKind::OomKill)
            .all(|c| c.in_app && !c.email && !c.webhook));
    }
}
