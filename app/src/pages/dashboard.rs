//! The developer's home: live quota bars, their spaces and those shared with them, and the
//! create-space dialog with a preview of what the new space would use.

use leptos::prelude::*;
use leptos_router::components::Redirect;

use super::widgets::{
    field_error, form_error, last_error, refreshing, ConfirmButton, QuotaBar, QuotaBars, StateBadge,
};
use crate::api::auth::UserDto;
use crate::api::page::all_pages;
use crate::api::spaces::{
    create_preview, create_space, delete_space, my_quota, my_spaces, space_action,
    usable_templates, CreateSpace, SpaceDto,
};
use crate::error::ApiError;
use crate::ids::{SpaceId, TemplateId};
use crate::lifecycle::Action as Transition;
use crate::live::Live;
use crate::CurrentUser;

/// Renders `page` for the signed-in user, or sends a visitor to the sign-in page.
#[component]
pub fn SignedIn<F, V>(page: F) -> impl IntoView
where
    F: Fn(UserDto) -> V + Send + Sync + Copy + 'static,
    V: IntoView + 'static,
{
    let CurrentUser(user) = expect_context::<CurrentUser>();
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                user.get()
                    .map(|result| match result {
                        Ok(Some(user)) => page(user).into_any(),
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

#[component]
pub fn DashboardPage() -> impl IntoView {
    view! { <SignedIn page=|user: UserDto| view! { <Dashboard name=user.display_name.clone() /> } /> }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Cards,
    List,
}

/// Start, stop and delete, shared by every card of the page.
#[derive(Clone, Copy)]
pub struct SpaceActions {
    pub act: Action<(SpaceId, Transition), Result<SpaceDto, ApiError>>,
    pub delete: Action<SpaceId, Result<Option<SpaceDto>, ApiError>>,
    /// A start or stop is on its way (read once here, not per card).
    pub busy: Signal<bool>,
}

impl SpaceActions {
    pub fn new() -> Self {
        let live = Live::get();
        // The server pushes the change too; refreshing here works even if the stream is down.
        let act = refreshing(
            live.spaces,
            Action::new(|(id, action): &(SpaceId, Transition)| {
                let (id, action) = (id.clone(), *action);
                async move { space_action(id, action).await }
            }),
        );
        let delete = refreshing(
            live.spaces,
            Action::new(|id: &SpaceId| {
                let id = id.clone();
                async move { delete_space(id).await }
            }),
        );
        let pending = act.pending();
        // A page abandoned mid-render disposes of this before its cards are done.
        let busy = Signal::derive(move || pending.try_get().unwrap_or(false));
        Self { act, delete, busy }
    }

    pub fn error(&self) -> impl Fn() -> Option<ApiError> + Copy + Send + Sync + 'static {
        let (act, delete) = (self.act, self.delete);
        move || last_error(act)().or_else(last_error(delete))
    }
}

impl Default for SpaceActions {
    fn default() -> Self {
        Self::new()
    }
}

/// The buttons a caller may use on a space in its current state.
#[component]
pub fn SpaceButtons(
    space: SpaceDto,
    actions: SpaceActions,
    /// On the space's own page, which needs no link to itself.
    #[prop(optional)]
    on_its_page: bool,
) -> impl IntoView {
    let id = space.id.clone();
    let can_start = space.can_manage && space.state.allows(Transition::Start);
    let can_stop = space.can_manage && space.state.allows(Transition::Stop);
    let terminal = (space.state.is_running()
        && space
            .allowed_features
            .contains(&crate::api::templates::Feature::Terminal))
    .then(|| format!("/spaces/{}/terminal", space.id));
    let pending = actions.busy;
    let (start_id, stop_id, delete_id) = (id.clone(), id.clone(), id.clone());
    view! {
        <div class="actions">
            {can_start.then(|| view! {
                <button type="button" class="primary" data-testid="start" disabled=move || pending.get()
                    on:click=move |_| { actions.act.dispatch((start_id.clone(), Transition::Start)); }>"Start"</button>
            })}
            {can_stop.then(|| view! {
                <button type="button" class="secondary" data-testid="stop" disabled=move || pending.get()
                    on:click=move |_| { actions.act.dispatch((stop_id.clone(), Transition::Stop)); }>"Stop"</button>
            })}
            {terminal.map(|href| view! { <a class="button" href=href data-testid="open-terminal">"Open terminal"</a> })}
            {space.state.is_running().then(|| view! { <super::ports::AppButtons apps=space.apps.clone() /> })}
            {(!on_its_page).then(|| view! { <a class="button secondary" href=format!("/spaces/{id}") data-testid="details">"Details"</a> })}
            {space.can_manage.then(|| view! {
                <ConfirmButton label="Delete" testid="delete"
                    question=format!("Delete \"{}\" and its volumes?", space.name)
                    on_confirm=Callback::new(move |_| { actions.delete.dispatch(delete_id.clone()); }) />
            })}
        </div>
    }
}

#[component]
fn SpaceCard(space: SpaceDto, actions: SpaceActions) -> impl IntoView {
    let owner = space
        .shared_with_me
        .then(|| format!("Shared with you by {}", space.owner.display_name));
    view! {
        <article class="card" data-testid="space-card" data-space=space.name.clone() data-state=space.state.as_str()>
            <h2><a href=format!("/spaces/{}", space.id)>{space.name.clone()}</a></h2>
            <p class="meta">
                <StateBadge state=space.state />
                " · " {space.template_name.clone()} " · "
                {format!("{} CU, {} SU", space.compute_units, space.storage_units)}
            </p>
            {owner.map(|o| view! { <p class="meta shared" data-testid="shared-by">{o}</p> })}
            {space.last_error.clone().map(|e| view! { <p class="error small">{e}</p> })}
            <super::autostop::AutoStopLine space=space.clone() />
            <SpaceButtons space=space.clone() actions />
        </article>
    }
}

#[component]
fn Dashboard(name: String) -> impl IntoView {
    let live = Live::get();
    let spaces = Resource::new(move || live.spaces.get(), |_| all_pages(my_spaces));
    let quota = Resource::new(|| (), |_| my_quota());
    let actions = SpaceActions::new();
    let creating = RwSignal::new(false);
    // Choosing how spaces are laid out works once the page is hydrated.
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
    let action_error = actions.error();

    view! {
        <section class="panel">
            <div class="panel-head">
                <h1>"Welcome, " {name}</h1>
                <span class="live" data-testid="live" data-connected=move || live.connected.get().to_string()>
                    {move || if live.connected.get() { "● live" } else { "○ connecting…" }}
                </span>
            </div>
            <Transition fallback=|| view! { <p>"Loading your quota…"</p> }>
                {move || {
                    let pushed = live.quota.get();
                    let loaded = quota.get();
                    match (pushed, loaded) {
                        (Some(report), _) | (None, Some(Ok(report))) => view! { <QuotaBars report /> }.into_any(),
                        (None, Some(Err(e))) => view! { <p class="error" role="alert">"Could not load your quota: " {e.message}</p> }.into_any(),
                        (None, None) => ().into_any(),
                    }
                }}
            </Transition>
            <super::usage::QuotaUsageDetails of=super::usage::QuotaOf::Me summary="Quota use over time" />
        </section>
        <section class="panel">
            <div class="panel-head">
                <h2>"Your spaces"</h2>
                <div class="actions">
                    <button type="button" class="primary" data-testid="new-space"
                        aria-expanded=move || creating.get().to_string()
                        on:click=move |_| creating.update(|c| *c = !*c)>"New space"</button>
                    <button type="button" class="secondary" data-testid="layout-toggle" on:click=toggle
                        aria-pressed=move || (layout.get() == Layout::List).to_string()>
                        {move || match layout.get() {
                            Layout::Cards => "Show as list",
                            Layout::List => "Show as cards",
                        }}
                    </button>
                </div>
            </div>
            <Show when=move || creating.get()>
                <CreateSpaceDialog close=Callback::new(move |_| creating.set(false)) />
            </Show>
            {move || action_error().map(|e| view! { <p class="error" role="alert" data-testid="action-error">{e.message}</p> })}
            <div class="spaces" data-layout=layout_name data-testid="spaces">
                <Transition fallback=|| view! { <p>"Loading your spaces…"</p> }>
                    {move || spaces.get().map(|result| match result {
                        Err(error) => view! {
                            <p class="error" role="alert">"Could not load your spaces: " {error.message}</p>
                        }.into_any(),
                        Ok(list) if list.is_empty() => view! {
                            <p class="empty" data-testid="no-spaces">
                                "You have no spaces yet. Choose “New space” to create one from a template."
                            </p>
                        }.into_any(),
                        Ok(list) => list.into_iter().map(|space| view! { <SpaceCard space actions /> }).collect_view().into_any(),
                    })}
                </Transition>
            </div>
        </section>
    }
}

/// Name and template of a new space (and a repository to clone into it), with what it would
/// use against what is left. `repository`: filled in (`/new?repo=`); `created`: told of the
/// new space (else the dialog just closes).
#[component]
pub fn CreateSpaceDialog(
    close: Callback<()>,
    #[prop(optional)] repository: Option<crate::api::repos::RepositoryInput>,
    #[prop(optional)] created: Option<Callback<SpaceDto>>,
) -> impl IntoView {
    let live = Live::get();
    let templates = Resource::new(|| (), |_| all_pages(usable_templates));
    let name = RwSignal::new(String::new());
    let template_id = RwSignal::new(String::new());
    let given = repository.unwrap_or_default();
    let repo_url = RwSignal::new(given.url);
    let repo_branch = RwSignal::new(given.branch.unwrap_or_default());
    let repo_folder = RwSignal::new(given.folder.unwrap_or_default());
    // The preview follows the template and every pushed change of usage.
    let preview = Resource::new(
        move || (template_id.get(), live.usage.get()),
        |(id, _)| async move {
            if id.is_empty() {
                None
            } else {
                Some(create_preview(TemplateId(id)).await)
            }
        },
    );
    let create = Action::new(|input: &CreateSpace| {
        let input = input.clone();
        async move { create_space(input).await }
    });
    let error = last_error(create);
    Effect::new(move |_| {
        if let Some(Ok(space)) = create.value().get() {
            live.spaces.update(|n| *n += 1);
            match created {
                Some(created) => created.run(space),
                None => close.run(()),
            }
        }
    });
    // The first template is chosen once they are loaded.
    Effect::new(move |_| {
        if template_id.with_untracked(|t| t.is_empty()) {
            if let Some(Ok(list)) = templates.get() {
                if let Some(first) = list.first() {
                    template_id.set(first.id.to_string());
                }
            }
        }
    });
    let refusal = move || -> Option<String> {
        if name.with(|n| n.trim().is_empty()) {
            return Some("Type a name for the space.".into());
        }
        match preview.get().flatten() {
            Some(Ok(p)) => p.refusal,
            Some(Err(e)) => Some(e.message),
            None => Some("Choose a template.".into()),
        }
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if refusal().is_none() {
            create.dispatch(CreateSpace {
                name: name.get_untracked().trim().to_owned(),
                template_id: TemplateId(template_id.get_untracked()),
                owner_id: None,
                repository: super::repos::repository_input(
                    &repo_url.get_untracked(),
                    &repo_branch.get_untracked(),
                    &repo_folder.get_untracked(),
                ),
            });
        }
    };
    view! {
        <form class="dialog stack" data-testid="create-space" on:submit=submit aria-label="Create a space">
            <h3>"New space"</h3>
            <label>"Name"
                <input type="text" data-testid="space-name" bind:value=name autocomplete="off"
                    placeholder="e.g. api" required=true autofocus=true />
                {field_error(error, "name")}
            </label>
            <Transition fallback=|| view! { <p>"Loading templates…"</p> }>
                {move || templates.get().map(|result| match result {
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">"No template is available to you yet: ask your administrator to create one or to add you to a group that may use one."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <fieldset class="templates" data-testid="template-picker">
                            <legend>"Template"</legend>
                            {list.into_iter().map(|t| {
                                let id = t.id.to_string();
                                let checked_id = t.id.to_string();
                                view! {
                                    <label class="choice">
                                        <input type="radio" name="template" value=t.id.to_string()
                                            prop:checked=move || template_id.with(|s| *s == checked_id)
                                            on:change=move |_| template_id.set(id.clone()) />
                                        <span><strong>{t.name.clone()}</strong>
                                            {format!(" — {} CU, {} SU", t.compute_units, t.storage_units)}
                                            {(!t.description.is_empty()).then(|| view! { <span class="hint">" " {t.description.clone()}</span> })}
                                        </span>
                                    </label>
                                }
                            }).collect_view()}
                            {field_error(error, "template_id")}
                        </fieldset>
                    }.into_any(),
                })}
            </Transition>
            <Transition fallback=|| ()>
                {move || preview.get().flatten().map(|result| match result {
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                    Ok(p) => view! {
                        <div class="preview" data-testid="create-preview">
                            <p class="hint">"After creating it (compute counts while it runs):"</p>
                            <QuotaBar label="Spaces" unit="" used=p.usage.spaces quota=p.quota.max_spaces planned=p.after_create.spaces />
                            <QuotaBar label="Compute" unit=" CU" used=p.usage.compute_units quota=p.quota.compute_units planned=p.after_start.compute_units />
                            <QuotaBar label="Storage" unit=" SU" used=p.usage.storage_units quota=p.quota.storage_units planned=p.after_create.storage_units />
                            {p.start_refusal.map(|r| view! { <p class="hint warn" data-testid="start-warning">"You could create it but not start it now: " {r}</p> })}
                        </div>
                    }.into_any(),
                })}
            </Transition>
            <fieldset class="row" data-testid="repository-fields">
                <legend>"Repository to clone at the first start (optional)"</legend>
                <label>"URL" <input type="text" data-testid="repo-url" bind:value=repo_url autocomplete="off"
                    placeholder="https://github.com/owner/project.git" />{field_error(error, "repository.url")}</label>
                <label>"Branch" <input type="text" data-testid="repo-branch" bind:value=repo_branch autocomplete="off"
                    placeholder="the default branch" />{field_error(error, "repository.branch")}</label>
                <label>"Folder in the home" <input type="text" data-testid="repo-folder" bind:value=repo_folder autocomplete="off"
                    placeholder="the repository's name" />{field_error(error, "repository.folder")}</label>
            </fieldset>
            {form_error(error, &["name", "template_id", "repository.url", "repository.branch", "repository.folder"])}
            <div class="actions">
                <button type="submit" class="primary" data-testid="create"
                    disabled=move || refusal().is_some() || create.pending().get()>
                    {move || if create.pending().get() { "Creating…" } else { "Create space" }}
                </button>
                <button type="button" class="secondary" on:click=move |_| close.run(())>"Cancel"</button>
            </div>
            {move || refusal().map(|r| view! { <p class="hint" data-testid="create-disabled-reason">{r}</p> })}
        </form>
    }
}
