//! Admin: users, their role, state, own quota, groups, effective quota and live usage.

use leptos::prelude::*;

use super::{AdminOnly, QuotaEditor, UserUsage};
use crate::api::auth::{Role, UserDto};
use crate::api::groups::{list_groups, GroupDto};
use crate::api::page::all_pages;
use crate::api::users::{create_user, list_users, update_user, CreateUser, UpdateUser};
use crate::ids::UserId;
use crate::live::Live;
use crate::pages::widgets::{
    field_error, form_error, last_error, QuotaBreakdown, QuotaFields, QuotaInputs,
};

#[component]
pub fn UsersPage() -> impl IntoView {
    view! { <AdminOnly page=|| view! { <Users /> } /> }
}

#[component]
fn Users() -> impl IntoView {
    let changed = RwSignal::new(0u64);
    super::UsageBook::provide(changed);
    // Usage moves live inside each row; the list itself changes only with the admin's edits.
    let users = Resource::new(move || changed.get(), |_| all_pages(list_users));
    let groups = Resource::new(move || changed.get(), |_| all_pages(list_groups));
    view! {
        <section class="panel">
            <h1>"Users"</h1>
            <NewUser changed />
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || match (users.get(), groups.get()) {
                    (Some(Ok(users)), Some(Ok(groups))) => view! {
                        <div class="rows" data-testid="users">
                            {users.into_iter().map(|user| view! { <UserRow user groups=groups.clone() changed /> }).collect_view()}
                        </div>
                    }.into_any(),
                    (Some(Err(e)), _) | (_, Some(Err(e))) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                    _ => ().into_any(),
                }}
            </Transition>
        </section>
    }
}

#[component]
fn NewUser(changed: RwSignal<u64>) -> impl IntoView {
    let username = RwSignal::new(String::new());
    let display_name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let admin = RwSignal::new(false);
    let create = Action::new(|input: &CreateUser| {
        let input = input.clone();
        async move { create_user(input).await }
    });
    let error = last_error(create);
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            username.set(String::new());
            display_name.set(String::new());
            password.set(String::new());
            changed.update(|n| *n += 1);
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let display = display_name.get_untracked();
        create.dispatch(CreateUser {
            username: username.get_untracked().trim().to_owned(),
            password: password.get_untracked(),
            role: Some(if admin.get_untracked() {
                Role::Admin
            } else {
                Role::Member
            }),
            email: None,
            display_name: (!display.trim().is_empty()).then_some(display),
            active: Some(true),
            ..Default::default()
        });
    };
    view! {
        <details class="dialog">
            <summary data-testid="new-user">"New user"</summary>
            <form class="row" on:submit=submit data-testid="new-user-form">
                <label>"Username" <input type="text" data-testid="new-username" bind:value=username required=true autocomplete="off" />
                    {field_error(error, "username")}</label>
                <label>"Display name" <input type="text" bind:value=display_name /></label>
                <label>"Password" <input type="password" data-testid="new-password" bind:value=password required=true autocomplete="new-password" />
                    {field_error(error, "password")}</label>
                <label class="check"><input type="checkbox" bind:checked=admin /> "Administrator"</label>
                <button type="submit" class="primary" data-testid="create-user" disabled=move || create.pending().get()>"Create user"</button>
            </form>
            <p class="hint">"New users get the server's default own quota; add them to groups below to give them more."</p>
            {form_error(error, &["username", "password"])}
        </details>
    }
}

#[component]
fn UserRow(user: UserDto, groups: Vec<GroupDto>, changed: RwSignal<u64>) -> impl IntoView {
    let editing = RwSignal::new(false);
    let uid = user.id.0.clone();
    let member_of: Vec<String> = groups
        .iter()
        .filter(|g| g.members.iter().any(|m| m.id == user.id))
        .map(|g| g.name.clone())
        .collect();
    let username = user.username.clone();
    let summary = format!(
        "{}{} · groups: {}",
        format!("{:?}", user.role).to_lowercase(),
        if user.active { "" } else { " · deactivated" },
        if member_of.is_empty() {
            "none".to_owned()
        } else {
            member_of.join(", ")
        }
    );
    view! {
        <article class="row-card" data-testid="user-row" data-username=username>
            <div class="panel-head">
                <div>
                    <strong>{user.display_name.clone()}</strong> " " <code>{user.username.clone()}</code>
                    <p class="meta">{summary}</p>
                </div>
                <button type="button" class="secondary" data-testid="edit-user" on:click=move |_| editing.update(|e| *e = !*e)>
                    {move || if editing.get() { "Close" } else { "Edit" }}</button>
            </div>
            <UserUsage user_id=uid.clone() />
            <Show when=move || editing.get()>
                <EditUser user=user.clone() groups=groups.clone() changed />
            </Show>
        </article>
    }
}

#[component]
fn EditUser(user: UserDto, groups: Vec<GroupDto>, changed: RwSignal<u64>) -> impl IntoView {
    let admin = RwSignal::new(user.role == Role::Admin);
    let active = RwSignal::new(user.active);
    let quota = QuotaInputs::new(
        user.max_spaces,
        user.compute_units,
        user.storage_units,
        user.max_tunnels,
    );
    let password = RwSignal::new(String::new());
    let editor = QuotaEditor::new(changed, quota, update_user);
    let (update, membership, error) = (editor.save, editor.membership, editor.error());
    let id = user.id.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let password = password.get_untracked();
        let input = UpdateUser {
            password: (!password.is_empty()).then_some(password),
            role: Some(if admin.get_untracked() {
                Role::Admin
            } else {
                Role::Member
            }),
            active: Some(active.get_untracked()),
            ..Default::default()
        };
        editor.submit(id.clone(), input);
    };
    let uid = user.id.clone();
    view! {
        <form class="stack edit" on:submit=submit data-testid="edit-user-form">
            <div class="row">
                <label class="check"><input type="checkbox" bind:checked=admin /> "Administrator"</label>
                <label class="check"><input type="checkbox" bind:checked=active /> "Active"</label>
            </div>
            <fieldset class="row">
                <legend>"Own quota (blank: unlimited); groups add to it"</legend>
                <QuotaFields inputs=quota error=Signal::derive(error) testid="user" />
            </fieldset>
            <label>"Reset password (blank: unchanged)"
                <input type="password" autocomplete="new-password" bind:value=password />{field_error(error, "password")}</label>
            {form_error(error, &["max_spaces", "compute_units", "storage_units", "max_tunnels", "password"])}
            <button type="submit" class="primary" disabled=move || update.pending().get()>"Save"</button>
            <fieldset class="row">
                <legend>"Groups"</legend>
                {groups.into_iter().map(|g| {
                    let member = g.members.iter().any(|m| m.id == uid);
                    let (gid, user_id) = (g.id.clone(), uid.clone());
                    view! {
                        <label class="check"><input type="checkbox" prop:checked=member
                            on:change=move |ev| { membership.dispatch((gid.clone(), user_id.clone(), event_target_checked(&ev))); } />
                            {g.name.clone()}</label>
                    }
                }).collect_view()}
            </fieldset>
            <details><summary>"Effective quota by source"</summary><Breakdown user_id=user.id.clone() /></details>
            <crate::pages::usage::QuotaUsageDetails of=crate::pages::usage::QuotaOf::User(user.id.clone()) summary="Quota use over time" />
        </form>
    }
}

#[component]
fn Breakdown(user_id: UserId) -> impl IntoView {
    let live = Live::get();
    let report = Resource::new(
        move || (user_id.clone(), live.usage.get()),
        |(id, _)| crate::api::users::user_quota(id),
    );
    view! {
        <Transition fallback=|| ()>
            {move || report.get().map(|r| match r {
                Ok(report) => view! { <QuotaBreakdown report /> }.into_any(),
                Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
            })}
        </Transition>
    }
}
