//! The sign-in page.

use leptos::prelude::*;

use crate::api::auth::Login;

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let pending = login.pending();
    let query = leptos_router::hooks::use_query_map();
    Effect::new(move |_| {
        if let Some(Ok(_)) = login.value().get() {
            // `?next=` (decoded once, as the router reads it) when it is a path of Hangar's
            // own as the browser will read it, else home.
            let next = query.with_untracked(|q| q.get("next"));
            super::reload_to(&crate::redirect::local_path(next.as_deref()));
        }
    });
    let error = move || match login.value().get() {
        Some(Err(error)) => Some(error.message),
        _ => None,
    };

    view! {
        <section class="panel narrow">
            <h1>"Sign in to Hangar"</h1>
            <super::sign_in_provider::ProviderSignIn />
            <ActionForm action=login attr:class="stack" attr:data-testid="login-form">
                <label>
                    "Username"
                    <input type="text" name="username" autocomplete="username" required autofocus />
                </label>
                <label>
                    "Password"
                    <input type="password" name="password" autocomplete="current-password" required />
                </label>
                <Show when=move || error().is_some()>
                    <p class="error" role="alert" data-testid="login-error">{error}</p>
                </Show>
                <button type="submit" class="primary" disabled=pending>
                    {move || if pending.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </ActionForm>
        </section>
    }
}
