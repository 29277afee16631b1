//! Small pieces the pages share: quota bars, error messages, confirmations, state badges.

use leptos::prelude::*;

use crate::api::quota::{QuotaReport, QuotaValues};
use crate::components::size::{bytes_text, exact_bytes};
use crate::error::ApiError;
use crate::lifecycle::SpaceState;

/// One quota dimension as a bar: used of quota, marked when over.
#[component]
pub fn QuotaBar(
    label: &'static str,
    unit: &'static str,
    used: i64,
    quota: Option<i64>,
    /// Usage after a planned action, drawn as a lighter extension of the bar.
    #[prop(optional)]
    planned: Option<i64>,
) -> impl IntoView {
    let over = quota.is_some_and(|q| used > q);
    let planned_over = matches!((planned, quota), (Some(p), Some(q)) if p > q);
    let percent = |value: i64| match quota {
        Some(q) if q > 0 => (value as f64 / q as f64 * 100.0).clamp(0.0, 100.0),
        Some(_) if value > 0 => 100.0,
        Some(_) | None => 0.0,
    };
    let text = match (quota, planned) {
        (Some(q), Some(p)) => format!("{used} → {p} of {q}{unit}"),
        (Some(q), None) => format!("{used} of {q}{unit}"),
        (None, Some(p)) => format!("{used} → {p}{unit} (unlimited)"),
        (None, None) => format!("{used}{unit} (unlimited)"),
    };
    let class = if over || planned_over {
        "quota-bar over"
    } else {
        "quota-bar"
    };
    view! {
        <div class=class data-testid=format!("quota-{}", label.to_lowercase()) data-used=used
            data-quota=quota.map(|q| q.to_string()).unwrap_or_else(|| "unlimited".into())>
            <div class="quota-label">
                <span>{label}</span>
                <span class="quota-figures" data-testid="quota-figures">{text}</span>
            </div>
            <div class="bar" role="meter" aria-label=label aria-valuenow=used
                aria-valuemax=quota.map(|q| q.to_string())>
                {planned.map(|p| view! { <div class="fill planned" style=format!("width:{}%", percent(p))></div> })}
                <div class="fill" style=format!("width:{}%", percent(used))></div>
            </div>
            {over.then(|| view! { <p class="error small">"Over quota: stop or delete spaces, or ask your administrator."</p> })}
        </div>
    }
}

/// What the volumes of the report's spaces hold on disk against their declared size.
fn disk_use(report: &QuotaReport) -> String {
    let declared = report.usage.storage_units;
    match report.storage_used_bytes {
        Some(0) if declared == 0 => "No volumes yet".into(),
        Some(used) => format!("{} used of {declared} GiB on disk", bytes_text(used as f64)),
        None => "Disk use is not measured on this host (volume sizes are not enforced)".into(),
    }
}

/// The bars of a quota report.
#[component]
pub fn QuotaBars(report: QuotaReport) -> impl IntoView {
    let disk = disk_use(&report);
    view! {
        <div class="quota-bars" data-testid="quota-bars" data-over=report.over_quota.to_string()>
            <QuotaBar label="Spaces" unit="" used=report.usage.spaces quota=report.quota.max_spaces />
            <QuotaBar label="Compute" unit=" CU" used=report.usage.compute_units quota=report.quota.compute_units />
            <QuotaBar label="Storage" unit=" SU" used=report.usage.storage_units quota=report.quota.storage_units />
            <QuotaBar label="Tunnels" unit="" used=report.usage.tunnels quota=report.quota.max_tunnels />
            <p class="hint small" data-testid="disk-use"
                data-used=report.storage_used_bytes.map(|b| b.to_string())
                title=report.storage_used_bytes.map(|b| format!("{} used", exact_bytes(b.max(0) as u64)))>{disk}</p>
        </div>
    }
}

/// Where each part of an effective quota comes from.
#[component]
pub fn QuotaBreakdown(report: QuotaReport) -> impl IntoView {
    let show = |v: Option<i64>| {
        v.map(|v| v.to_string())
            .unwrap_or_else(|| "unlimited".into())
    };
    view! {
        <table class="breakdown">
            <thead><tr><th>"Source"</th><th>"Spaces"</th><th>"CU"</th><th>"SU"</th><th>"Tunnels"</th></tr></thead>
            <tbody>
                {report.breakdown.into_iter().map(|s| view! {
                    <tr><td>{s.source}</td><td>{show(s.max_spaces)}</td><td>{show(s.compute_units)}</td><td>{show(s.storage_units)}</td><td>{show(s.max_tunnels)}</td></tr>
                }).collect_view()}
                <tr class="total"><td>"Effective"</td><td>{show(report.quota.max_spaces)}</td><td>{show(report.quota.compute_units)}</td><td>{show(report.quota.storage_units)}</td><td>{show(report.quota.max_tunnels)}</td></tr>
            </tbody>
        </table>
    }
}

/// The message of an error about one input field, shown next to it.
pub fn field_error(
    error: impl Fn() -> Option<ApiError> + Send + Sync + 'static,
    field: &'static str,
) -> impl IntoView {
    move || {
        error()
            .filter(|e| e.field.as_deref() == Some(field))
            .map(|e| view! { <span class="field-error" role="alert" data-field=field>{e.message}</span> })
    }
}

/// An error not about one field (or about a field the form does not show), above the form.
pub fn form_error(
    error: impl Fn() -> Option<ApiError> + Send + Sync + 'static,
    fields: &'static [&'static str],
) -> impl IntoView {
    move || {
        error()
            .filter(|e| !e.field.as_deref().is_some_and(|f| fields.contains(&f)))
            .map(|e| view! { <p class="error" role="alert" data-testid="form-error">{e.message}</p> })
    }
}

/// The error of an action's last result, if it failed.
pub fn last_error<T: Clone + Send + Sync + 'static, I: 'static>(
    action: Action<I, Result<T, ApiError>>,
) -> impl Fn() -> Option<ApiError> + Copy + Send + Sync + 'static {
    move || action.value().get().and_then(|r| r.err())
}

/// `action`, after each of whose completions `changed` moves, so the lists showing what it
/// changed fetch again.
pub fn refreshing<I, O>(changed: RwSignal<u64>, action: Action<I, O>) -> Action<I, O>
where
    I: Send + Sync + 'static,
    O: Send + Sync + 'static,
{
    Effect::new(move |_| {
        if action.version().get() > 0 {
            changed.update(|n| *n += 1);
        }
    });
    action
}

/// A button for a destructive action that asks once more before acting.
#[component]
pub fn ConfirmButton(
    label: &'static str,
    /// The question, e.g. `Delete space "api"? Its volumes are removed.`
    question: String,
    on_confirm: Callback<()>,
    #[prop(optional)] testid: &'static str,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    view! {
        <Show
            when=move || asking.get()
            fallback=move || view! {
                <button type="button" class="danger" data-testid=testid on:click=move |_| asking.set(true)>{label}</button>
            }
        >
            <span class="confirm" role="group">
                <span>{question.clone()}</span>
                <button type="button" class="danger" data-testid=format!("{testid}-confirm")
                    on:click=move |_| { asking.set(false); on_confirm.run(()); }>"Yes, " {label.to_lowercase()}</button>
                <button type="button" class="secondary" on:click=move |_| asking.set(false)>"Cancel"</button>
            </span>
        </Show>
    }
}

/// A space's state, with progress shown while it moves.
#[component]
pub fn StateBadge(state: SpaceState) -> impl IntoView {
    let moving = state.is_moving();
    view! {
        <span class=format!("state {state}") data-testid="space-state" aria-busy=moving.to_string()>
            {moving.then(|| view! { <span class="spinner" aria-hidden="true"></span> })}
            {state.as_str()}
        </span>
    }
}

/// The quota fields of a form, as typed (blank: unlimited), and the one that was not a
/// number when last read.
#[derive(Clone, Copy)]
pub struct QuotaInputs {
    spaces: RwSignal<String>,
    compute: RwSignal<String>,
    storage: RwSignal<String>,
    tunnels: RwSignal<String>,
    typo: RwSignal<Option<ApiError>>,
}

impl QuotaInputs {
    pub fn new(
        spaces: Option<i64>,
        compute: Option<i64>,
        storage: Option<i64>,
        tunnels: Option<i64>,
    ) -> Self {
        Self {
            spaces: RwSignal::new(limit_text(spaces)),
            compute: RwSignal::new(limit_text(compute)),
            storage: RwSignal::new(limit_text(storage)),
            tunnels: RwSignal::new(limit_text(tunnels)),
            typo: RwSignal::new(None),
        }
    }

    /// The values, or `None` while a field is not a number: [`Self::typo`] then names it.
    pub fn read(&self) -> Option<QuotaValues> {
        match self.parse() {
            Ok(values) => {
                self.typo.set(None);
                Some(values)
            }
            Err(e) => {
                self.typo.set(Some(e));
                None
            }
        }
    }

    /// The field that was not a number at the last read, with what is wrong.
    pub fn typo(&self) -> Option<ApiError> {
        self.typo.get()
    }

    fn parse(&self) -> Result<QuotaValues, ApiError> {
        Ok(QuotaValues {
            max_spaces: parse_limit("max_spaces", &self.spaces.get_untracked())?,
            compute_units: parse_limit("compute_units", &self.compute.get_untracked())?,
            storage_units: parse_limit("storage_units", &self.storage.get_untracked())?,
            max_tunnels: parse_limit("max_tunnels", &self.tunnels.get_untracked())?,
        })
    }
}

/// The quota inputs with their messages; `testid` prefixes the inputs' test ids.
#[component]
pub fn QuotaFields(
    inputs: QuotaInputs,
    error: Signal<Option<ApiError>>,
    testid: &'static str,
) -> impl IntoView {
    let error = move || error.get();
    view! {
        <label>"Spaces" <input type="text" inputmode="numeric" data-testid=format!("{testid}-spaces") bind:value=inputs.spaces />{field_error(error, "max_spaces")}</label>
        <label>"Compute units" <input type="text" inputmode="numeric" data-testid=format!("{testid}-cu") bind:value=inputs.compute />{field_error(error, "compute_units")}</label>
        <label>"Storage units" <input type="text" inputmode="numeric" data-testid=format!("{testid}-su") bind:value=inputs.storage />{field_error(error, "storage_units")}</label>
        <label>"Tunnels" <input type="text" inputmode="numeric" data-testid=format!("{testid}-tunnels") bind:value=inputs.tunnels />{field_error(error, "max_tunnels")}</label>
    }
}

/// Parses a quota field: blank is unlimited, otherwise a whole number ≥ 0.
pub fn parse_limit(field: &'static str, text: &str) -> Result<Option<i64>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(Some(n)),
        _ => Err(ApiError::new(
            crate::error::ErrorCode::InvalidInput,
            format!("`{text}` is not a whole number ≥ 0: leave it blank for unlimited"),
        )
        .with_field(field)),
    }
}

/// The text a quota field starts with.
pub fn limit_text(value: Option<i64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}
