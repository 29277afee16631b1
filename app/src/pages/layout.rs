//! The frame of every page: the top bar with navigation and the signed-in user.

use leptos::prelude::*;

use crate::api::auth::Logout;
use crate::CurrentUser;

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let CurrentUser(user) = expect_context::<CurrentUser>();
    let logout = ServerAction::<Logout>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = logout.value().get() {
            super::reload_to("/login");
        }
    });

    view! {
        <header class="topbar">
            <a class="brand" href="/">"Hangar"</a>
            <nav>
                <Transition fallback=|| ()>
                    {move || user.get().and_then(|r| r.ok().flatten()).map(|user| view! {
                        <a href="/">"Dashboard"</a>
                        <a href="/profile">"Profile"</a>
                        {(user.role == crate::api::auth::Role::Admin).then(|| view! { <a href="/admin" data-testid="admin-link">"Admin"</a> })}
                    })}
                </Transition>
            </nav>
            <div class="who">
                <Transition fallback=|| ()>
                    {move || {
                        user.get()
                            .and_then(|result| result.ok().flatten())
                            .map(|user| {
                                view! {
                                    <super::notifications::Bell />
                                    <span class="username" data-testid="signed-in-as">
                                        {user.display_name.clone()}
                                    </span>
                                    <ActionForm action=logout attr:class="inline">
                                        <button type="submit" class="link">"Sign out"</button>
                                    </ActionForm>
                                }
                            })
                    }}
                </Transition>
            </div>
        </header>
        <main class="content">
            <super::autostop::StopWarnings />
            {children()}
        </main>
    }
}
