//! The space page's charts of what the space used: CPU against its compute units, memory
//! against its limit, processes; an hour, a day or 90 days; small SVG lines drawn by the same
//! code on the server and in the browser (no chart library), refreshed every minute.

use leptos::prelude::*;

use crate::api::usage::{polyline, SpaceUsage, UsageRange};
use crate::components::size::bytes_text;
use crate::error::ApiError;

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
    view! {
        <div class="usage-charts">
            {chart("CPU", cpus, cpu_top, cpu_now)}
            {chart("Memory", memory, memory_top, memory_now)}
            {chart("Processes", pids, pids_top, pids_now)}
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
