//! Admin: the machines spaces run on (the one Docker engine, or each node of the swarm) with
//! their capacity and what is reserved, live; a stopped space can be moved to another node.

use leptos::prelude::*;

use crate::api::admin::{list_nodes, move_space, MoveReport, MoveSpaceRequest, NodeDto};
use crate::components::size::{bytes_text, exact_bytes};
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
                Ok(m) => view! {
                    <p class="notice" role="status" title=format!("{} copied", exact_bytes(m.bytes))>
                        {format!("Moved from {} to {} ({} copied).", m.from, m.to, bytes_text(m.bytes as f64))}
                    </p>
                }.into_any(),
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

/// What a number of CPUs reads as: `1 CPU`, `0.5 CPUs`, `12 CPUs`.
fn cpus_text(cpus: f64) -> String {
    let text = format!("{cpus:.2}");
    let number = text.trim_end_matches('0').trim_end_matches('.');
    if number == "1" {
        "1 CPU".to_owned()
    } else {
        format!("{number} CPUs")
    }
}

/// A node's compute units: reserved by its running spaces of what its CPUs and memory hold.
/// More reserved than it holds is said in words, with what it means.
fn compute_units_cell(node: &NodeDto) -> AnyView {
    let (reserved, capacity) = (node.reserved_cu, node.capacity_cu);
    let over = reserved - capacity;
    if over > 0 {
        view! {
            <td data-testid="node-cu" data-reserved=reserved data-overcommitted="true" class="warn"
                title=OVERCOMMITTED>
                {format!("{reserved} reserved of {capacity}: overcommitted by {over}")}
                <p class="hint small">"Its running spaces may use more CPU and memory than it has, and slow each other down."</p>
            </td>
        }
        .into_any()
    } else {
        view! {
            <td data-testid="node-cu" data-reserved=reserved>
                {format!("{reserved} reserved of {capacity} ({} free)", node.free_cu)}
            </td>
        }
        .into_any()
    }
}

/// What an overcommitted node means, on hover.
const OVERCOMMITTED: &str =
    "Overcommitted: the compute units of the spaces running here add up to \
    more than this machine's CPUs and memory hold (1 CU is --cpus-per-cu CPUs and \
    --memory-mib-per-cu MiB). Each space keeps its own limits, but together they can ask for \
    more than there is: they share the CPUs and may slow each other down, and the machine may \
    run out of memory. On one Docker engine, starts are held back by quotas only, not by room; \
    stop spaces or move stopped ones to a node with room.";

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
            <td>{format!("{}, {}", cpus_text(node.cpus), bytes_text(node.memory_mib as f64 * 1024.0 * 1024.0))}</td>
            {compute_units_cell(&node)}
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
