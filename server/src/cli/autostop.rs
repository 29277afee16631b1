//! `hangar keepalive` and `hangar schedule`: keeping a space from its idle stop for an
//! unattended job, and a space's weekly schedule and automatic stops.

use app::api::autostop::{
    minutes_text, AutoStop, Schedule, SpaceAutostop, TimeZoneSetting, UpdateSpaceAutostop,
};
use clap::Args;
use reqwest::Method;

use super::client::{decode, Client};
use super::spaces::find_space;
use super::CliError;

#[derive(Debug, Args)]
pub struct KeepaliveArgs {
    /// The space: its name, `owner/name` for one shared with you, or its id.
    pub space: String,
    /// How long it counts as in use: `90m`, `2h`, `1h30m` (at most a day; run it again for
    /// longer). Without it: now only (its idle stop counts from now).
    #[arg(long = "for", value_parser = parse_minutes)]
    pub for_minutes: Option<i64>,
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// The space: its name, `owner/name` for one shared with you, or its id.
    pub space: String,
    /// Its weekly schedule, in your time zone: `mon-fri 08:00-18:00; sat -12:00` (a start,
    /// a stop or both per rule; days such as mon, sat,sun, mon-fri, daily, weekdays), or
    /// `none` for no schedule.
    #[arg(long)]
    pub set: Option<String>,
    /// Go back to the template's default schedule.
    #[arg(long, conflicts_with = "set")]
    pub default: bool,
    /// Its own idle stop (`30m`, `1h`), shorter than the template's where the template lets
    /// owners choose; `template` for the template's.
    #[arg(long, value_parser = parse_own_minutes)]
    pub idle_stop: Option<Own>,
    /// Its own longest run (`8h`), likewise.
    #[arg(long, value_parser = parse_own_minutes)]
    pub max_run: Option<Own>,
    /// Pin it (`true`) so that retention never deletes it, or unpin it (`false`).
    #[arg(long)]
    pub keep: Option<bool>,
    /// Your time zone (an IANA name such as Europe/Berlin), which all your schedules follow.
    #[arg(long)]
    pub time_zone: Option<String>,
}

/// An owner's own stop, or back to the template's.
#[derive(Debug, Clone, Copy)]
pub struct Own(Option<i64>);

fn parse_own_minutes(text: &str) -> Result<Own, String> {
    if text.eq_ignore_ascii_case("template") {
        return Ok(Own(None));
    }
    parse_minutes(text).map(|m| Own(Some(m)))
}

/// `90`, `90m`, `2h`, `1h30m` as minutes.
pub fn parse_minutes(text: &str) -> Result<i64, String> {
    let bad = || format!("`{text}` is not a duration: give e.g. 30m, 2h or 1h30m");
    let text = text.trim().to_ascii_lowercase();
    if let Ok(minutes) = text.parse::<i64>() {
        return Ok(minutes);
    }
    let (mut total, mut number) = (0i64, String::new());
    for c in text.chars() {
        match c {
            '0'..='9' => number.push(c),
            'h' | 'm' if !number.is_empty() => {
                let n: i64 = number.parse().map_err(|_| bad())?;
                total += if c == 'h' { n * 60 } else { n };
                number.clear();
            }
            _ => return Err(bad()),
        }
    }
    if !number.is_empty() || text.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

pub(super) async fn keepalive(client: &Client, args: KeepaliveArgs) -> Result<(), CliError> {
    let space = find_space(client, &args.space).await?;
    let body = serde_json::json!({ "for_minutes": args.for_minutes });
    let stop: Option<AutoStop> = decode(
        client
            .send(
                Method::POST,
                &format!("/api/v1/spaces/{}/keepalive", space.id),
                Some(&body),
            )
            .await?,
    )
    .await?;
    match stop {
        Some(stop) => outln!("{}: {}", args.space, stop.describe()),
        None => outln!("{}: no automatic stop", args.space),
    }
    Ok(())
}

pub(super) async fn schedule(client: &Client, args: ScheduleArgs) -> Result<(), CliError> {
    if let Some(zone) = &args.time_zone {
        let _: TimeZoneSetting = decode(
            client
                .send(
                    Method::PUT,
                    "/api/v1/me/time-zone",
                    Some(&TimeZoneSetting {
                        time_zone: Some(zone.clone()),
                    }),
                )
                .await?,
        )
        .await?;
    }
    let space = find_space(client, &args.space).await?;
    let path = format!("/api/v1/spaces/{}/autostop", space.id);
    let schedule = match (&args.set, args.default) {
        (Some(text), _) => Some(Some(Schedule::parse(text).map_err(CliError::usage)?)),
        (None, true) => Some(None),
        (None, false) => None,
    };
    let change = UpdateSpaceAutostop {
        idle_stop_minutes: args.idle_stop.map(|o| o.0),
        max_run_minutes: args.max_run.map(|o| o.0),
        schedule,
        keep: args.keep,
    };
    let settings: SpaceAutostop = if change == UpdateSpaceAutostop::default() {
        client.get(&path).await?
    } else {
        decode(client.send(Method::PATCH, &path, Some(&change)).await?).await?
    };
    let stop = |m: Option<i64>| m.map_or_else(|| "none".to_owned(), minutes_text);
    outln!(
        "schedule:    {}{} ({})",
        settings.schedule.describe(),
        if settings.schedule_from_template {
            " (the template's)"
        } else {
            ""
        },
        settings.time_zone
    );
    outln!("idle stop:   {}", stop(settings.idle_stop_minutes));
    outln!("longest run: {}", stop(settings.max_run_minutes));
    outln!("kept:        {}", if settings.keep { "yes" } else { "no" });
    if let Some(next) = &settings.next_start {
        outln!("next start:  {next}");
    }
    Ok(())
}
