//! The developer's home: their spaces and quota (empty until spaces exist).

use leptos::prelude::*;
use leptos_router::components::Redirect;

use crate::api::spaces::{my_spaces, SpaceDto};
use crate::CurrentUser;

#[component]
pub fn DashboardPage() -> impl IntoView {
    let CurrentUser(user) = expect_context::<CurrentUser>();
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                user.get()
                    .map(|result| match result {
                        Ok(Some(user)) => {
                            view! { <Dashboard name=user.display_name.clone() /> }.into_any()
                        }
                        Ok(None) => view! { <Redirect path="/login" /> }.into_any(),
                        Err(error) => {
                            view! {
                                <p class="error" role="alert">
                                    "Could not load your account: " {error.message}
                                    ". Reload the page; if it persists, ask your administrator."
                                </p>
                            }
                                .into_any()
                        }
                    })
            }}
        </Transition>
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Cards,
    List,
}

#[component]
fn SpaceCard(space: SpaceDto) -> impl IntoView {
    let terminal = (space.state == "running").then(|| format!("/spaces/{}/terminal", space.id));
    let owner = space
        .shared_with_me
        .then(|| format!("shared by {}", space.owner.display_name));
    view! {
        <article class="card" data-testid="space-card" data-space=space.name.clone()>
            <h2>{space.name.clone()}</h2>
            <p class="meta">
                <span class=format!("state {}", space.state) data-testid="space-state">{space.state.clone()}</span>
                " · " {space.template_name.clone()} " · "
                {format!("{} CU, {} SU", space.compute_units, space.storage_units)}
            </p>
            {owner.map(|o| view! { <p class="meta">{o}</p> })}
            {space.last_error.clone().map(|e| view! { <p class="error">{e}</p> })}
            {terminal.map(|href| view! { <a class="button" href=href>"Open terminal"</a> })}
        </article>
    }
}

#[component]
fn Dashboard(name: String) -> impl IntoView {
    let spaces = Resource::new(|| (), |_| my_spaces());
    // Choosing how spaces are laid out is the first interactive control; it only works
    // once the page is hydrated.
    let (layout, set_layout) = signal(Layout::Cards);
    let toggle = move |_| {
        set_layout.update(|l| {
            *l = match l {
                Layout::Cards => Layout::List,
                Layout::List => Layout::Cards,
            }
        })
    };
    let layout_name = move || match layout.get() {
        Layout::Cards => "cards",
        Layout::List => "list",
    };

    view! {
        <section class="panel">
            <div class="panel-head">
                <h1>"Welcome, " {name}</h1>
                <button
                    type="button"
                    class="secondary"
                    data-testid="layout-toggle"
                    on:click=toggle
                    aria-pressed=move || (layout.get() == Layout::List).to_string()
                >
                    {move || match layout.get() {
                        Layout::Cards => "Show as list",
                        Layout::List => "Show as cards",
                    }}
                </button>
            </div>
            <div class="spaces" data-layout=layout_name data-testid="spaces">
                <Transition fallback=|| view! { <p>"Loading your spaces…"</p> }>
                    {move || spaces.get().map(|result| match result {
                        Err(error) => view! {
                            <p class="error" role="alert">"Could not load your spaces: " {error.message}</p>
                        }.into_any(),
                        Ok(list) if list.is_empty() => view! {
                            <p class="empty">
                                "You have no spaces yet. When your administrator has set up templates, "
                                "you will create your first space here."
                            </p>
                        }.into_any(),
                        Ok(list) => list.into_iter().map(|space| view! { <SpaceCard space /> }).collect_view().into_any(),
                    })}
                </Transition>
            </div>
        </section>
    }
}
