//! The application's pages and the layout around them.

pub mod admin;
pub mod autostop;
pub mod dashboard;
pub mod files;
pub mod layout;
pub mod lazy;
pub mod login;
pub mod notifications;
pub mod ports;
pub mod profile;
pub mod repos;
pub mod sign_in_provider;
pub mod space;
pub mod ssh;
pub mod terminal;
pub mod usage;
pub mod widgets;

use leptos::prelude::*;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <section class="panel narrow">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. " <a href="/">"Go to your dashboard"</a> "."</p>
        </section>
    }
}

/// Sends the browser to `path` with a full page load, so every resource is fetched afresh.
pub fn reload_to(path: &str) {
    #[cfg(feature = "hydrate")]
    {
        let _ = window().location().set_href(path);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = path;
}
