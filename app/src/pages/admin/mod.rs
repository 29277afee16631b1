//! Administration: users, groups, templates, every space and the audit log.

pub mod audit;
pub mod groups;
pub mod spaces;
pub mod templates;
pub mod users;

use leptos::prelude::*;

use super::dashboard::SignedIn;
use super::widgets::QuotaBars;
use crate::api::auth::{Role, UserDto};
use crate::api::groups::{set_membership, GroupDto};
use crate::api::users::user_quota;
use crate::error::ApiError;
use crate::live::Live;
use crate::pages::widgets::refreshing;

/// Renders `page` for admins; others are told it is not for them.
#[component]
pub fn AdminOnly<F, V>(page: F) -> impl IntoView
where
    F: Fn(UserDto) -> V + Send + Sync + Copy + 'static,
    V: IntoView + 'static,
{
    view! {
        <SignedIn page=move |user: UserDto| {
            if user.role == Role::Admin {
                page(user).into_any()
            } else {
                view! {
                    <section class="panel"><h1>"Administrators only"</h1>
                        <p>"This page is for administrators. " <a href="/">"Back to your dashboard"</a></p></section>
                }.into_any()
            }
        } />
    }
}

/// A user's effective quota and live usage. Loaded in the browser once the page is live:
/// rendered inside lists that themselves wait for data, a server-rendered copy could not be
/// matched up during hydration.
#[component]
pub fn UserUsage(user_id: String) -> impl IntoView {
    let mounted = RwSignal::new(false);
    Effect::new(move |_| mounted.set(true));
    view! {
        <Show when=move || mounted.get() fallback=|| view! { <span class="hint">"…"</span> }>
            <LiveUsage user_id=user_id.clone() />
        </Show>
    }
}

#[component]
fn LiveUsage(user_id: String) -> impl IntoView {
    let live = Live::get();
    let report = Resource::new(
        move || (user_id.clone(), live.usage.get()),
        |(id, _)| user_quota(id),
    );
    view! {
        <Transition fallback=|| view! { <span class="hint">"…"</span> }>
            {move || report.get().map(|r| match r {
                Ok(report) => view! { <QuotaBars report /> }.into_any(),
                Err(e) => view! { <span class="error">{e.message}</span> }.into_any(),
            })}
        </Transition>
    }
}

/// Adds (`true`) or removes a user (group id, user id) from a group, then refreshes `changed`.
pub fn membership_action(
    changed: RwSignal<u64>,
) -> Action<(String, String, bool), Result<GroupDto, ApiError>> {
    refreshing(
        changed,
        Action::new(|(group, user, member): &(String, String, bool)| {
            let (group, user, member) = (group.clone(), user.clone(), *member);
            async move { set_membership(group, user, member).await }
        }),
    )
}

/// The admin section's own navigation.
#[component]
pub fn AdminNav() -> impl IntoView {
    view! {
        <nav class="subnav" aria-label="Administration">
            <a href="/admin/users">"Users"</a>
            <a href="/admin/groups">"Groups"</a>
            <a href="/admin/templates">"Templates"</a>
            <a href="/admin/spaces">"All spaces"</a>
            <a href="/admin/audit">"Audit log"</a>
        </nav>
    }
}
