//! Admin: groups, the quota each adds to its members, members and their live usage.

use leptos::prelude::*;

use super::{AdminOnly, QuotaEditor, UserUsage};
use crate::api::auth::UserDto;
use crate::api::groups::{
    create_group, list_groups, update_group, CreateGroup, GroupDto, UpdateGroup,
};
use crate::api::page::all_pages;
use crate::api::quota::SetsQuota;
use crate::api::users::list_users;
use crate::ids::UserId;
use crate::pages::widgets::{
    field_error, form_error, last_error, ConfirmButton, QuotaFields, QuotaInputs,
};

#[component]
pub fn GroupsPage() -> impl IntoView {
    view! { <AdminOnly page=|| view! { <Groups /> } /> }
}

#[component]
fn Groups() -> impl IntoView {
    let changed = RwSignal::new(0u64);
    super::UsageBook::provide(changed);
    let groups = Resource::new(move || changed.get(), |_| all_pages(list_groups));
    let users = Resource::new(move || changed.get(), |_| all_pages(list_users));
    view! {
        <section class="panel">
            <h1>"Groups"</h1>
            <p class="hint">"A member's effective quota is their own plus every group's; a blank value is unlimited."</p>
            <NewGroup changed />
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || match (groups.get(), users.get()) {
                    (Some(Ok(groups)), _) if groups.is_empty() => view! {
                        <p class="empty">"No groups yet. Create one to give a team a shared quota."</p>
                    }.into_any(),
                    (Some(Ok(groups)), Some(Ok(users))) => view! {
                        <div class="rows" data-testid="groups">
                            {groups.into_iter().map(|group| view! { <GroupCard group users=users.clone() changed /> }).collect_view()}
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
fn NewGroup(changed: RwSignal<u64>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let quota = QuotaInputs::new(Some(0), Some(0), Some(0), Some(0));
    let create = Action::new(|input: &CreateGroup| {
        let input = input.clone();
        async move { create_group(input).await }
    });
    let error = move || quota.typo().or_else(last_error(create));
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            name.set(String::new());
            changed.update(|n| *n += 1);
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Some(values) = quota.read() {
            let name = name.get_untracked().trim().to_owned();
            create.dispatch(
                CreateGroup {
                    name,
                    ..Default::default()
                }
                .with_quota(values),
            );
        }
    };
    view! {
        <details class="dialog">
            <summary data-testid="new-group">"New group"</summary>
            <form class="row" on:submit=submit data-testid="new-group-form">
                <label>"Name" <input type="text" data-testid="group-name" bind:value=name required=true />{field_error(error, "name")}</label>
                <QuotaFields inputs=quota error=Signal::derive(error) testid="group" />
                <button type="submit" class="primary" data-testid="create-group" disabled=move || create.pending().get()>"Create group"</button>
            </form>
            {form_error(error, &["name", "max_spaces", "compute_units", "storage_units", "max_tunnels"])}
        </details>
    }
}

#[component]
fn GroupCard(group: GroupDto, users: Vec<UserDto>, changed: RwSignal<u64>) -> impl IntoView {
    let quota = QuotaInputs::new(
        group.max_spaces,
        group.compute_units,
        group.storage_units,
        group.max_tunnels,
    );
    let editor = QuotaEditor::new(changed, quota, update_group);
    let (update, membership, error) = (editor.save, editor.membership, editor.error());
    let new_member = RwSignal::new(String::new());
    let gid = group.id.clone();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        editor.submit(gid.clone(), UpdateGroup::default());
    };
    let gid = group.id.clone();
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let user = new_member.get_untracked();
        if !user.is_empty() {
            membership.dispatch((gid.clone(), UserId(user), true));
        }
    };
    let candidates: Vec<UserDto> = users
        .into_iter()
        .filter(|u| !group.members.iter().any(|m| m.id == u.id))
        .collect();
    let gid = group.id.clone();
    view! {
        <article class="row-card" data-testid="group-card" data-group=group.name.clone()>
            <h2>{group.name.clone()}</h2>
            <form class="row" on:submit=save data-testid="group-quota-form">
                <QuotaFields inputs=quota error=Signal::derive(error) testid="edit-group" />
                <button type="submit" class="primary" data-testid="save-group" disabled=move || update.pending().get()>"Save quota"</button>
            </form>
            {form_error(error, &["max_spaces", "compute_units", "storage_units", "max_tunnels"])}
            <crate::pages::usage::QuotaUsageDetails of=crate::pages::usage::QuotaOf::Group(group.id.clone()) summary="Members' quota use over time" />
            <h3>"Members"</h3>
            {if group.members.is_empty() {
                view! { <p class="empty">"No members yet: add one below."</p> }.into_any()
            } else {
                view! {
                    <ul class="members" data-testid="members">
                        {group.members.iter().map(|m| {
                            let (g, u) = (gid.clone(), m.id.clone());
                            // Replaced at the member's next sign-in: removing it by hand lasts
                            // until then.
                            let from_idp = group.idp_members.contains(&m.id);
                            view! {
                                <li data-member=m.username.clone() data-source=if from_idp { "idp" } else { "admin" }>
                                    <span><strong>{m.display_name.clone()}</strong> " " <code>{m.username.clone()}</code>
                                        {from_idp.then(|| view! { " " <span class="badge" title="from the identity provider's groups claim, replaced at each sign-in">"from the identity provider"</span> })}
                                    </span>
                                    <UserUsage user_id=m.id.0.clone() />
                                    <ConfirmButton label="Remove" question=format!("Remove {} from {}?", m.username, group.name)
                                        on_confirm=Callback::new(move |_| { membership.dispatch((g.clone(), u.clone(), false)); }) />
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
            <form class="row" on:submit=add>
                <label>"Add a member"
                    <select data-testid="add-member" on:change=move |ev| new_member.set(event_target_value(&ev))>
                        <option value="">"— choose a user —"</option>
                        {candidates.into_iter().map(|u| view! { <option value=u.id.0.clone()>{u.username.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <button type="submit" class="secondary" data-testid="add-member-submit">"Add"</button>
            </form>
        </article>
    }
}
