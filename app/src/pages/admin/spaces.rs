//! Admin: every space, filtered by owner and state, with stop and delete; below, the nodes
//! they run on.

use leptos::prelude::*;

use super::nodes::NodesPanel;
use super::AdminOnly;
use crate::api::page::all_pages;
use crate::api::spaces::all_spaces;
use crate::lifecycle::SpaceState;
use crate::live::Live;
use crate::pages::dashboard::{SpaceActions, SpaceButtons};
use crate::pages::widgets::StateBadge;

/// The states a listed space can be in (deleted ones are not listed).
const STATES: [SpaceState; 5] = [
    SpaceState::Created,
    SpaceState::Starting,
    SpaceState::Running,
    SpaceState::Stopping,
    SpaceState::Stopped,
];

#[component]
pub fn AllSpacesPage() -> impl IntoView {
    view! { <AdminOnly page=|| view! { <AllSpaces /> } /> }
}

#[component]
fn AllSpaces() -> impl IntoView {
    let live = Live::get();
    let spaces = Resource::new(move || live.spaces.get(), |_| all_pages(all_spaces));
    let owner = RwSignal::new(String::new());
    let state = RwSignal::new(String::new());
    let actions = SpaceActions::new();
    let action_error = actions.error();
    view! {
        <section class="panel">
            <h1>"All spaces"</h1>
            <div class="row filters">
                <label>"Owner" <input type="search" data-testid="filter-owner" bind:value=owner placeholder="username" /></label>
                <label>"State"
                    <select data-testid="filter-state" on:change=move |ev| state.set(event_target_value(&ev))>
                        <option value="">"any"</option>
                        {STATES.into_iter().map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> }).collect_view()}
                    </select>
                </label>
            </div>
            {move || action_error().map(|e| view! { <p class="error" role="alert">{e.message}</p> })}
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || spaces.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                    Ok(list) => {
                        let (owner, state) = (owner.get().trim().to_lowercase(), state.get());
                        let shown: Vec<_> = list.into_iter()
                            .filter(|s| owner.is_empty() || s.owner.username.to_lowercase().contains(&owner))
                            .filter(|s| state.is_empty() || s.state.as_str() == state)
                            .collect();
                        if shown.is_empty() {
                            view! { <p class="empty">"No space matches."</p> }.into_any()
                        } else {
                            view! {
                                <table class="list" data-testid="all-spaces">
                                    <thead><tr><th>"Space"</th><th>"Owner"</th><th>"State"</th><th>"Units"</th><th>"Actions"</th></tr></thead>
                                    <tbody>{shown.into_iter().map(|s| view! {
                                        <tr data-space=s.name.clone()>
                                            <td><a href=format!("/spaces/{}", s.id)>{s.name.clone()}</a></td>
                                            <td>{s.owner.username.clone()}</td>
                                            <td><StateBadge state=s.state /></td>
                                            <td>{format!("{} CU, {} SU", s.compute_units, s.storage_units)}</td>
                                            <td><SpaceButtons space=s.clone() actions /></td>
                                        </tr>
                                    }).collect_view()}</tbody>
                                </table>
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
        <crate::pages::autostop::RetentionForm />
        <NodesPanel />
    }
}
