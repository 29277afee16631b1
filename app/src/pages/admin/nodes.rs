//! Admin: the machines spaces run on (the one Docker engine, or each node of the swarm) with
//! their capacity and what is reserved, live; a stopped space can be moved to another node.

use leptos::prelude::*;

use crate::api::admin::{list_nodes, move_space, MoveReport, MoveSpaceRequest, NodeDto};
use crate::error::ApiError;
use crate::ids::SpaceId;
use crate::lifecycle::SpaceState;
use crate::live::Live;
use crate::pages::widgets::{refreshing, StateBadge};

/// How often the nodes are read again while the page is open (node health has no event).
const REFRESH_MS: u64 = 5_000;

#[component]
pub fn NodesPanel() -> impl IntoView {
    let live = Live::get();
    let tick = RwSignal::new(0u64);
    // In the browser only: the server renders the page once.
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(
            move || tick.update(|n| *n += 1),
            std::time::Duration::from_millis(REFRESH_MS),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    let nodes = Resource::new(move || (live.spaces.get(), tick.get()), |_| list_nodes());
    let mover = refreshing(
        live.spaces,
        Action::new(|(id, node): &(SpaceId, String)| {
            let (id, node) = (id.clone(), node.clone());
            async move { move_space(id, MoveSpaceRequest { node }).await }
        }),
    );
    let outcome = mover.value();
    view! {
        <section class="panel" data-testid="nodes">
            <h2>"Nodes"</h2>
            {move || outcome.get().map(|r: Result<MoveReport, ApiError>| match r {
                Ok(m) => view! { <p class="notice" role="status">{format!("Moved from {} to {} ({} bytes copied).", m.from, m.to, m.bytes)}</p> }.into_any(),
                Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
            })}
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || nodes.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                    Ok(list) => {
                        let names: Vec<String> = list.iter()
                            .filter(|n| n.problem.is_none())
                            .map(|n| n.name.clone())
                            .collect();
                        let pending = mover.pending();
                        view! {
                            <table class="list" data-testid="node-list">
                                <thead><tr><th>"Node"</th><th>"Role"</th><th>"Health"</th><th>"Machine"</th><th>"Compute units"</th><th>"Spaces"</th></tr></thead>
                                <tbody>{list.into_iter().map(|n| node_row(n, names.clone(), mover, pending)).collect_view()}</tbody>
                            </table>
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}

fn node_row(
    node: NodeDto,
    names: Vec<String>,
    mover: Action<(SpaceId, String), Result<MoveReport, ApiError>>,
    pending: Memo<bool>,
) -> impl IntoView {
    let health = match &node.problem {
        None => format!("ready, {}", node.availability),
        Some(problem) => problem.clone(),
    };
    let here = node.name.clone();
    view! {
        <tr data-node=node.name.clone()>
            <td>{node.name.clone()}</td>
            <td>{node.role.clone()}</td>
            <td class=if node.problem.is_some() { "error" } else { "" }>{health}</td>
            <td>{format!("{:.1} CPUs, {} MiB", node.cpus, node.memory_mib)}</td>
            <td data-testid="node-cu" data-reserved=node.reserved_cu>{format!("{} reserved of {} ({} free)", node.reserved_cu, node.capacity_cu, node.free_cu)}</td>
            <td>
                <ul class="plain">{node.spaces.into_iter().map(|s| {
                    let targets: Vec<String> = names.iter().filter(|n| **n != here).cloned().collect();
                    let movable = s.kept_here && s.state == SpaceState::Stopped && !targets.is_empty();
                    let chosen = RwSignal::new(targets.first().cloned().unwrap_or_default());
                    let id = s.id.clone();
                    let place = match (s.running_here, s.kept_here) {
                        (true, _) => "runs here",
                        (false, true) => "kept here",
                        (false, false) => "",
                    };
                    view! {
                        <li data-space=s.name.clone()>
                            {format!("{}/{} ({} CU) ", s.owner, s.name, s.compute_units)}
                            <StateBadge state=s.state />
                            {format!(" {place}")}
                            {movable.then(|| view! {
                                <span class="row">
                                    <select aria-label="move to node" data-testid="move-target"
                                        on:change=move |ev| chosen.set(event_target_value(&ev))>
                                        {targets.iter().map(|t| view! { <option value=t.clone()>{t.clone()}</option> }).collect_view()}
                                    </select>
                                    <button data-testid="move" disabled=move || pending.get()
                                        on:click=move |_| { mover.dispatch((id.clone(), chosen.get_untracked())); }>
                                        "Move"
                                    </button>
                                </span>
                            })}
                        </li>
                    }
                }).collect_view()}</ul>
            </td>
        </tr>
    }
}
