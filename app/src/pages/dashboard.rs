//! The developer's home: their spaces and quota (empty until spaces exist).

use leptos::prelude::*;
use leptos_router::components::Redirect;

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
fn Dashboard(name: String) -> impl IntoView {
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
                <p class="empty">
                    "You have no spaces yet. When your administrator has set up templates, "
                    "you will create your first space here."
                </p>
            </div>
        </section>
    }
}
