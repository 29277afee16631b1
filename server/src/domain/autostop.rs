//! When a space stops and starts by itself: the idle stop and longest run in force, a weekly
//! schedule's times in its owner's time zone (daylight-saving changes included, through
//! `jiff` and the tz database), the deadline of a running space, and retention's steps.
//! Pure: the caller gives the time.

use app::api::autostop::{Schedule, StopReason, Weekday, MAX_SCHEDULE_RULES, MAX_STOP_MINUTES};
use chrono::{DateTime, Duration, Utc};
use jiff::civil;
use jiff::tz::TimeZone;

/// The stop in force: the template's bound, or the owner's own when the template lets owners
/// choose and theirs is shorter (never above the bound, never none when there is one).
pub fn effective_minutes(template: Option<i64>, own: Option<i64>, may_change: bool) -> Option<i64> {
    match (template, own.filter(|_| may_change)) {
        (Some(bound), Some(own)) => Some(own.min(bound)),
        (Some(bound), None) => Some(bound),
        (None, own) => own,
    }
}

/// A stop in minutes as given: 1 to [`MAX_STOP_MINUTES`].
pub fn check_minutes(field: &str, minutes: Option<i64>) -> Result<Option<i64>, String> {
    match minutes {
        Some(m) if !(1..=MAX_STOP_MINUTES).contains(&m) => Err(format!(
            "{field} must be 1 to {MAX_STOP_MINUTES} minutes (or null for none), not {m}"
        )),
        other => Ok(other),
    }
}

/// `HH:MM` (24 h) as hours and minutes.
pub fn parse_time(text: &str) -> Result<(i8, i8), String> {
    let bad = || format!("`{text}` is not a time: give HH:MM, 24 h (e.g. 08:30 or 18:00)");
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    Ok((h, m))
}

/// A schedule as given: each rule names days and a start or a stop, at valid times.
pub fn check_schedule(schedule: &Schedule) -> Result<(), String> {
    if schedule.rules.len() > MAX_SCHEDULE_RULES {
        return Err(format!(
            "a schedule has at most {MAX_SCHEDULE_RULES} rules, not {}",
            schedule.rules.len()
        ));
    }
    for rule in &schedule.rules {
        if rule.days.is_empty() {
            return Err("each rule of a schedule names at least one day (mon to sun)".into());
        }
        // Days are an enum of seven: more names repeat one (a list any door could make long).
        if rule.days.len() > 7 {
            return Err(format!(
                "a rule names each day at most once (mon to sun), not {} days",
                rule.days.len()
            ));
        }
        if rule.start.is_none() && rule.stop.is_none() {
            return Err("each rule of a schedule has a start, a stop or both (HH:MM)".into());
        }
        for time in rule.start.iter().chain(rule.stop.iter()) {
            parse_time(time)?;
        }
    }
    Ok(())
}

/// The time zone of this IANA name (None: UTC).
pub fn time_zone(name: Option<&str>) -> Result<TimeZone, String> {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        None => Ok(TimeZone::UTC),
        Some(name) => TimeZone::get(name).map_err(|_| {
            format!("`{name}` is not a time zone: give an IANA name such as Europe/Berlin or America/New_York")
        }),
    }
}

fn to_jiff(at: DateTime<Utc>) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_millisecond(at.timestamp_millis()).ok()
}

fn from_jiff(at: jiff::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(at.as_millisecond())
}

fn weekday(day: civil::Weekday) -> Weekday {
    match day {
        civil::Weekday::Monday => Weekday::Mon,
        civil::Weekday::Tuesday => Weekday::Tue,
        civil::Weekday::Wednesday => Weekday::Wed,
        civil::Weekday::Thursday => Weekday::Thu,
        civil::Weekday::Friday => Weekday::Fri,
        civil::Weekday::Saturday => Weekday::Sat,
        civil::Weekday::Sunday => Weekday::Sun,
    }
}

/// Which of a rule's times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    Start,
    Stop,
}

/// The schedule's `edge` times from the local day of `from` (one day earlier, for zones
/// behind) for `days` days, as instants, in order. A time a daylight-saving change skips
/// happens as the clock jumps (02:30 on a spring-forward night is 03:30); one it repeats
/// happens the first time.
fn times(
    schedule: &Schedule,
    tz: &TimeZone,
    edge: Edge,
    from: DateTime<Utc>,
    days: i64,
) -> Vec<DateTime<Utc>> {
    let Some(start) = to_jiff(from) else {
        return Vec::new();
    };
    let mut day = start.to_zoned_datetime(tz.clone()).date();
    day = day.yesterday().unwrap_or(day);
    let mut out = Vec::new();
    for _ in 0..days + 2 {
        let today = weekday(day.weekday());
        for rule in &schedule.rules {
            if !rule.days.contains(&today) {
                continue;
            }
            let time = match edge {
                Edge::Start => rule.start.as_deref(),
                Edge::Stop => rule.stop.as_deref(),
            };
            let Some(Ok((h, m))) = time.map(parse_time) else {
                continue;
            };
            let local = day.at(h, m, 0, 0);
            if let Some(at) = tz
                .to_ambiguous_zoned_datetime(local)
                .compatible()
                .ok()
                .and_then(|z| from_jiff(z.timestamp()))
            {
                out.push(at);
            }
        }
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The first `edge` time strictly after `after` (within eight days).
pub fn next_after(
    schedule: &Schedule,
    tz: &TimeZone,
    edge: Edge,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    times(schedule, tz, edge, after, 8)
        .into_iter()
        .find(|at| *at > after)
}

/// The last `edge` time in `(after, until]` (looking back at most eight days).
pub fn last_between(
    schedule: &Schedule,
    tz: &TimeZone,
    edge: Edge,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let from = after.max(until - Duration::days(8));
    times(schedule, tz, edge, from, (until - from).num_days() + 1)
        .into_iter()
        .rfind(|at| *at > after && *at <= until)
}

/// What decides when a running space stops.
pub struct Running<'a> {
    pub started_at: DateTime<Utc>,
    /// The last activity seen, or the end of a keepalive, whichever is later.
    pub last_use: Option<DateTime<Utc>>,
    pub idle_minutes: Option<i64>,
    pub max_run_minutes: Option<i64>,
    pub schedule: &'a Schedule,
    pub tz: &'a TimeZone,
    /// How long before a stop its users are warned; a scheduled stop waits until the space
    /// has been unused this long.
    pub warning: Duration,
}

/// When the space stops, and why: the earliest of its idle stop (counted from its last use,
/// at the earliest from its start), its longest run (from its start, busy or not) and the
/// first scheduled stop since it started. A scheduled stop never cuts someone's work short:
/// it waits until the space has been unused for the warning's length.
pub fn deadline(running: &Running<'_>) -> Option<(DateTime<Utc>, StopReason)> {
    let used = running
        .last_use
        .map_or(running.started_at, |u| u.max(running.started_at));
    let mut candidates = Vec::new();
    if let Some(idle) = running.idle_minutes {
        candidates.push((used + Duration::minutes(idle), StopReason::Idle));
    }
    if let Some(max) = running.max_run_minutes {
        candidates.push((
            running.started_at + Duration::minutes(max),
            StopReason::LongestRun,
        ));
    }
    if let Some(stop) = next_after(running.schedule, running.tz, Edge::Stop, running.started_at) {
        candidates.push((stop.max(used + running.warning), StopReason::Schedule));
    }
    candidates.into_iter().min_by_key(|(at, _)| *at)
}

/// `18:40` today, `Tue 18:40` on another day, as seen in `tz` at `now`.
pub fn local_text(at: DateTime<Utc>, now: DateTime<Utc>, tz: &TimeZone) -> String {
    let (Some(at), Some(now)) = (to_jiff(at), to_jiff(now)) else {
        return String::new();
    };
    let (at, now) = (
        at.to_zoned_datetime(tz.clone()),
        now.to_zoned_datetime(tz.clone()),
    );
    let time = format!("{:02}:{:02}", at.hour(), at.minute());
    if at.date() == now.date() {
        time
    } else {
        let day = weekday(at.date().weekday()).as_str();
        let mut day = day.to_owned();
        if let Some(first) = day.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        let apart = at.timestamp().as_second() - now.timestamp().as_second();
        if apart.abs() > 6 * 86_400 {
            format!("{} {time}", at.date())
        } else {
            format!("{day} {time}")
        }
    }
}

/// What retention does to a stopped space now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionStep {
    /// Nothing yet (and a warning given before its last use no longer holds).
    Wait,
    /// Warn its owner that it will be deleted.
    Warn,
    /// Delete it.
    Delete,
}

/// Retention's step for a space last used at `last_used` (its stop, start, creation or last
/// activity), warned at `warned_at`: warned `warning_days` before it has been unused for
/// `days`, deleted once both the `days` and the full warning have passed.
pub fn retention_step(
    now: DateTime<Utc>,
    last_used: DateTime<Utc>,
    days: i64,
    warning_days: i64,
    warned_at: Option<DateTime<Utc>>,
) -> RetentionStep {
    let expires = last_used + Duration::days(days);
    let warned = warned_at.filter(|w| *w >= last_used);
    match warned {
        None if now >= expires - Duration::days(warning_days) => RetentionStep::Warn,
        None => RetentionStep::Wait,
        Some(warned) if now >= expires.max(warned + Duration::days(warning_days)) => {
            RetentionStep::Delete
        }
        Some(_) => RetentionStep::Wait,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use app::api::autostop::ScheduleRule;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn daily(start: Option<&str>, stop: Option<&str>) -> Schedule {
        Schedule {
            rules: vec![ScheduleRule {
                days: Weekday::ALL.to_vec(),
                start: start.map(str::to_owned),
                stop: stop.map(str::to_owned),
            }],
        }
    }

    #[test]
    fn a_scheduled_stop_follows_the_owner_s_clock_across_the_spring_change() {
        let berlin = time_zone(Some("Europe/Berlin")).unwrap();
        let schedule = daily(Some("07:00"), Some("08:00"));
        // Saturday 28 March 2026, 08:00 CET is 07:00 UTC; Sunday 29 March (CEST) 06:00 UTC.
        assert_eq!(
            next_after(&schedule, &berlin, Edge::Stop, at("2026-03-28T00:00:00Z")),
            Some(at("2026-03-28T07:00:00Z"))
        );
        assert_eq!(
            next_after(&schedule, &berlin, Edge::Stop, at("2026-03-28T23:00:00Z")),
            Some(at("2026-03-29T06:00:00Z"))
        );
        assert_eq!(
            next_after(&schedule, &berlin, Edge::Start, at("2026-03-28T23:00:00Z")),
            Some(at("2026-03-29T05:00:00Z"))
        );
        // And back in October: Sunday 25 October 08:00 CET is 07:00 UTC.
        assert_eq!(
            next_after(&schedule, &berlin, Edge::Stop, at("2026-10-24T23:00:00Z")),
            Some(at("2026-10-25T07:00:00Z"))
        );
    }

    #[test]
    fn a_time_the_clock_skips_happens_as_it_jumps() {
        let berlin = time_zone(Some("Europe/Berlin")).unwrap();
        let schedule = daily(None, Some("02:30"));
        // 02:30 does not exist on 29 March 2026 in Berlin: 03:30 CEST, 01:30 UTC.
        assert_eq!(
            next_after(&schedule, &berlin, Edge::Stop, at("2026-03-28T23:00:00Z")),
            Some(at("2026-03-29T01:30:00Z"))
        );
    }

    #[test]
    fn only_the_chosen_days() {
        let schedule = Schedule {
            rules: vec![ScheduleRule {
                days: vec![Weekday::Mon],
                start: Some("09:00".into()),
                stop: None,
            }],
        };
        // Wednesday 2 December 2026: the next Monday is the 7th.
        assert_eq!(
            next_after(
                &schedule,
                &TimeZone::UTC,
                Edge::Start,
                at("2026-12-02T12:00:00Z")
            ),
            Some(at("2026-12-07T09:00:00Z"))
        );
        assert_eq!(
            next_after(
                &schedule,
                &TimeZone::UTC,
                Edge::Stop,
                at("2026-12-02T12:00:00Z")
            ),
            None
        );
        assert_eq!(
            last_between(
                &schedule,
                &TimeZone::UTC,
                Edge::Start,
                at("2026-12-06T00:00:00Z"),
                at("2026-12-07T10:00:00Z")
            ),
            Some(at("2026-12-07T09:00:00Z"))
        );
    }

    #[test]
    fn the_earliest_stop_wins_and_a_schedule_waits_for_quiet() {
        let none = Schedule::default();
        let started = at("2026-12-07T08:00:00Z");
        let base = Running {
            started_at: started,
            last_use: Some(at("2026-12-07T09:00:00Z")),
            idle_minutes: Some(30),
            max_run_minutes: Some(120),
            schedule: &none,
            tz: &TimeZone::UTC,
            warning: Duration::minutes(5),
        };
        assert_eq!(
            deadline(&base),
            Some((at("2026-12-07T09:30:00Z"), StopReason::Idle))
        );
        let busy = Running {
            last_use: Some(at("2026-12-07T09:50:00Z")),
            ..base
        };
        assert_eq!(
            deadline(&busy),
            Some((at("2026-12-07T10:00:00Z"), StopReason::LongestRun))
        );
        // Activity of an earlier run does not count.
        let stale = Running {
            last_use: Some(at("2026-12-06T09:00:00Z")),
            max_run_minutes: None,
            ..busy
        };
        assert_eq!(
            deadline(&stale),
            Some((at("2026-12-07T08:30:00Z"), StopReason::Idle))
        );
        let evening = daily(None, Some("18:00"));
        let scheduled = Running {
            idle_minutes: None,
            max_run_minutes: None,
            schedule: &evening,
            last_use: Some(at("2026-12-07T17:58:00Z")),
            ..stale
        };
        assert_eq!(
            deadline(&scheduled),
            Some((at("2026-12-07T18:03:00Z"), StopReason::Schedule))
        );
        assert_eq!(
            deadline(&Running {
                idle_minutes: None,
                max_run_minutes: None,
                ..stale
            }),
            None
        );
    }

    #[test]
    fn owners_never_go_above_the_template() {
        assert_eq!(effective_minutes(Some(30), Some(10), true), Some(10));
        assert_eq!(effective_minutes(Some(30), Some(60), true), Some(30));
        assert_eq!(effective_minutes(Some(30), Some(10), false), Some(30));
        assert_eq!(effective_minutes(None, Some(10), true), Some(10));
        assert_eq!(effective_minutes(None, None, true), None);
    }

    #[test]
    fn retention_warns_first_and_deletes_after_the_whole_warning() {
        let stopped = at("2026-01-01T00:00:00Z");
        let step = |now: &str, warned: Option<&str>| {
            retention_step(at(now), stopped, 30, 7, warned.map(at))
        };
        assert_eq!(step("2026-01-20T00:00:00Z", None), RetentionStep::Wait);
        assert_eq!(step("2026-01-25T00:00:00Z", None), RetentionStep::Warn);
        assert_eq!(
            step("2026-01-30T00:00:00Z", Some("2026-01-25T00:00:00Z")),
            RetentionStep::Wait
        );
        assert_eq!(
            step("2026-02-01T00:00:00Z", Some("2026-01-25T00:00:00Z")),
            RetentionStep::Delete
        );
        // Warned late (retention turned on later): a full warning still comes first.
        assert_eq!(
            step("2026-06-01T00:00:00Z", Some("2026-05-30T00:00:00Z")),
            RetentionStep::Wait
        );
        // Used after the warning: warned again before any deletion.
        assert_eq!(
            step("2026-06-01T00:00:00Z", Some("2025-12-30T00:00:00Z")),
            RetentionStep::Warn
        );
    }

    #[test]
    fn schedules_and_zones_are_checked() {
        assert!(check_schedule(&daily(Some("8:00"), None)).is_err());
        assert!(check_schedule(&daily(Some("24:00"), None)).is_err());
        assert!(check_schedule(&daily(None, None)).is_err());
        assert!(check_schedule(&daily(Some("08:00"), Some("18:30"))).is_ok());
        let mut repeated = daily(Some("08:00"), None);
        repeated.rules[0].days = Weekday::ALL.repeat(1000);
        assert!(check_schedule(&repeated).is_err());
        assert!(time_zone(Some("Europe/Nowhere")).is_err());
        assert!(time_zone(Some("America/New_York")).is_ok());
        let local = local_text(
            at("2026-12-07T17:40:00Z"),
            at("2026-12-07T12:00:00Z"),
            &time_zone(Some("Europe/Berlin")).unwrap(),
        );
        assert_eq!(local, "18:40");
    }
}
