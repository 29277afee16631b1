//! Automatic stops on the pages: a space's coming stop ("stops at 18:40 (idle 30 min)") with
//! "Keep running" once warned, its next scheduled start, why Hangar last stopped it, its last
//! activity, retention's warning; the schedule editor, the time zone and the retention form.

use leptos::prelude::*;

use super::widgets::{field_error, form_error, last_error, refreshing};
use crate::api::autostop::{
    keep_running, retention, set_retention, set_time_zone, update_space_autostop, Retention,
    Schedule, SpaceAutostop, UpdateSpaceAutostop,
};
use crate::api::spaces::SpaceDto;
use crate::components::time::RelativeTime;
use crate::error::{ApiError, ErrorCode};
use crate::ids::SpaceId;
use crate::live::Live;

/// How long "Keep running" keeps a space in use, in minutes.
const KEEP_RUNNING_MINUTES: i64 = 60;

/// The space's coming automatic stop or scheduled start, why Hangar last stopped it, and
/// retention's warning; "Keep running" once its users are warned.
#[component]
pub fn AutoStopLine(space: SpaceDto) -> impl IntoView {
    let live = Live::get();
    let keep = refreshing(
        live.spaces,
        Action::new(|id: &SpaceId| {
            let id = id.clone();
            async move { keep_running(id, Some(KEEP_RUNNING_MINUTES)).await }
        }),
    );
    let error = last_error(keep);
    let id = space.id.clone();
    let stop = space.autostop.clone().map(|stop| {
        let warned = stop.warned;
        let keepable = warned && stop.can_keep_running;
        let id = id.clone();
        view! {
            <p class=if warned { "autostop warn" } else { "autostop meta" } data-testid="autostop"
                data-at=stop.at.to_string() data-reason=stop.reason.as_str() data-warned=warned.to_string()
                role=warned.then_some("alert")>
                {stop.describe()}
                {keepable.then(|| view! {
                    " "
                    <button type="button" class="secondary" data-testid="keep-running"
                        disabled=move || keep.pending().get()
                        on:click=move |_| { keep.dispatch(id.clone()); }>"Keep running"</button>
                })}
                {(warned && !stop.can_keep_running).then_some(" — save your work: restart it to run again")}
            </p>
        }
    });
    let starts = space.starts_at.clone().map(
        |at| view! { <p class="meta" data-testid="starts-at">"starts at " {at} " (schedule)"</p> },
    );
    let note = space
        .auto_note
        .clone()
        .map(|note| view! { <p class="meta" data-testid="auto-note">{note}</p> });
    let deletes = space.deletes_at.clone().map(|at| {
        view! {
            <p class="warn" data-testid="deletes-at" role="alert">
                "Unused for long: retention deletes it " <RelativeTime at /> " unless it is started, used or kept (its schedule settings pin it)."
            </p>
        }
    });
    view! {
        {stop}
        {starts}
        {note}
        {deletes}
        {move || error().map(|e| view! { <p class="error small" role="alert">{e.message}</p> })}
    }
}

/// On every page: the caller's spaces (own or shared with them) that will soon stop by
/// themselves, as the live stream tells, each with "Keep running".
#[component]
pub fn StopWarnings() -> impl IntoView {
    let live = Live::get();
    let crate::CurrentUser(user) = expect_context::<crate::CurrentUser>();
    let mine = move || {
        let me = user.get().and_then(|r| r.ok().flatten()).map(|u| u.id)?;
        let warned: Vec<SpaceDto> = live
            .stop_warnings
            .get()
            .into_iter()
            .filter(|s| s.owner.id == me || s.shared_with_me)
            .collect();
        (!warned.is_empty()).then_some(warned)
    };
    view! {
        <Transition fallback=|| ()>
            {move || mine().map(|warned| view! {
                <div class="stop-warnings" data-testid="stop-warnings">
                    {warned.into_iter().map(|space| {
                        let (name, label) = (space.name.clone(), space.name.clone());
                        view! {
                            <div class="panel warn" data-testid="stop-warning" data-space=name>
                                <strong>{label}</strong>
                                <AutoStopLine space />
                            </div>
                        }
                    }).collect_view()}
                </div>
            })}
        </Transition>
    }
}

/// The last activity Hangar saw, for the space page's facts.
#[component]
pub fn LastSeen(space: SpaceDto) -> impl IntoView {
    match space.last_activity {
        Some(seen) => view! { <RelativeTime at=seen.at /> " (" {seen.kind.label()} ")" }.into_any(),
        None => "none seen yet".into_any(),
    }
}

/// A space's stops, schedule and retention pin (its owner and admins change them). `settings`
/// is made by the page, before the parts that read it.
#[component]
pub fn ScheduleEditor(
    space: SpaceDto,
    settings: Resource<Result<SpaceAutostop, ApiError>>,
    saved: RwSignal<u64>,
) -> impl IntoView {
    let can_manage = space.can_manage;
    view! {
        <section class="panel" data-testid="schedule">
            <h2>"Schedule and automatic stops"</h2>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || settings.get().map(|result| match result {
                    Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                    Ok(settings) => view! { <ScheduleForm settings can_manage saved /> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

fn minutes_field(m: Option<i64>) -> String {
    m.map(|m| m.to_string()).unwrap_or_default()
}

#[component]
fn ScheduleForm(settings: SpaceAutostop, can_manage: bool, saved: RwSignal<u64>) -> impl IntoView {
    let live = Live::get();
    let schedule = RwSignal::new(if settings.schedule_from_template {
        String::new()
    } else {
        settings.schedule.describe()
    });
    let idle = RwSignal::new(minutes_field(settings.own_idle_stop_minutes));
    let max_run = RwSignal::new(minutes_field(settings.own_max_run_minutes));
    let keep = RwSignal::new(settings.keep);
    let save = refreshing(
        live.spaces,
        Action::new(|(id, input): &(SpaceId, UpdateSpaceAutostop)| {
            let (id, input) = (id.clone(), input.clone());
            async move { update_space_autostop(id, input).await }
        }),
    );
    Effect::new(move |_| {
        if let Some(Ok(_)) = save.value().get() {
            saved.update(|n| *n += 1);
        }
    });
    let local_error = RwSignal::new(None::<ApiError>);
    let error = move || local_error.get().or_else(last_error(save));
    let may_change = settings.owners_may_change_stops;
    let id = settings.space_id.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let minutes = |text: String, field: &str| -> Result<Option<Option<i64>>, ApiError> {
            if !may_change {
                return Ok(None);
            }
            let text = text.trim().to_owned();
            if text.is_empty() {
                return Ok(Some(None));
            }
            text.parse().map(|m| Some(Some(m))).map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("`{text}` is not a whole number of minutes"),
                )
                .with_field(field)
            })
        };
        let text = schedule.get_untracked();
        let parsed = if text.trim().is_empty() {
            Ok(None)
        } else {
            Schedule::parse(&text)
                .map(Some)
                .map_err(|e| ApiError::new(ErrorCode::InvalidInput, e).with_field("schedule"))
        };
        let input = (|| {
            Ok::<_, ApiError>(UpdateSpaceAutostop {
                idle_stop_minutes: minutes(idle.get_untracked(), "idle_stop_minutes")?,
                max_run_minutes: minutes(max_run.get_untracked(), "max_run_minutes")?,
                schedule: Some(parsed?),
                keep: Some(keep.get_untracked()),
            })
        })();
        match input {
            Ok(input) => {
                local_error.set(None);
                save.dispatch((id.clone(), input));
            }
            Err(e) => local_error.set(Some(e)),
        }
    };
    let stop_text =
        |m: Option<i64>| m.map_or_else(|| "none".to_owned(), crate::api::autostop::minutes_text);
    let facts = format!(
        "Idle stop: {} · longest run: {} · times in {}{}",
        stop_text(settings.idle_stop_minutes),
        stop_text(settings.max_run_minutes),
        settings.time_zone,
        if settings.schedule_from_template && !settings.schedule.rules.is_empty() {
            format!(
                " · the template's schedule: {}",
                settings.schedule.describe()
            )
        } else {
            String::new()
        }
    );
    view! {
        <p class="hint" data-testid="stops">{facts}</p>
        {can_manage.then(|| view! {
            <form class="stack edit" on:submit=submit data-testid="schedule-form">
                <label><span>"Weekly schedule (e.g. " <code>"mon-fri 08:00-18:00; sat -12:00"</code> "; empty: the template's)"</span>
                    <input type="text" data-testid="schedule-text" bind:value=schedule />{field_error(error, "schedule")}</label>
                {may_change.then(|| view! {
                    <div class="row">
                        <label>"Own idle stop (minutes; empty: the template's)" <input type="text" inputmode="numeric" bind:value=idle />{field_error(error, "idle_stop_minutes")}</label>
                        <label>"Own longest run (minutes)" <input type="text" inputmode="numeric" bind:value=max_run />{field_error(error, "max_run_minutes")}</label>
                    </div>
                })}
                <label class="check"><input type="checkbox" data-testid="keep" bind:checked=keep />" Keep: retention never deletes it"</label>
                {form_error(error, &["schedule", "idle_stop_minutes", "max_run_minutes"])}
                {move || matches!(save.value().get(), Some(Ok(_))).then(|| view! { <p class="ok" role="status">"Saved."</p> })}
                <button type="submit" class="primary" disabled=move || save.pending().get()>"Save"</button>
            </form>
        })}
        <p class="hint">"What counts as use: typing or output in a terminal or SSH session, traffic through an SSH forward, the apps (requests and WebSocket frames, VS Code and the desktop included), public links, file transfers and " <code>"hangar keepalive"</code> ". Looking at Hangar's pages does not."</p>
    }
}

/// The signed-in user's time zone, which their schedules follow.
#[component]
pub fn TimeZoneForm(current: Option<String>) -> impl IntoView {
    let zone = RwSignal::new(current.clone().unwrap_or_default());
    // Unset: suggest the browser's own zone once the page runs.
    #[cfg(feature = "hydrate")]
    if current.is_none() {
        let options =
            js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new())
                .resolved_options();
        if let Some(found) = js_sys::Reflect::get(&options, &"timeZone".into())
            .ok()
            .and_then(|v| v.as_string())
        {
            zone.set(found);
        }
    }
    let save = Action::new(|zone: &Option<String>| {
        let zone = zone.clone();
        async move { set_time_zone(zone).await }
    });
    let error = last_error(save);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = zone.get_untracked().trim().to_owned();
        save.dispatch((!text.is_empty()).then_some(text));
    };
    view! {
        <section class="panel">
            <h2>"Time zone"</h2>
            <form class="row" on:submit=submit data-testid="time-zone-form">
                <label>"IANA time zone (your spaces' schedules follow it; empty: UTC)"
                    <input type="text" data-testid="time-zone" bind:value=zone placeholder="Europe/Berlin" />
                    {field_error(error, "time_zone")}</label>
                <button type="submit" class="primary" disabled=move || save.pending().get()>"Save"</button>
            </form>
            {form_error(error, &["time_zone"])}
            {move || matches!(save.value().get(), Some(Ok(()))).then(|| view! { <p class="ok" role="status">"Saved."</p> })}
        </section>
    }
}

/// The installation's retention of stopped spaces (admins).
#[component]
pub fn RetentionForm() -> impl IntoView {
    let current = Resource::new(|| (), |_| retention());
    view! {
        <section class="panel">
            <h2>"Retention of stopped spaces"</h2>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || current.get().map(|result| match result {
                    Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                    Ok(now) => view! { <RetentionFields now /> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn RetentionFields(now: Retention) -> impl IntoView {
    let days = RwSignal::new(minutes_field(now.days));
    let warning = RwSignal::new(now.warning_days.to_string());
    let save = Action::new(|input: &Retention| {
        let input = input.clone();
        async move { set_retention(input).await }
    });
    let local_error = RwSignal::new(None::<ApiError>);
    let error = move || local_error.get().or_else(last_error(save));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let number = |text: String, field: &str| -> Result<Option<i64>, ApiError> {
            let text = text.trim().to_owned();
            if text.is_empty() {
                return Ok(None);
            }
            text.parse().map(Some).map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("`{text}` is not a whole number of days"),
                )
                .with_field(field)
            })
        };
        let input = number(days.get_untracked(), "days").and_then(|days| {
            Ok(Retention {
                days,
                warning_days: number(warning.get_untracked(), "warning_days")?.unwrap_or(7),
            })
        });
        match input {
            Ok(input) => {
                local_error.set(None);
                save.dispatch(input);
            }
            Err(e) => local_error.set(Some(e)),
        }
    };
    view! {
        <form class="row" on:submit=submit data-testid="retention-form">
            <label>"Delete spaces stopped and unused for (days; empty: never)" <input type="text" inputmode="numeric" bind:value=days />{field_error(error, "days")}</label>
            <label>"Warn their owners this many days before" <input type="text" inputmode="numeric" bind:value=warning />{field_error(error, "warning_days")}</label>
            <button type="submit" class="primary" disabled=move || save.pending().get()>"Save"</button>
        </form>
        <p class="hint">"Spaces pinned " <em>"keep"</em> " are never deleted, nor one used, started or kept alive since."</p>
        {form_error(error, &["days", "warning_days"])}
        {move || matches!(save.value().get(), Some(Ok(_))).then(|| view! { <p class="ok" role="status">"Saved."</p> })}
    }
}
