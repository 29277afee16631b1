//! Spaces that stop and start themselves: what a space shows of its coming automatic stop and
//! its last activity, its schedule and stop settings, keepalives, the caller's time zone and
//! the installation's retention of stopped spaces.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ids::SpaceId;
use crate::time::Timestamp;

/// Longest idle stop or longest run, in minutes (30 days).
pub const MAX_STOP_MINUTES: i64 = 43_200;
/// Longest a keepalive lasts, in minutes (one day: a longer job renews it).
pub const MAX_KEEPALIVE_MINUTES: i64 = 1_440;
/// Most rules a schedule holds.
pub const MAX_SCHEDULE_RULES: usize = 14;

/// A day of the week.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Weekday::Mon => "mon",
            Weekday::Tue => "tue",
            Weekday::Wed => "wed",
            Weekday::Thu => "thu",
            Weekday::Fri => "fri",
            Weekday::Sat => "sat",
            Weekday::Sun => "sun",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Weekday::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

/// `mon-fri`, `sat,sun`, `daily`, `weekdays`, `mon,wed-fri`.
fn parse_days(text: &str) -> Result<Vec<Weekday>, String> {
    let mut days = Vec::new();
    for part in text.split(',').map(str::trim) {
        let found: Vec<Weekday> = match part.to_ascii_lowercase().as_str() {
            "daily" | "every" => Weekday::ALL.to_vec(),
            "weekdays" => Weekday::ALL[..5].to_vec(),
            "weekends" => Weekday::ALL[5..].to_vec(),
            other => match other.split_once('-') {
                Some((from, to)) => {
                    let (from, to) = (Weekday::parse(from), Weekday::parse(to));
                    match (from, to) {
                        (Some(from), Some(to)) if from <= to => Weekday::ALL
                            .into_iter()
                            .filter(|d| *d >= from && *d <= to)
                            .collect(),
                        _ => Vec::new(),
                    }
                }
                None => Weekday::parse(other).into_iter().collect(),
            },
        };
        if found.is_empty() {
            return Err(format!(
                "`{part}` is not a day: give mon, tue, wed, thu, fri, sat, sun, ranges such as mon-fri, daily or weekdays"
            ));
        }
        for day in found {
            if !days.contains(&day) {
                days.push(day);
            }
        }
    }
    days.sort();
    Ok(days)
}

/// One rule of a weekly schedule: on these days, start and/or stop at these times (`HH:MM`,
/// 24 h, in the owner's time zone).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRule {
    #[cfg_attr(feature = "ssr", schema(min_items = 1, max_items = 7))]
    pub days: Vec<Weekday>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub stop: Option<String>,
}

/// A weekly schedule: its rules (none: the space starts and stops only when asked).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    #[cfg_attr(feature = "ssr", schema(max_items = 14))]
    pub rules: Vec<ScheduleRule>,
}

impl Schedule {
    /// Reads `mon-fri 08:00-18:30; sat,sun -12:00; daily 07:00-`: rules split by `;`, each
    /// days (names, ranges, `daily` or `weekdays`) then `START-STOP` where either may be
    /// left out. Empty or `none`: no rules.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("none") {
            return Ok(Schedule::default());
        }
        let mut rules = Vec::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (days, times) = part.split_once(char::is_whitespace).ok_or_else(|| {
                format!("`{part}` needs days and times, e.g. `mon-fri 08:00-18:00`")
            })?;
            let (start, stop) = times.trim().split_once('-').ok_or_else(|| {
                format!("`{times}` needs START-STOP, e.g. 08:00-18:00, -18:00 or 08:00-")
            })?;
            let time = |t: &str| {
                let t = t.trim();
                (!t.is_empty()).then(|| t.to_owned())
            };
            rules.push(ScheduleRule {
                days: parse_days(days)?,
                start: time(start),
                stop: time(stop),
            });
        }
        Ok(Schedule { rules })
    }

    /// `mon-fri 08:00-18:30; sat -12:00` style, for people and the command line.
    pub fn describe(&self) -> String {
        if self.rules.is_empty() {
            return "none".to_owned();
        }
        self.rules
            .iter()
            .map(|rule| {
                let days: Vec<&str> = rule.days.iter().map(|d| d.as_str()).collect();
                format!(
                    "{} {}-{}",
                    days.join(","),
                    rule.start.as_deref().unwrap_or(""),
                    rule.stop.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Why Hangar will stop a running space by itself.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Nobody used it for its idle stop.
    Idle,
    /// It ran for its longest run.
    LongestRun,
    /// Its schedule says so.
    Schedule,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Idle => "idle",
            StopReason::LongestRun => "longest run",
            StopReason::Schedule => "schedule",
        }
    }
}

/// The coming automatic stop of a running space.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoStop {
    pub at: Timestamp,
    /// `at` as the caller reads it: `18:40`, or `Tue 18:40` beyond today, in their time zone.
    pub local: String,
    pub reason: StopReason,
    /// The idle stop or the longest run, in minutes (null for a schedule).
    pub minutes: Option<i64>,
    /// Within the warning: every open page of its users shows it, with "Keep running".
    pub warned: bool,
    /// A keepalive moves it (not the longest run, which only a restart starts afresh).
    pub can_keep_running: bool,
}

impl AutoStop {
    /// `stops at 18:40 (idle 30 min)`.
    pub fn describe(&self) -> String {
        let why = match (self.reason, self.minutes) {
            (StopReason::Idle, Some(m)) => format!("idle {}", minutes_text(m)),
            (StopReason::LongestRun, Some(m)) => format!("longest run {}", minutes_text(m)),
            (reason, _) => reason.as_str().to_owned(),
        };
        format!("stops at {} ({why})", self.local)
    }
}

/// `30 min`, `2 h`, `1 h 30 min`.
pub fn minutes_text(minutes: i64) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// What Hangar saw a space used through (see docs/autostop.md: what counts as activity).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// Input or output on a web terminal.
    Terminal,
    /// Input or output of an SSH session.
    Ssh,
    /// Traffic through an SSH forward (`ssh -L`).
    SshForward,
    /// Requests or WebSocket frames through the port proxy (apps, code-server).
    Proxy,
    /// Requests through a public link.
    Tunnel,
    /// The desktop (VNC) or a TCP forward (`hangar port-forward`).
    Bridge,
    /// A file upload or download.
    Files,
    /// `hangar keepalive` or "Keep running".
    Keepalive,
}

impl ActivityKind {
    pub const ALL: [ActivityKind; 8] = [
        ActivityKind::Terminal,
        ActivityKind::Ssh,
        ActivityKind::SshForward,
        ActivityKind::Proxy,
        ActivityKind::Tunnel,
        ActivityKind::Bridge,
        ActivityKind::Files,
        ActivityKind::Keepalive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Terminal => "terminal",
            ActivityKind::Ssh => "ssh",
            ActivityKind::SshForward => "ssh_forward",
            ActivityKind::Proxy => "proxy",
            ActivityKind::Tunnel => "tunnel",
            ActivityKind::Bridge => "bridge",
            ActivityKind::Files => "files",
            ActivityKind::Keepalive => "keepalive",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        ActivityKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// For people: `terminal`, `SSH`, `an app`, ...
    pub fn label(self) -> &'static str {
        match self {
            ActivityKind::Terminal => "terminal",
            ActivityKind::Ssh => "SSH",
            ActivityKind::SshForward => "SSH forward",
            ActivityKind::Proxy => "app",
            ActivityKind::Tunnel => "public link",
            ActivityKind::Bridge => "desktop or port forward",
            ActivityKind::Files => "file transfer",
            ActivityKind::Keepalive => "keepalive",
        }
    }
}

/// The last time Hangar saw the space used, and how.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastActivity {
    pub at: Timestamp,
    pub kind: ActivityKind,
}

/// A template's automatic stops (admins set them).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateAutostop {
    /// Its spaces stop after this many minutes without activity (null: never).
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 43200))]
    pub idle_stop_minutes: Option<i64>,
    /// Its spaces stop after running this many minutes in one go, busy or not (null: never).
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 43200))]
    pub max_run_minutes: Option<i64>,
    /// Owners may choose shorter stops for their spaces (never longer, never none).
    #[serde(default)]
    pub owners_may_change: bool,
    /// The schedule its spaces follow until their owner sets one.
    #[serde(default)]
    pub default_schedule: Option<Schedule>,
}

/// A space's automatic stop and start settings (`GET /api/v1/spaces/{id}/autostop`).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceAutostop {
    pub space_id: SpaceId,
    /// The idle stop in force, in minutes (null: none).
    pub idle_stop_minutes: Option<i64>,
    /// The longest run in force, in minutes (null: none).
    pub max_run_minutes: Option<i64>,
    /// The owner's own choices (used when the template lets owners choose).
    pub own_idle_stop_minutes: Option<i64>,
    pub own_max_run_minutes: Option<i64>,
    /// The template's (the most an owner may choose).
    pub template_idle_stop_minutes: Option<i64>,
    pub template_max_run_minutes: Option<i64>,
    /// The template lets owners choose shorter stops.
    pub owners_may_change_stops: bool,
    /// The schedule in force.
    pub schedule: Schedule,
    /// It is the template's default (the owner set none).
    pub schedule_from_template: bool,
    /// The owner's time zone, which the schedule's times are in.
    pub time_zone: String,
    /// Retention never deletes it.
    pub keep: bool,
    /// Counts as in use until then.
    pub keepalive_until: Option<Timestamp>,
    /// The next scheduled start, when it is stopped and has one.
    pub next_start: Option<Timestamp>,
}

/// Changes to a space's settings; absent fields stay as they are.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSpaceAutostop {
    /// The owner's idle stop, in minutes, at most the template's (null: the template's).
    #[serde(
        default,
        deserialize_with = "super::serde_helpers::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<i64>, minimum = 1, maximum = 43200))]
    pub idle_stop_minutes: Option<Option<i64>>,
    /// The owner's longest run, in minutes, at most the template's (null: the template's).
    #[serde(
        default,
        deserialize_with = "super::serde_helpers::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<i64>, minimum = 1, maximum = 43200))]
    pub max_run_minutes: Option<Option<i64>>,
    /// Its own schedule (null: back to the template's default).
    #[serde(
        default,
        deserialize_with = "super::serde_helpers::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<Schedule>))]
    pub schedule: Option<Option<Schedule>>,
    /// Pin it: retention never deletes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<bool>,
}

/// `POST /api/v1/spaces/{id}/keepalive`: the space counts as in use now and, with
/// `for_minutes`, until then (for long unattended jobs).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keepalive {
    /// 0 to 1440 (a day); absent: now only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", schema(minimum = 0, maximum = 1440))]
    pub for_minutes: Option<i64>,
}

/// The caller's time zone (`PUT /api/v1/me/time-zone`).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeZoneSetting {
    /// An IANA time zone such as `Europe/Berlin`; null: UTC.
    #[cfg_attr(feature = "ssr", schema(max_length = 64))]
    pub time_zone: Option<String>,
}

/// The installation's retention of stopped spaces (`GET/PUT /api/v1/admin/retention`).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// A space stopped and unused for this many days is deleted (null: never, the default).
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 3650))]
    pub days: Option<i64>,
    /// Its owner is warned this many days before (the space page says when, with "Keep").
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 365))]
    pub warning_days: i64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            days: None,
            warning_days: 7,
        }
    }
}

#[server(name = SpaceAutostopCall)]
pub async fn space_autostop(id: SpaceId) -> Result<SpaceAutostop, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.space_autostop(&caller, &id).await)
}

#[server(name = UpdateSpaceAutostopCall, input = server_fn::codec::Json)]
pub async fn update_space_autostop(
    id: SpaceId,
    input: UpdateSpaceAutostop,
) -> Result<SpaceAutostop, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.update_space_autostop(&caller, &id, input).await)
}

/// "Keep running": the space counts as in use for `for_minutes`.
#[server]
pub async fn keep_running(id: SpaceId, for_minutes: Option<i64>) -> Result<(), ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(
        api.keepalive(&caller, &id, Keepalive { for_minutes })
            .await
            .map(|_| ()),
    )
}

#[server]
pub async fn set_time_zone(time_zone: Option<String>) -> Result<(), ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(
        api.set_time_zone(&caller, TimeZoneSetting { time_zone })
            .await
            .map(|_| ()),
    )
}

#[server(name = RetentionCall)]
pub async fn retention() -> Result<Retention, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.retention(&caller).await)
}

#[server(name = SetRetentionCall, input = server_fn::codec::Json)]
pub async fn set_retention(input: Retention) -> Result<Retention, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.set_retention(&caller, input).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{Keepalive, Retention, SpaceAutostop, TimeZoneSetting, UpdateSpaceAutostop};
    use crate::api::ssr::Caller;
    use crate::error::ApiResult;
    use crate::ids::SpaceId;

    /// Automatic stops and starts: a space's settings, keepalives, time zones, retention.
    #[async_trait::async_trait]
    pub trait AutostopApi: Send + Sync + 'static {
        async fn space_autostop(&self, caller: &Caller, id: &SpaceId) -> ApiResult<SpaceAutostop>;
        async fn update_space_autostop(
            &self,
            caller: &Caller,
            id: &SpaceId,
            input: UpdateSpaceAutostop,
        ) -> ApiResult<SpaceAutostop>;
        /// The space's coming automatic stop once moved (None when it has none).
        async fn keepalive(
            &self,
            caller: &Caller,
            id: &SpaceId,
            input: Keepalive,
        ) -> ApiResult<Option<super::AutoStop>>;
        async fn set_time_zone(
            &self,
            caller: &Caller,
            input: TimeZoneSetting,
        ) -> ApiResult<TimeZoneSetting>;
        async fn retention(&self, caller: &Caller) -> ApiResult<Retention>;
        async fn set_retention(&self, caller: &Caller, input: Retention) -> ApiResult<Retention>;
    }
}
