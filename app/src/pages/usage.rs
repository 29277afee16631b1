//! The space page's charts of what the space used: CPU against its compute units, memory
//! against its limit, processes, disk against its volumes' size (where it is measured); and
//! quota use over time (a user's, a group's members'); an hour, a day or 90 days; small SVG lines drawn by the same
//! code on the server and in the browser (no chart library), refreshed every minute.

use leptos::prelude::*;

use crate::api::usage::{
    group_quota_usage, my_quota_usage, polyline, user_quota_usage, QuotaUsage, SpaceUsage,
    UsageRange,
};
use crate::components::size::bytes_text;
use crate::error::ApiError;
use crate::ids::{GroupId, UserId};

const WIDTH: f64 = 320.0;
const HEIGHT: f64 = 60.0;

/// What the page keeps of the charts: the range shown and a tick that refetches them.
#[derive(Clone, Copy)]
pub struct UsageState {
    pub range: RwSignal<UsageRange>,
    pub tick: RwSignal<u64>,
}

impl UsageState {
    /// Refetched every minute in the browser.
    pub fn new() -> Self {
        let state = Self {
            range: RwSignal::new(UsageRange::Hour),
            tick: RwSignal::new(0),
        };
        #[cfg(feature = "hydrate")]
        {
            let tick = state.tick;
            if let Ok(handle) = set_interval_with_handle(
                move || tick.update(|t| *t += 1),
                std::time::Duration::from_secs(60),
            ) {
                on_cleanup(move || handle.clear());
            }
        }
        state
    }
}

impl Default for UsageState {
    fn default() -> Self {
        Self::new()
    }
}

fn chart(name: &'static str, values: Vec<f64>, top: f64, now: String) -> impl IntoView {
    let points = polyline(&values, top, WIDTH, HEIGHT);
    view! {
        <figure class="usage-chart" data-testid=format!("usage-{name}")>
            <figcaption><strong>{name}</strong> " " <span data-testid="usage-now">{now}</span></figcaption>
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") width=WIDTH height=HEIGHT role="img" aria-label=name preserveAspectRatio="none">
                <rect x="0" y="0" width=WIDTH height=HEIGHT class="usage-frame" />
                <polyline points=points class="usage-line" fill="none" />
            </svg>
        </figure>
    }
}

fn charts(usage: SpaceUsage) -> impl IntoView {
    if usage.points.is_empty() {
        return view! { <p class="empty" data-testid="usage-empty">"No points yet: Hangar samples a running space every minute."</p> }.into_any();
    }
    let last = usage.points.last().cloned();
    let cpus: Vec<f64> = usage.points.iter().map(|p| p.cpus).collect();
    let memory: Vec<f64> = usage.points.iter().map(|p| p.memory_bytes as f64).collect();
    let pids: Vec<f64> = usage.points.iter().map(|p| p.pids as f64).collect();
    let highest = |values: &[f64]| values.iter().copied().fold(0.0_f64, f64::max);
    let cpu_top = usage.cpu_limit.unwrap_or_else(|| highest(&cpus).max(1.0));
    let memory_top = usage
        .memory_limit_bytes
        .map(|l| l as f64)
        .unwrap_or_else(|| highest(&memory).max(1.0));
    let pids_top = highest(&pids).max(10.0) * 1.2;
    let (cpu_now, memory_now, pids_now) = match &last {
        Some(p) => (
            match usage.cpu_limit {
                Some(limit) => format!("{:.2} of {limit} CPUs", p.cpus),
                None => format!("{:.2} CPUs", p.cpus),
            },
            match usage.memory_limit_bytes {
                Some(limit) => format!(
                    "{} of {}",
                    bytes_text(p.memory_bytes as f64),
                    bytes_text(limit as f64)
                ),
                None => bytes_text(p.memory_bytes as f64),
            },
            p.pids.to_string(),
        ),
        None => Default::default(),
    };
    // Disk only where it is measured (sized volumes on an engine that enforces their size).
    let disk = usage.disk_limit_bytes.filter(|l| *l > 0).map(|limit| {
        let used: Vec<f64> = usage
            .points
            .iter()
            .map(|p| p.disk_bytes.unwrap_or(0) as f64)
            .collect();
        let now = last
            .as_ref()
            .and_then(|p| p.disk_bytes)
            .map(|b| format!("{} of {}", bytes_text(b as f64), bytes_text(limit as f64)))
            .unwrap_or_default();
        chart("Disk", used, limit as f64, now)
    });
    view! {
        <div class="usage-charts">
            {chart("CPU", cpus, cpu_top, cpu_now)}
            {chart("Memory", memory, memory_top, memory_now)}
            {chart("Processes", pids, pids_top, pids_now)}
            {disk}
        </div>
    }
    .into_any()
}

/// The space's usage over the chosen range.
#[component]
pub fn UsagePanel(
    usage: Resource<Result<SpaceUsage, ApiError>>,
    state: UsageState,
) -> impl IntoView {
    let choice = move |range: UsageRange, label: &'static str| {
        view! {
            <button type="button" class="secondary"
                aria-pressed=move || (state.range.get() == range).to_string()
                on:click=move |_| state.range.set(range)>{label}</button>
        }
    };
    view! {
        <section class="panel" data-testid="usage">
            <h2>"Usage"</h2>
            <p class="row">{choice(UsageRange::Hour, "Last hour")}{choice(UsageRange::Day, "Last day")}{choice(UsageRange::Quarter, "90 days")}</p>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || usage.get().map(|result| match result {
                    Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                    Ok(usage) => charts(usage).into_any(),
                })}
            </Transition>
        </section>
    }
}

/// Whose quota use a [`QuotaUsagePanel`] charts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaOf {
    /// The signed-in user's own.
    Me,
    /// A user's (admins).
    User(UserId),
    /// A group's members' together (admins).
    Group(GroupId),
}

fn quota_charts(usage: QuotaUsage) -> impl IntoView {
    if usage.points.is_empty() {
        return view! { <p class="empty" data-testid="quota-usage-empty">"No points yet: Hangar records quota use every minute while there are spaces."</p> }.into_any();
    }
    let series = |values: Vec<i64>, quota: Option<i64>, name: &'static str, unit: &'static str| {
        let highest = values.iter().copied().max().unwrap_or(0);
        let top = quota
            .filter(|q| *q > 0)
            .unwrap_or(highest.max(1))
            .max(highest) as f64;
        let said = match quota {
            Some(quota) => format!("highest {highest}{unit} of {quota}{unit}"),
            None => format!("highest {highest}{unit} (no limit)"),
        };
        chart(
            name,
            values.into_iter().map(|v| v as f64).collect(),
            top,
            said,
        )
    };
    let spaces = usage.points.iter().map(|p| p.spaces).collect();
    let compute = usage.points.iter().map(|p| p.compute_units).collect();
    let storage = usage.points.iter().map(|p| p.storage_units).collect();
    view! {
        <div class="usage-charts">
            {series(spaces, usage.quota.max_spaces, "Spaces", "")}
            {series(compute, usage.quota.compute_units, "Compute", " CU")}
            {series(storage, usage.quota.storage_units, "Storage", " SU")}
        </div>
    }
    .into_any()
}

/// Quota use over time: spaces, compute units running and storage units, against the quota
/// (a user's effective quota, or a group's contribution), over an hour, a day or 90 days.
#[component]
pub fn QuotaUsagePanel(of: QuotaOf) -> impl IntoView {
    let range = RwSignal::new(UsageRange::Day);
    let usage = Resource::new(
        move || range.get(),
        move |range| {
            let of = of.clone();
            async move {
                match of {
                    QuotaOf::Me => my_quota_usage(range).await,
                    QuotaOf::User(id) => user_quota_usage(id, range).await,
                    QuotaOf::Group(id) => group_quota_usage(id, range).await,
                }
            }
        },
    );
    let choice = move |choice: UsageRange, label: &'static str| {
        view! {
            <button type="button" class="secondary"
                aria-pressed=move || (range.get() == choice).to_string()
                on:click=move |_| range.set(choice)>{label}</button>
        }
    };
    view! {
        <div data-testid="quota-usage">
            <p class="row">{choice(UsageRange::Hour, "Last hour")}{choice(UsageRange::Day, "Last day")}{choice(UsageRange::Quarter, "90 days")}</p>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || usage.get().map(|result| match result {
                    Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                    Ok(usage) => quota_charts(usage).into_any(),
                })}
            </Transition>
        </div>
    }
}

/// A [`QuotaUsagePanel`] behind a disclosure: fetched once first opened, so that a page listing
/// many users or groups asks for none until one is looked at.
#[component]
pub fn QuotaUsageDetails(of: QuotaOf, summary: &'static str) -> impl IntoView {
    let opened = RwSignal::new(false);
    view! {
        <details data-testid="quota-usage-details" on:toggle=move |_| opened.set(true)>
            <summary>{summary}</summary>
            <Show when=move || opened.get()>
                <QuotaUsagePanel of=of.clone() />
            </Show>
        </details>
    }
}
