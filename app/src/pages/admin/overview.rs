//! Admin: the overview `/admin` opens on: machines and what they hold, who runs what, idle
//! spaces, users near their quotas, the latest failures and what the host enforces; each
//! figure links to the page that acts on it.

use leptos::prelude::*;

use super::AdminOnly;
use crate::api::overview::{admin_overview, AdminOverview};
use crate::components::time::RelativeTime;

#[component]
pub fn OverviewPage() -> impl IntoView {
    view! { <AdminOnly page=|| view! { <Overview /> } /> }
}

#[component]
fn Overview() -> impl IntoView {
    let overview = Resource::new(|| (), |_| admin_overview());
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || overview.get().map(|result| match result {
                Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                Ok(o) => sections(o).into_any(),
            })}
        </Transition>
    }
}

fn sections(o: AdminOverview) -> impl IntoView {
    let nodes = o.nodes.clone();
    view! {
        <section class="panel" data-testid="overview">
            <h1>"Overview"</h1>
            <p data-testid="overview-running">
                <a href="/admin/spaces"><strong>{o.running_spaces}</strong>" running spaces"</a>
                ", " <strong>{o.running_compute_units}</strong> " compute units in use"
            </p>
        </section>
        <section class="panel" data-testid="overview-nodes">
            <h2>"Machines"</h2>
            {o.nodes_note.clone().map(|n| view! { <p class="error">{n}</p> })}
            <table class="list">
                <thead><tr><th>"Machine"</th><th>"Role"</th><th>"Compute units"</th><th>"Spaces running"</th><th></th></tr></thead>
                <tbody>{nodes.into_iter().map(|n| view! {
                    <tr data-node=n.name.clone()>
                        <td><a href="/admin/spaces">{n.name.clone()}</a></td>
                        <td>{n.role.clone()}</td>
                        <td>{format!("{} reserved of {}", n.reserved_cu, n.capacity_cu)}
                            {(n.reserved_cu > n.capacity_cu).then(|| view! { <span class="hint">" (overcommitted)"</span> })}</td>
                        <td>{n.spaces.len()}</td>
                        <td>{n.problem.clone().map(|p| view! { <span class="error">{p}</span> })}</td>
                    </tr>
                }).collect_view()}</tbody>
            </table>
        </section>
        <section class="panel" data-testid="overview-owners">
            <h2>"Who runs what"</h2>
            {if o.by_owner.is_empty() {
                view! { <p class="empty">"Nothing runs."</p> }.into_any()
            } else {
                view! {
                    <table class="list"><thead><tr><th>"User"</th><th>"Running spaces"</th><th>"Compute units"</th></tr></thead>
                    <tbody>{o.by_owner.clone().into_iter().map(|r| view! {
                        <tr><td><a href="/admin/users">{r.user.display_name.clone()}</a> " (" {r.user.username.clone()} ")"</td>
                            <td>{r.spaces}</td><td>{r.compute_units}</td></tr>
                    }).collect_view()}</tbody></table>
                }.into_any()
            }}
        </section>
        <section class="panel" data-testid="overview-idle">
            <h2>"Idle for an hour or more"</h2>
            {if o.idle.is_empty() {
                view! { <p class="empty">"No running space has been idle for an hour."</p> }.into_any()
            } else {
                view! {
                    <table class="list"><thead><tr><th>"Space"</th><th>"Owner"</th><th>"Compute units"</th><th>"Last used"</th></tr></thead>
                    <tbody>{o.idle.clone().into_iter().map(|s| view! {
                        <tr><td><a href=format!("/spaces/{}", s.id)>{s.name.clone()}</a></td>
                            <td>{s.owner.username.clone()}</td><td>{s.compute_units}</td>
                            <td><RelativeTime at=s.idle_since.clone() /></td></tr>
                    }).collect_view()}</tbody></table>
                }.into_any()
            }}
        </section>
        <section class="panel" data-testid="overview-quotas">
            <h2>"Near their quotas (80% or more)"</h2>
            {if o.near_quota.is_empty() {
                view! { <p class="empty">"Nobody is near a quota."</p> }.into_any()
            } else {
                view! {
                    <table class="list"><thead><tr><th>"User"</th><th>"Quota"</th><th>"Used"</th></tr></thead>
                    <tbody>{o.near_quota.clone().into_iter().map(|q| view! {
                        <tr data-user=q.user.username.clone()><td><a href="/admin/users">{q.user.username.clone()}</a></td>
                            <td>{q.dimension.replace('_', " ")}</td>
                            <td>{format!("{} of {}", q.used, q.quota)}</td></tr>
                    }).collect_view()}</tbody></table>
                }.into_any()
            }}
        </section>
        <section class="panel" data-testid="overview-failures">
            <h2>"Latest failures"</h2>
            {if o.failures.is_empty() {
                view! { <p class="empty">"Nothing failed."</p> }.into_any()
            } else {
                view! {
                    <table class="list"><thead><tr><th>"When"</th><th>"What"</th><th>"Target"</th></tr></thead>
                    <tbody>{o.failures.clone().into_iter().map(|e| view! {
                        <tr><td><RelativeTime at=e.at.clone() /></td><td>{e.action.clone()}</td><td>{e.target.clone()}</td></tr>
                    }).collect_view()}</tbody></table>
                    <p><a href="/admin/audit">"The audit log"</a></p>
                }.into_any()
            }}
        </section>
        <section class="panel" data-testid="overview-health">
            <h2>"Hangar " {o.health.version.clone()}</h2>
            <dl>
                <dt>"Volume sizes"</dt><dd>{o.health.storage.clone()}</dd>
                <dt>"Network isolation"</dt><dd>{o.health.network.clone()}</dd>
                <dt>"No new privileges"</dt><dd>{o.health.privileges.clone()}</dd>
            </dl>
        </section>
    }
}
