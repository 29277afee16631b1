//! Spaces that stop and start themselves. A pass (every `--autostop-interval-secs`, and
//! [`Services::autostop_once`] for tests) writes the activity seen down, then:
//! - running spaces: their deadline (`crate::domain::autostop::deadline`: idle stop, longest
//!   run, scheduled stop) comes from the database, so a restart keeps it; within the warning
//!   their users' pages show it with "Keep running" and their terminals get a notice; at it,
//!   the space stops through the lifecycle, audited as `idle`, `longest run` or `schedule`;
//! - stopped spaces start at their scheduled time through the same quota rules (a start that
//!   does not fit is skipped, with the reason on the space and in the audit log);
//! - retention warns about, then deletes, stopped spaces unused for its days (never `keep`).
//!
//! Every action is a compare-and-set on what the pass read (state, start, last activity,
//! warning), so with several servers on one database each happens once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use app::api::autostop::{
    ssr::AutostopApi, ActivityKind, AutoStop, Keepalive, LastActivity, Retention, Schedule,
    SpaceAutostop, StopReason, TimeZoneSetting, UpdateSpaceAutostop, MAX_KEEPALIVE_MINUTES,
};
use app::ids::{SpaceId, TemplateId, UserId};
use chrono::{DateTime, Utc};
use jiff::tz::TimeZone;
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::domain::autostop::{self as rules, Edge, RetentionStep, Running};
use crate::domain::lifecycle::{self, Action, AfterStop, SpaceState};
use crate::entities::{space, template, user};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::services::access::Caller;
use crate::services::audit::{record, record_by, space_target, Actor, Outcome};
use crate::services::notifications::Notice;
use crate::services::{from_json, to_json, Services};
use app::api::notifications::NotificationKind;

/// The installation setting that holds [`Retention`] (JSON).
const RETENTION_SETTING: &str = "retention";

/// What the loop keeps between passes on this server.
#[derive(Default)]
pub struct AutostopState {
    /// The retention in force, read at each pass (and set through the API).
    retention: Mutex<Retention>,
    /// The warning each space's terminals on this server were told about.
    told: Mutex<HashMap<SpaceId, DateTime<Utc>>>,
    /// When each space's pages last heard of its activity from this server.
    notified: Mutex<HashMap<SpaceId, DateTime<Utc>>>,
}

impl AutostopState {
    fn retention(&self) -> Retention {
        self.retention
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// A space's stops and schedule in force.
pub struct Stops {
    pub idle: Option<i64>,
    pub max_run: Option<i64>,
    pub own_idle: Option<i64>,
    pub own_max_run: Option<i64>,
    pub template_idle: Option<i64>,
    pub template_max_run: Option<i64>,
    pub may_change: bool,
    pub schedule: Schedule,
    pub schedule_from_template: bool,
    /// The template's schedule changed then (its starts before it are not acted on).
    pub template_updated_at: Option<DateTime<Utc>>,
    pub tz: TimeZone,
    pub tz_name: String,
}

/// The stops of `space`, made from `template` (None: deleted) in its owner's `time_zone`.
pub fn stops_of(
    space: &space::Model,
    template: Option<&template::Model>,
    time_zone: Option<&str>,
) -> Stops {
    let may_change = template.is_some_and(|t| t.owners_may_change_stops);
    let template_idle = template.and_then(|t| t.idle_stop_minutes);
    let template_max_run = template.and_then(|t| t.max_run_minutes);
    let own_schedule = space
        .schedule
        .as_deref()
        .and_then(|s| serde_json::from_str::<Schedule>(s).ok());
    let template_schedule = template
        .and_then(|t| t.default_schedule.as_deref())
        .and_then(|s| serde_json::from_str::<Schedule>(s).ok());
    let schedule_from_template = own_schedule.is_none();
    // An unknown zone (the tz database changed under it) falls back to UTC rather than
    // stopping nothing.
    let tz = rules::time_zone(time_zone).unwrap_or(TimeZone::UTC);
    Stops {
        idle: rules::effective_minutes(template_idle, space.idle_stop_minutes, may_change),
        max_run: rules::effective_minutes(template_max_run, space.max_run_minutes, may_change),
        own_idle: space.idle_stop_minutes,
        own_max_run: space.max_run_minutes,
        template_idle,
        template_max_run,
        may_change,
        schedule: own_schedule.or(template_schedule).unwrap_or_default(),
        schedule_from_template,
        template_updated_at: template.map(|t| t.updated_at),
        tz,
        tz_name: time_zone.unwrap_or("UTC").to_owned(),
    }
}

/// The later of two optional times.
fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// `column = value`, or `column IS NULL` for None: a compare-and-set on what was read.
fn same<T>(column: space::Column, value: Option<T>) -> SimpleExpr
where
    T: Into<sea_orm::Value>,
{
    match value {
        Some(value) => column.eq(value),
        None => column.is_null(),
    }
}

/// How long a space may go unused before a stop, and when a running one stops.
pub struct Deadline {
    pub at: DateTime<Utc>,
    pub reason: StopReason,
    pub minutes: Option<i64>,
}

impl Services {
    fn warning(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(self.config.autostop_warning_secs).unwrap_or(300))
    }

    /// When a running space stops by itself, and why (None: it does not).
    pub fn deadline_of(&self, space: &space::Model, stops: &Stops) -> Option<Deadline> {
        if space.state != SpaceState::Running {
            return None;
        }
        let started_at = space.started_at.unwrap_or(space.updated_at);
        let last_use = later(
            later(space.last_activity_at, space.keepalive_until),
            self.activity.latest(&space.id),
        );
        let (at, reason) = rules::deadline(&Running {
            started_at,
            last_use,
            idle_minutes: stops.idle,
            max_run_minutes: stops.max_run,
            schedule: &stops.schedule,
            tz: &stops.tz,
            warning: self.warning(),
        })?;
        let minutes = match reason {
            StopReason::Idle => stops.idle,
            StopReason::LongestRun => stops.max_run,
            StopReason::Schedule => None,
        };
        Some(Deadline {
            at,
            reason,
            minutes,
        })
    }

    /// What a space's page shows of its coming stop, in the reader's time zone.
    pub fn autostop_view(
        &self,
        space: &space::Model,
        stops: &Stops,
        reader_tz: Option<&str>,
    ) -> Option<AutoStop> {
        let deadline = self.deadline_of(space, stops)?;
        let now = self.clock.now();
        let tz = rules::time_zone(reader_tz).unwrap_or(TimeZone::UTC);
        Some(AutoStop {
            at: deadline.at.into(),
            local: rules::local_text(deadline.at, now, &tz),
            reason: deadline.reason,
            minutes: deadline.minutes,
            warned: space.stop_warned_at.is_some() && now >= deadline.at - self.warning(),
            can_keep_running: deadline.reason != StopReason::LongestRun,
        })
    }

    /// A stopped space's next scheduled start, in the reader's time zone.
    pub fn next_start_view(
        &self,
        space: &space::Model,
        stops: &Stops,
        reader_tz: Option<&str>,
    ) -> Option<String> {
        if !matches!(space.state, SpaceState::Stopped | SpaceState::Created) {
            return None;
        }
        let now = self.clock.now();
        let at = rules::next_after(&stops.schedule, &stops.tz, Edge::Start, now)?;
        let tz = rules::time_zone(reader_tz).unwrap_or(TimeZone::UTC);
        Some(rules::local_text(at, now, &tz))
    }

    /// The last activity a space's page shows.
    pub fn last_activity_view(space: &space::Model) -> Option<LastActivity> {
        Some(LastActivity {
            at: space.last_activity_at?.into(),
            kind: space
                .last_activity_kind
                .as_deref()
                .and_then(ActivityKind::parse)?,
        })
    }

    /// When retention deletes a stopped space it warned about.
    pub fn deletes_at_view(&self, space: &space::Model) -> Option<app::time::Timestamp> {
        let warned = space.retention_warned_at?;
        let retention = self.autostop.retention();
        let days = retention.days?;
        if space.keep || !matches!(space.state, SpaceState::Stopped | SpaceState::Created) {
            return None;
        }
        let expires = last_used(space) + chrono::Duration::days(days);
        Some(
            expires
                .max(warned + chrono::Duration::days(retention.warning_days))
                .into(),
        )
    }

    /// The templates of these spaces, by id.
    pub async fn templates_of(
        &self,
        spaces: &[&space::Model],
    ) -> ApiResult<HashMap<TemplateId, template::Model>> {
        let mut ids: Vec<TemplateId> = spaces
            .iter()
            .filter_map(|s| s.template_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(template::Entity::find()
            .filter(template::Column::Id.is_in(ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| (t.id.clone(), t))
            .collect())
    }

    /// Writes the activity seen on this server down: each space's latest, keeping the latest
    /// of every server. Its pages hear of it when the minute they show changes.
    pub async fn flush_activity(&self) -> ApiResult<()> {
        for seen in self.activity.take_unflushed() {
            let updated = space::Entity::update_many()
                .col_expr(space::Column::LastActivityAt, Expr::value(seen.at))
                .col_expr(
                    space::Column::LastActivityKind,
                    Expr::value(seen.kind.as_str()),
                )
                .filter(space::Column::Id.eq(seen.space_id.clone()))
                .filter(
                    space::Column::LastActivityAt
                        .is_null()
                        .or(space::Column::LastActivityAt.lt(seen.at)),
                )
                .exec(&self.db)
                .await?;
            // Pages show the minute: they hear of activity at most once a minute.
            let due = {
                let mut notified = self
                    .autostop
                    .notified
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                let due = notified
                    .get(&seen.space_id)
                    .is_none_or(|last| seen.at - *last >= chrono::Duration::seconds(60));
                if due && updated.rows_affected == 1 {
                    notified.insert(seen.space_id.clone(), seen.at);
                }
                if notified.len() > 4096 {
                    notified.clear();
                }
                due
            };
            if updated.rows_affected == 1 && due {
                self.space_changed(&seen.space_id).await;
            }
        }
        self.activity
            .forget_older_than(self.clock.now() - chrono::Duration::hours(1));
        Ok(())
    }

    /// One pass of the loop: write activity down, then stop, warn, start and retain.
    pub async fn autostop_once(&self) -> ApiResult<()> {
        self.flush_activity().await?;
        if let Ok(Some(stored)) = crate::db::setting(&self.db, RETENTION_SETTING).await {
            if let Ok(retention) = serde_json::from_str::<Retention>(&stored) {
                *self
                    .autostop
                    .retention
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = retention;
            }
        }
        let spaces = space::Entity::find()
            .filter(space::Column::State.is_in([
                SpaceState::Running,
                SpaceState::Stopped,
                SpaceState::Created,
            ]))
            .all(&self.db)
            .await?;
        let templates = self
            .templates_of(&spaces.iter().collect::<Vec<_>>())
            .await?;
        let mut owner_ids: Vec<UserId> = spaces.iter().map(|s| s.owner_id.clone()).collect();
        owner_ids.sort();
        owner_ids.dedup();
        let owners: HashMap<UserId, user::Model> = self
            .users_by_ids(owner_ids)
            .await?
            .into_iter()
            .map(|u| (u.id.clone(), u))
            .collect();
        for space in spaces {
            let Some(owner) = owners.get(&space.owner_id) else {
                continue;
            };
            let template = space.template_id.as_ref().and_then(|id| templates.get(id));
            let stops = stops_of(&space, template, owner.time_zone.as_deref());
            let acted = match space.state {
                SpaceState::Running => self.running_pass(&space, &stops, owner).await,
                _ => self.stopped_pass(&space, &stops, owner).await,
            };
            if let Err(e) = acted {
                tracing::warn!(space = %space.id, error = %e, "automatic stop or start failed");
            }
        }
        Ok(())
    }

    async fn running_pass(
        &self,
        space: &space::Model,
        stops: &Stops,
        owner: &user::Model,
    ) -> ApiResult<()> {
        let now = self.clock.now();
        let deadline = self.deadline_of(space, stops);
        let warn_from = deadline.as_ref().map(|d| d.at - self.warning());
        match (&deadline, warn_from) {
            (Some(deadline), _) if now >= deadline.at => {
                return self.auto_stop(space, deadline, owner).await;
            }
            (Some(deadline), Some(from)) if now >= from => {
                let warned_at = match space.stop_warned_at {
                    Some(at) => Some(at),
                    None => self.warn_of_stop(space, deadline, owner).await?,
                };
                if let Some(warned_at) = warned_at {
                    self.tell_terminals(space, deadline, stops, warned_at);
                }
            }
            _ if space.stop_warned_at.is_some() => {
                // The stop moved away (someone used it): a later one is warned about afresh.
                let cleared = space::Entity::update_many()
                    .col_expr(
                        space::Column::StopWarnedAt,
                        Expr::value(Option::<DateTime<Utc>>::None),
                    )
                    .filter(space::Column::Id.eq(space.id.clone()))
                    .filter(same(space::Column::StopWarnedAt, space.stop_warned_at))
                    .exec(&self.db)
                    .await?;
                if cleared.rows_affected == 1 {
                    self.space_changed(&space.id).await;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Records the warning once (the winner of the compare-and-set tells the pages); the
    /// time it was given, or None when another server gave it meanwhile.
    async fn warn_of_stop(
        &self,
        space: &space::Model,
        deadline: &Deadline,
        owner: &user::Model,
    ) -> ApiResult<Option<DateTime<Utc>>> {
        let now = self.clock.now();
        let warned = space::Entity::update_many()
            .col_expr(space::Column::StopWarnedAt, Expr::value(now))
            .filter(space::Column::Id.eq(space.id.clone()))
            .filter(space::Column::State.eq(SpaceState::Running))
            .filter(space::Column::StopWarnedAt.is_null())
            .exec(&self.db)
            .await?;
        if warned.rows_affected != 1 {
            return Ok(None);
        }
        metrics::counter!("hangar_autostop_warnings_total", "reason" => deadline.reason.as_str())
            .increment(1);
        tracing::info!(space = %space.id, owner = %owner.username, at = %deadline.at, reason = deadline.reason.as_str(), "warned of an automatic stop");
        self.space_changed(&space.id).await;
        let when = rules::local_text(deadline.at, now, &TimeZone::UTC) + " UTC";
        let why = match deadline.reason {
            StopReason::Idle => "it has been unused for a while",
            StopReason::LongestRun => "it reaches its longest run",
            StopReason::Schedule => "its schedule says so",
        };
        let keep = if deadline.reason == StopReason::LongestRun {
            "Save your work: restart it to run again."
        } else {
            "Use it, or press \"Keep running\" on its page, to keep it running."
        };
        self.notify(
            &owner.id,
            Notice::new(
                NotificationKind::StopSoon,
                format!("{} stops soon", space.name),
                format!("The space {} stops {when}: {why}. {keep}", space.name),
            )
            .on_space(&space.id),
        )
        .await;
        Ok(Some(now))
    }

    /// Tells this server's open terminals of the space, once per warning.
    fn tell_terminals(
        &self,
        space: &space::Model,
        deadline: &Deadline,
        stops: &Stops,
        warned_at: DateTime<Utc>,
    ) {
        {
            let mut told = self.autostop.told.lock().unwrap_or_else(|p| p.into_inner());
            if told.get(&space.id) == Some(&warned_at) {
                return;
            }
            told.insert(space.id.clone(), warned_at);
        }
        let view = AutoStop {
            at: deadline.at.into(),
            local: rules::local_text(deadline.at, self.clock.now(), &stops.tz),
            reason: deadline.reason,
            minutes: deadline.minutes,
            warned: true,
            can_keep_running: deadline.reason != StopReason::LongestRun,
        };
        let what = if view.can_keep_running {
            format!(
                "press \"Keep running\" on its page or run `hangar keepalive {}`",
                space.name
            )
        } else {
            "save your work: restart it to run again".to_owned()
        };
        self.terminals.notice_space(
            space.id.as_str(),
            &format!(
                "hangar: this space {} {}: {what}",
                view.describe(),
                stops.tz_name
            ),
        );
    }

    /// Stops the space for `deadline` through the lifecycle, unless it changed since it was
    /// read (started again, used, kept alive): then a later pass decides afresh.
    async fn auto_stop(
        &self,
        space: &space::Model,
        deadline: &Deadline,
        owner: &user::Model,
    ) -> ApiResult<()> {
        if lifecycle::plan(space.state, Action::Stop).is_err() {
            return Ok(());
        }
        let why = match (deadline.reason, deadline.minutes) {
            (StopReason::Idle, Some(m)) => format!(
                "unused for {} (its idle stop)",
                app::api::autostop::minutes_text(m)
            ),
            (StopReason::LongestRun, Some(m)) => format!(
                "ran for {} (its longest run)",
                app::api::autostop::minutes_text(m)
            ),
            _ => "its schedule".to_owned(),
        };
        let note = format!(
            "stopped automatically at {}: {why}",
            rules::local_text(deadline.at, deadline.at, &TimeZone::UTC) + " UTC"
        );
        let moved = space::Entity::update_many()
            .col_expr(space::Column::State, Expr::value(SpaceState::Stopping))
            .col_expr(space::Column::AfterStop, Expr::value(AfterStop::Stay))
            .col_expr(space::Column::AutoNote, Expr::value(note.clone()))
            .col_expr(space::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(space::Column::Id.eq(space.id.clone()))
            .filter(space::Column::State.eq(SpaceState::Running))
            .filter(same(space::Column::StartedAt, space.started_at))
            .filter(same(space::Column::LastActivityAt, space.last_activity_at))
            .filter(same(space::Column::KeepaliveUntil, space.keepalive_until))
            .exec(&self.db)
            .await?;
        if moved.rows_affected != 1 {
            return Ok(());
        }
        let actor = deadline.reason.as_str();
        self.terminals
            .close_space(space.id.as_str(), &format!("the space {note}"));
        metrics::counter!("hangar_autostop_total", "action" => "stop", "reason" => actor)
            .increment(1);
        tracing::info!(space = %space.id, reason = actor, "stopped a space automatically");
        record_by(
            &self.db,
            Actor::Hangar(actor),
            "space.stop",
            &space_target(&owner.username, &space.name),
            Outcome::Success,
            json!({"reason": why, "deadline": deadline.at}),
        )
        .await;
        self.space_changed(&space.id).await;
        self.drive(space.id.clone());
        self.notify(
            &owner.id,
            Notice::new(
                NotificationKind::SpaceStopped,
                format!("{} was stopped", space.name),
                format!("The space {} was {note}.", space.name),
            )
            .on_space(&space.id),
        )
        .await;
        Ok(())
    }

    async fn stopped_pass(
        &self,
        space: &space::Model,
        stops: &Stops,
        owner: &user::Model,
    ) -> ApiResult<()> {
        self.scheduled_start(space, stops, owner).await?;
        self.retain(space, owner).await
    }

    /// Starts a stopped space whose scheduled start came (once: a compare-and-set on the
    /// starts seen), unless a scheduled stop followed it already (Hangar was down then).
    async fn scheduled_start(
        &self,
        space: &space::Model,
        stops: &Stops,
        owner: &user::Model,
    ) -> ApiResult<()> {
        let now = self.clock.now();
        let mut since = space.created_at;
        for seen in [
            space.schedule_seen_at,
            space.stopped_at,
            stops
                .template_updated_at
                .filter(|_| stops.schedule_from_template),
        ]
        .into_iter()
        .flatten()
        {
            since = since.max(seen);
        }
        let Some(start) = rules::last_between(&stops.schedule, &stops.tz, Edge::Start, since, now)
        else {
            return Ok(());
        };
        let taken = space::Entity::update_many()
            .col_expr(space::Column::ScheduleSeenAt, Expr::value(start))
            .filter(space::Column::Id.eq(space.id.clone()))
            .filter(space::Column::State.eq(space.state))
            .filter(same(space::Column::ScheduleSeenAt, space.schedule_seen_at))
            .exec(&self.db)
            .await?;
        if taken.rows_affected != 1 {
            return Ok(());
        }
        if rules::last_between(&stops.schedule, &stops.tz, Edge::Stop, start, now).is_some() {
            return Ok(());
        }
        let local = rules::local_text(start, now, &stops.tz);
        match self
            .begin_start(space, owner, Actor::Hangar("schedule"), Action::Start)
            .await
        {
            Ok(started) => {
                metrics::counter!("hangar_autostop_total", "action" => "start", "reason" => "schedule")
                    .increment(1);
                record_by(
                    &self.db,
                    Actor::Hangar("schedule"),
                    "space.start",
                    &space_target(&owner.username, &space.name),
                    Outcome::Success,
                    json!({"scheduled": start}),
                )
                .await;
                self.space_changed(&started.id).await;
                self.drive(started.id);
            }
            Err(refusal) if refusal.code == ErrorCode::QuotaExceeded => {
                metrics::counter!("hangar_autostop_total", "action" => "start_skipped", "reason" => "quota")
                    .increment(1);
                let note = format!(
                    "the scheduled start at {local} ({}) was skipped: {}",
                    stops.tz_name, refusal.message
                );
                space::Entity::update_many()
                    .col_expr(space::Column::AutoNote, Expr::value(note))
                    .filter(space::Column::Id.eq(space.id.clone()))
                    .exec(&self.db)
                    .await?;
                self.space_changed(&space.id).await;
            }
            Err(other) => return Err(other),
        }
        Ok(())
    }

    /// Retention's step for a stopped space: warn its owner, or delete it once warned long
    /// enough (never one pinned `keep`, never one used since the warning).
    async fn retain(&self, space: &space::Model, owner: &user::Model) -> ApiResult<()> {
        let retention = self.autostop.retention();
        let Some(days) = retention.days else {
            return Ok(());
        };
        if space.keep {
            return Ok(());
        }
        let now = self.clock.now();
        let step = rules::retention_step(
            now,
            last_used(space),
            days,
            retention.warning_days,
            space.retention_warned_at,
        );
        let target = space_target(&owner.username, &space.name);
        match step {
            RetentionStep::Wait => {}
            RetentionStep::Warn => {
                let warned = space::Entity::update_many()
                    .col_expr(space::Column::RetentionWarnedAt, Expr::value(now))
                    .filter(space::Column::Id.eq(space.id.clone()))
                    .filter(space::Column::State.eq(space.state))
                    .filter(same(
                        space::Column::RetentionWarnedAt,
                        space.retention_warned_at,
                    ))
                    .exec(&self.db)
                    .await?;
                if warned.rows_affected == 1 {
                    metrics::counter!("hangar_autostop_total", "action" => "retention_warning", "reason" => "retention")
                        .increment(1);
                    record_by(
                        &self.db,
                        Actor::Hangar("retention"),
                        "space.retention_warning",
                        &target,
                        Outcome::Success,
                        json!({"days": days, "warning_days": retention.warning_days}),
                    )
                    .await;
                    self.space_changed(&space.id).await;
                    self.notify(
                        &owner.id,
                        Notice::new(
                            NotificationKind::RetentionSoon,
                            format!("{} will be deleted", space.name),
                            format!(
                                "The space {} has been stopped and unused for a long time: \
                                 retention deletes it, volumes included, in {} days unless it \
                                 is used or pinned to keep.",
                                space.name, retention.warning_days
                            ),
                        )
                        .on_space(&space.id),
                    )
                    .await;
                }
            }
            RetentionStep::Delete => {
                if lifecycle::plan(space.state, Action::Delete).is_err() {
                    return Ok(());
                }
                let moved = space::Entity::update_many()
                    .col_expr(space::Column::State, Expr::value(SpaceState::Stopping))
                    .col_expr(space::Column::AfterStop, Expr::value(AfterStop::Delete))
                    .col_expr(space::Column::UpdatedAt, Expr::value(Utc::now()))
                    .filter(space::Column::Id.eq(space.id.clone()))
                    .filter(space::Column::State.eq(space.state))
                    .filter(space::Column::Keep.eq(false))
                    .filter(same(
                        space::Column::RetentionWarnedAt,
                        space.retention_warned_at,
                    ))
                    .filter(same(space::Column::LastActivityAt, space.last_activity_at))
                    .filter(same(space::Column::KeepaliveUntil, space.keepalive_until))
                    .exec(&self.db)
                    .await?;
                if moved.rows_affected != 1 {
                    return Ok(());
                }
                metrics::counter!("hangar_autostop_total", "action" => "delete", "reason" => "retention")
                    .increment(1);
                record_by(
                    &self.db,
                    Actor::Hangar("retention"),
                    "space.delete",
                    &target,
                    Outcome::Success,
                    json!({"reason": format!("stopped and unused for {days} days")}),
                )
                .await;
                self.space_changed(&space.id).await;
                self.drive(space.id.clone());
            }
        }
        Ok(())
    }

    /// The caller's spaces (own or shared with them) whose users are warned of a coming
    /// automatic stop, as live events (a page's first batch).
    pub async fn warned_spaces(&self, caller: &Caller) -> Vec<app::protocol::LiveEvent> {
        use app::api::spaces::ssr::SpaceQueries;
        let shared_with_caller = sea_orm::sea_query::Query::select()
            .column(crate::entities::share::Column::SpaceId)
            .from(crate::entities::share::Entity)
            .and_where(crate::entities::share::Column::UserId.eq(caller.id().clone()))
            .to_owned();
        let warned = space::Entity::find()
            .filter(space::Column::State.eq(SpaceState::Running))
            .filter(space::Column::StopWarnedAt.is_not_null())
            .filter(
                space::Column::OwnerId
                    .eq(caller.id().clone())
                    .or(space::Column::Id.in_subquery(shared_with_caller)),
            )
            .all(&self.db)
            .await
            .unwrap_or_default();
        let mut out = Vec::new();
        for space in warned {
            if let Ok(dto) = self.get_space(caller, &space.id).await {
                out.push(app::protocol::LiveEvent::Space(
                    app::protocol::SpaceUpdate::Visible(Box::new(dto)),
                ));
            }
        }
        out
    }

    /// One space's stops, read with its template and its owner's time zone.
    async fn stops_for(&self, space: &space::Model) -> ApiResult<Stops> {
        let template = match &space.template_id {
            Some(id) => {
                template::Entity::find_by_id(id.clone())
                    .one(&self.db)
                    .await?
            }
            None => None,
        };
        let owner = self.find_user(&space.owner_id).await?;
        Ok(stops_of(
            space,
            template.as_ref(),
            owner.time_zone.as_deref(),
        ))
    }

    async fn settings_of(&self, space: &space::Model) -> ApiResult<SpaceAutostop> {
        let stops = self.stops_for(space).await?;
        let next_start = if matches!(space.state, SpaceState::Stopped | SpaceState::Created) {
            rules::next_after(&stops.schedule, &stops.tz, Edge::Start, self.clock.now())
                .map(Into::into)
        } else {
            None
        };
        Ok(SpaceAutostop {
            space_id: space.id.clone(),
            idle_stop_minutes: stops.idle,
            max_run_minutes: stops.max_run,
            own_idle_stop_minutes: stops.own_idle,
            own_max_run_minutes: stops.own_max_run,
            template_idle_stop_minutes: stops.template_idle,
            template_max_run_minutes: stops.template_max_run,
            owners_may_change_stops: stops.may_change,
            schedule: stops.schedule,
            schedule_from_template: stops.schedule_from_template,
            time_zone: stops.tz_name,
            keep: space.keep,
            keepalive_until: space.keepalive_until.map(Into::into),
            next_start,
        })
    }
}

/// When a stopped space was last used: created, started, stopped, active or kept alive.
fn last_used(space: &space::Model) -> DateTime<Utc> {
    [
        space.started_at,
        space.stopped_at,
        space.last_activity_at,
        space.keepalive_until,
    ]
    .into_iter()
    .flatten()
    .fold(space.created_at, DateTime::max)
}

/// A template's stops as given: minutes in range, a valid schedule.
pub fn check_template_autostop(autostop: &app::api::autostop::TemplateAutostop) -> ApiResult<()> {
    rules::check_minutes("autostop.idle_stop_minutes", autostop.idle_stop_minutes)
        .map_err(|e| ApiError::invalid("autostop.idle_stop_minutes", e))?;
    rules::check_minutes("autostop.max_run_minutes", autostop.max_run_minutes)
        .map_err(|e| ApiError::invalid("autostop.max_run_minutes", e))?;
    if let Some(schedule) = &autostop.default_schedule {
        rules::check_schedule(schedule)
            .map_err(|e| ApiError::invalid("autostop.default_schedule", e))?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl AutostopApi for Services {
    async fn space_autostop(&self, caller: &Caller, id: &SpaceId) -> ApiResult<SpaceAutostop> {
        let (space, _) = self.visible_space(caller, id).await?;
        self.settings_of(&space).await
    }

    async fn update_space_autostop(
        &self,
        caller: &Caller,
        id: &SpaceId,
        input: UpdateSpaceAutostop,
    ) -> ApiResult<SpaceAutostop> {
        let space = self.managed_space(caller, id).await?;
        let current = self.settings_of(&space).await?;
        let mut update = space::Entity::update_many()
            .col_expr(space::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(space::Column::Id.eq(space.id.clone()));
        let stops = [
            (
                "idle_stop_minutes",
                input.idle_stop_minutes,
                current.template_idle_stop_minutes,
                space::Column::IdleStopMinutes,
            ),
            (
                "max_run_minutes",
                input.max_run_minutes,
                current.template_max_run_minutes,
                space::Column::MaxRunMinutes,
            ),
        ];
        for (field, asked, bound, column) in stops {
            let Some(asked) = asked else { continue };
            if !current.owners_may_change_stops && asked.is_some() {
                return Err(ApiError::invalid(
                    field,
                    "this space's template does not let owners choose their stops: ask an admin",
                ));
            }
            let asked =
                rules::check_minutes(field, asked).map_err(|e| ApiError::invalid(field, e))?;
            if let (Some(asked), Some(bound)) = (asked, bound) {
                if asked > bound {
                    return Err(ApiError::invalid(
                        field,
                        format!(
                            "{field} may be at most the template's {bound} minutes, not {asked}"
                        ),
                    ));
                }
            }
            update = update.col_expr(column, Expr::value(asked));
        }
        if let Some(schedule) = &input.schedule {
            if let Some(schedule) = schedule {
                rules::check_schedule(schedule).map_err(|e| ApiError::invalid("schedule", e))?;
            }
            let stored = schedule.as_ref().map(to_json).transpose()?;
            update = update
                .col_expr(space::Column::Schedule, Expr::value(stored))
                // Starts before now are not acted on: the schedule begins from here.
                .col_expr(space::Column::ScheduleSeenAt, Expr::value(self.clock.now()));
        }
        if let Some(keep) = input.keep {
            update = update.col_expr(space::Column::Keep, Expr::value(keep));
            if keep {
                update = update.col_expr(
                    space::Column::RetentionWarnedAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                );
            }
        }
        update.exec(&self.db).await?;
        let owner = self.find_user(&space.owner_id).await?;
        record(
            &self.db,
            Some(caller),
            "space.autostop",
            &space_target(&owner.username, &space.name),
            Outcome::Success,
            serde_json::to_value(&input).unwrap_or_default(),
        )
        .await;
        self.space_changed(&space.id).await;
        let (space, _) = self.visible_space(caller, id).await?;
        self.settings_of(&space).await
    }

    async fn keepalive(
        &self,
        caller: &Caller,
        id: &SpaceId,
        input: Keepalive,
    ) -> ApiResult<Option<AutoStop>> {
        let minutes = input.for_minutes.unwrap_or(0);
        if !(0..=MAX_KEEPALIVE_MINUTES).contains(&minutes) {
            return Err(ApiError::invalid(
                "for_minutes",
                format!("for_minutes must be 0 to {MAX_KEEPALIVE_MINUTES} (a day); renew it for longer jobs"),
            ));
        }
        let (space, _) = self.usable_space(caller, id).await?;
        let now = self.clock.now();
        let mut update = space::Entity::update_many()
            .col_expr(space::Column::LastActivityAt, Expr::value(now))
            .col_expr(
                space::Column::LastActivityKind,
                Expr::value(ActivityKind::Keepalive.as_str()),
            )
            .col_expr(
                space::Column::StopWarnedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(space::Column::Id.eq(space.id.clone()));
        if input.for_minutes.is_some() {
            update = update.col_expr(
                space::Column::KeepaliveUntil,
                Expr::value(now + chrono::Duration::minutes(minutes)),
            );
        }
        update.exec(&self.db).await?;
        self.activity.touch(&space.id, ActivityKind::Keepalive);
        self.space_changed(&space.id).await;
        let (space, _) = self.visible_space(caller, id).await?;
        let stops = self.stops_for(&space).await?;
        Ok(self.autostop_view(&space, &stops, caller.user.time_zone.as_deref()))
    }

    async fn set_time_zone(
        &self,
        caller: &Caller,
        input: TimeZoneSetting,
    ) -> ApiResult<TimeZoneSetting> {
        let name = input
            .time_zone
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        if name.as_ref().is_some_and(|n| n.len() > 64) {
            return Err(ApiError::invalid(
                "time_zone",
                "a time zone name has at most 64 characters",
            ));
        }
        rules::time_zone(name.as_deref()).map_err(|e| ApiError::invalid("time_zone", e))?;
        user::Entity::update_many()
            .col_expr(user::Column::TimeZone, Expr::value(name.clone()))
            .filter(user::Column::Id.eq(caller.id().clone()))
            .exec(&self.db)
            .await?;
        self.users_changed(vec![caller.id().clone()]);
        Ok(TimeZoneSetting { time_zone: name })
    }

    async fn retention(&self, caller: &Caller) -> ApiResult<Retention> {
        caller.require_admin()?;
        Ok(
            match crate::db::setting(&self.db, RETENTION_SETTING).await? {
                Some(stored) => from_json(&stored, "retention")?,
                None => Retention::default(),
            },
        )
    }

    async fn set_retention(&self, caller: &Caller, input: Retention) -> ApiResult<Retention> {
        caller.require_admin()?;
        if input.days.is_some_and(|d| !(1..=3650).contains(&d)) {
            return Err(ApiError::invalid(
                "days",
                "days must be 1 to 3650, or null for never",
            ));
        }
        if !(1..=365).contains(&input.warning_days) {
            return Err(ApiError::invalid(
                "warning_days",
                "warning_days must be 1 to 365",
            ));
        }
        crate::db::set_setting(&self.db, RETENTION_SETTING, &to_json(&input)?).await?;
        *self
            .autostop
            .retention
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = input.clone();
        record(
            &self.db,
            Some(caller),
            "settings.retention",
            "installation",
            Outcome::Success,
            json!({"days": input.days, "warning_days": input.warning_days}),
        )
        .await;
        Ok(input)
    }
}

/// Runs [`Services::autostop_once`] every `--autostop-interval-secs`, and writes activity
/// down every `--activity-flush-secs` in between, until the task is dropped.
pub fn spawn(services: Services) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = Duration::from_secs(services.config.autostop_interval_secs);
        let flush = Duration::from_secs(services.config.activity_flush_secs);
        let mut pass = tokio::time::interval(every);
        pass.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut flushes = tokio::time::interval(flush);
        flushes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = pass.tick() => {
                    if let Err(e) = services.autostop_once().await {
                        tracing::warn!(error = %e, "automatic stop pass failed");
                    }
                }
                _ = flushes.tick() => {
                    if let Err(e) = services.flush_activity().await {
                        tracing::warn!(error = %e, "could not write activity down");
                    }
                }
            }
        }
    })
}
