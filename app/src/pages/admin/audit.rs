//! Admin: the audit log, newest first, filterable and paged.

use leptos::prelude::*;

use super::AdminOnly;
use crate::api::spaces::{audit_log, AuditFilter};
use crate::components::time::{parse_millis, RelativeTime};
use crate::time::Timestamp;

const PAGE: u64 = 50;

#[component]
pub fn AuditPage() -> impl IntoView {
    view! { <AdminOnly page=|| view! { <Audit /> } /> }
}

/// An event's details as `key: value` pairs (times as relative times); other shapes as JSON.
fn details_view(details: serde_json::Value) -> AnyView {
    let serde_json::Value::Object(fields) = details else {
        return match details {
            serde_json::Value::Null => ().into_any(),
            other => view! { <code>{other.to_string()}</code> }.into_any(),
        };
    };
    fields
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(key, value)| {
            let shown = match value {
                serde_json::Value::String(text) if parse_millis(&text).is_some() => {
                    let at: Option<Timestamp> =
                        serde_json::from_value(serde_json::Value::String(text)).ok();
                    view! { <RelativeTime at /> }.into_any()
                }
                serde_json::Value::String(text) => view! { <code>{text}</code> }.into_any(),
                other => view! { <code>{other.to_string()}</code> }.into_any(),
            };
            view! { <span class="detail">{key} ": " {shown}</span> " " }
        })
        .collect_view()
        .into_any()
}

fn text(value: String) -> Option<String> {
    let value = value.trim().to_owned();
    (!value.is_empty()).then_some(value)
}

#[component]
fn Audit() -> impl IntoView {
    let action = RwSignal::new(String::new());
    let actor = RwSignal::new(String::new());
    let target = RwSignal::new(String::new());
    let outcome = RwSignal::new(String::new());
    // The filter applied, and the pages walked through (each the id to continue before).
    let applied = RwSignal::new(AuditFilter {
        limit: Some(PAGE),
        ..Default::default()
    });
    let pages = RwSignal::new(Vec::<i64>::new());
    let events = Resource::new(
        move || (applied.get(), pages.get().last().copied()),
        |(filter, before)| audit_log(AuditFilter { before, ..filter }),
    );
    let apply = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        pages.set(Vec::new());
        applied.set(AuditFilter {
            action: text(action.get_untracked()),
            actor: text(actor.get_untracked()),
            target: text(target.get_untracked()),
            outcome: text(outcome.get_untracked()),
            before: None,
            limit: Some(PAGE),
        });
    };
    view! {
        <section class="panel">
            <h1>"Audit log"</h1>
            <form class="row filters" on:submit=apply data-testid="audit-filter">
                <label>"Action" <input type="text" bind:value=action placeholder="space.start" /></label>
                <label>"Actor" <input type="text" bind:value=actor placeholder="username" /></label>
                <label>"Target contains" <input type="text" bind:value=target placeholder="space:alice/api" /></label>
                <label>"Outcome"
                    <select on:change=move |ev| outcome.set(event_target_value(&ev))>
                        <option value="">"any"</option>
                        <option value="success">"success"</option>
                        <option value="refused">"refused"</option>
                        <option value="failed">"failed"</option>
                    </select>
                </label>
                <button type="submit" class="primary">"Filter"</button>
            </form>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || events.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No events match."</p> }.into_any(),
                    Ok(list) => {
                        let oldest = list.last().map(|e| e.id);
                        let full = list.len() as u64 == PAGE;
                        view! {
                            <table class="list" data-testid="audit">
                                <thead><tr><th>"When"</th><th>"Actor"</th><th>"Action"</th><th>"Target"</th><th>"Outcome"</th><th>"Details"</th></tr></thead>
                                <tbody>{list.into_iter().map(|e| view! {
                                    <tr><td><RelativeTime at=e.at /></td><td>{e.actor}</td><td>{e.action}</td><td>{e.target}</td>
                                        <td class=format!("outcome {}", e.outcome)>{e.outcome.clone()}</td>
                                        <td class="details">{details_view(e.details)}</td></tr>
                                }).collect_view()}</tbody>
                            </table>
                            <div class="actions">
                                <button type="button" class="secondary" disabled=move || pages.with(|p| p.is_empty())
                                    on:click=move |_| pages.update(|p| { p.pop(); })>"Newer"</button>
                                <button type="button" class="secondary" disabled=!full
                                    on:click=move |_| if let Some(id) = oldest { pages.update(|p| p.push(id)); }>"Older"</button>
                            </div>
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}
