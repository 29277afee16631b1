//! Spaces from a repository: `/new?repo=<url>[&branch=…]` (the create dialog filled in, a link
//! a team puts in its README), and the space page's panel of its repository's clone and the
//! owner's dotfiles, with their live log and "Clone again".

use leptos::prelude::*;

use super::dashboard::{CreateSpaceDialog, SignedIn};
use super::widgets::{field_error, form_error, last_error, refreshing, ConfirmButton};
use crate::api::auth::UserDto;
use crate::api::repos::{
    clone_again, delete_git_credential, delete_git_ssh_key, make_git_ssh_key, my_git_credentials,
    my_git_ssh_key, rebuild, set_dotfiles, set_git_credential, BuildState, DevContainerStatus,
    DotfilesSetting, RepositoryInput, SetGitCredential, SetupState,
};
use crate::api::spaces::SpaceDto;
use crate::components::time::RelativeTime;
use crate::ids::SpaceId;
use crate::live::Live;

/// The repository a form names, if its URL is filled in (blank branch and folder: defaults).
pub fn repository_input(url: &str, branch: &str, folder: &str) -> Option<RepositoryInput> {
    let given = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    Some(RepositoryInput {
        url: given(url)?,
        branch: given(branch),
        folder: given(folder),
    })
}

/// `/new?repo=<url>[&branch=…][&folder=…]`: the create dialog, filled in; once created, the
/// new space's page (where its clone shows).
#[component]
pub fn NewSpacePage() -> impl IntoView {
    view! { <SignedIn page=|_: UserDto| view! { <NewSpace /> } /> }
}

#[component]
fn NewSpace() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let (url, branch, folder) = query.with_untracked(|q| {
        (
            q.get("repo").unwrap_or_default(),
            q.get("branch").unwrap_or_default(),
            q.get("folder").unwrap_or_default(),
        )
    });
    let repository = repository_input(&url, &branch, &folder);
    view! {
        <section class="panel">
            <h1>"New space"</h1>
            {repository.as_ref().map(|r| view! {
                <p class="hint" data-testid="new-from-repo">"From the repository " <code>{r.url.clone()}</code></p>
            })}
            <CreateSpaceDialog repository=repository.clone().unwrap_or_default()
                close=Callback::new(|_| super::reload_to("/"))
                created=Callback::new(|space: SpaceDto| super::reload_to(&format!("/spaces/{}", space.id))) />
        </section>
    }
}

fn state_text(state: SetupState, done: &'static str) -> &'static str {
    match state {
        SetupState::Waiting => "waits for the first start",
        SetupState::Cloning => "cloning…",
        SetupState::Cloned => done,
        SetupState::Failed => "failed",
    }
}

/// The space's repository and dotfiles with what their setup printed, as it prints.
#[component]
pub fn RepositoryPanel(space: SpaceDto) -> impl IntoView {
    if space.repository.is_none() && space.dotfiles.is_none() && space.setup_log.is_none() {
        return ().into_any();
    }
    let live = Live::get();
    let again = refreshing(
        live.spaces,
        Action::new(|id: &SpaceId| {
            let id = id.clone();
            async move { clone_again(id).await }
        }),
    );
    let error = last_error(again);
    let id = space.id.clone();
    let may_clone_again = space.can_manage
        && space.state.is_running()
        && space
            .repository
            .as_ref()
            .is_some_and(|r| r.state == SetupState::Failed);
    let devcontainer = space
        .devcontainer
        .clone()
        .map(|d| view! { <DevContainerPart space=space.clone() status=d /> });
    view! {
        <section class="panel" data-testid="repository">
            <h2>{if space.repository.is_some() { "Repository" } else { "First-start setup" }}</h2>
            {(space.repository.is_none() && space.dotfiles.is_none()).then(|| view! {
                <p class="hint">"What Hangar printed while setting your git identity up in this space:"</p>
            })}
            {space.repository.clone().map(|r| view! {
                <p data-testid="clone-state" data-state=r.state.as_str()>
                    <code>{r.url.clone()}</code>
                    {r.branch.clone().map(|b| view! { " (branch " <code>{b}</code> ")" })}
                    " into " <code>{format!("~/{}", r.folder)}</code> ": "
                    <strong>{state_text(r.state, "cloned")}</strong>
                </p>
                {r.error.clone().map(|e| view! { <p class="error" data-testid="clone-error">"The clone failed: " {e}</p> })}
            })}
            {space.dotfiles.clone().map(|d| view! {
                <p data-testid="dotfiles-state" data-state=d.state.as_str()>
                    "Dotfiles " <code>{d.url.clone()}</code> ": " <strong>{state_text(d.state, "installed")}</strong>
                </p>
                {d.error.clone().map(|e| view! { <p class="error" data-testid="dotfiles-error">"The dotfiles were not installed: " {e}</p> })}
            })}
            {may_clone_again.then(|| view! {
                <button type="button" class="primary" data-testid="clone-again" disabled=move || again.pending().get()
                    on:click=move |_| { again.dispatch(id.clone()); }>"Clone again"</button>
            })}
            {form_error(error, &[])}
            {devcontainer}
            {space.setup_log.clone().map(|log| view! { <pre class="log" data-testid="setup-log">{log}</pre> })}
        </section>
    }
    .into_any()
}

fn build_text(state: BuildState) -> &'static str {
    match state {
        BuildState::Reading => "reading the file…",
        BuildState::Building => "building the image…",
        BuildState::Built => "built",
        BuildState::Failed => "not applied",
        BuildState::Absent => "none in the repository (the template's image)",
    }
}

/// The image built from the repository's `devcontainer.json`: its state, what of the file was
/// not applied and why, the ports it asks for, and "Rebuild".
#[component]
fn DevContainerPart(space: SpaceDto, status: DevContainerStatus) -> impl IntoView {
    let live = Live::get();
    let again = refreshing(
        live.spaces,
        Action::new(|id: &SpaceId| {
            let id = id.clone();
            async move { rebuild(id).await }
        }),
    );
    let error = last_error(again);
    let id = space.id.clone();
    let busy = matches!(status.state, BuildState::Reading | BuildState::Building);
    let may_rebuild = space.can_manage && space.state.is_running() && !busy;
    let ignored = status.ignored.clone();
    let ports = status.ports.clone();
    view! {
        <div data-testid="devcontainer" data-state=status.state.as_str()>
            <p>
                {status.config.clone().map_or_else(
                    || view! { "devcontainer.json" }.into_any(),
                    |c| view! { <code>{c}</code> }.into_any(),
                )}
                ": " <strong>{build_text(status.state)}</strong>
                {status.image.clone().map(|i| view! { ", the space runs " <code>{i}</code> })}
            </p>
            {status.error.clone().map(|e| view! { <p class="error" data-testid="devcontainer-error">{e}</p> })}
            {(!ports.is_empty()).then(|| view! {
                <p data-testid="devcontainer-ports">"Ports it forwards: "
                    {ports.into_iter().map(|p| view! {
                        <code>{p.port}</code>{p.label.map(|l| format!(" ({l})"))}" "
                    }).collect_view()}
                    "(open them from the ports panel once they listen)"
                </p>
            })}
            {(!ignored.is_empty()).then(|| view! {
                <details data-testid="devcontainer-ignored">
                    <summary>{format!("Not applied from the file ({})", ignored.len())}</summary>
                    <ul>{ignored.into_iter().map(|i| view! { <li>{i}</li> }).collect_view()}</ul>
                </details>
            })}
            {may_rebuild.then(|| view! {
                <button type="button" data-testid="rebuild" disabled=move || again.pending().get()
                    title="Read devcontainer.json again, build the image (unless nothing changed) and restart the space on it; the volumes stay"
                    on:click=move |_| { again.dispatch(id.clone()); }>"Rebuild"</button>
            })}
            {form_error(error, &[])}
        </div>
    }
}

/// The caller's dotfiles repository (the profile page).
#[component]
pub fn DotfilesForm(current: Option<String>) -> impl IntoView {
    let url = RwSignal::new(current.unwrap_or_default());
    let save = Action::new(|url: &Option<String>| {
        let url = url.clone();
        async move { set_dotfiles(DotfilesSetting { url }).await }
    });
    let error = last_error(save);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = url.get_untracked().trim().to_owned();
        save.dispatch((!text.is_empty()).then_some(text));
    };
    view! {
        <section class="panel">
            <h2>"Dotfiles"</h2>
            <form class="row" on:submit=submit data-testid="dotfiles-form">
                <label>"Repository cloned into ~/.dotfiles at the first start of each new space and installed (its install.sh, bootstrap or setup script; else its dotfiles are linked into the home). Empty: none."
                    <input type="text" data-testid="dotfiles-url" bind:value=url placeholder="https://github.com/me/dotfiles.git" />
                    {field_error(error, "url")}</label>
                <button type="submit" class="primary" disabled=move || save.pending().get()>"Save"</button>
            </form>
            {form_error(error, &["url"])}
            {move || matches!(save.value().get(), Some(Ok(_))).then(|| view! { <p class="ok" role="status">"Saved."</p> })}
        </section>
    }
}

/// The caller's tokens for git hosts (the profile page): set or not, when last used; a token
/// is never shown again once saved.
#[component]
pub fn GitCredentialsPanel() -> impl IntoView {
    let host = RwSignal::new(String::new());
    let username = RwSignal::new(String::new());
    let token = RwSignal::new(String::new());
    let save = Action::new(|(host, input): &(String, SetGitCredential)| {
        let (host, input) = (host.clone(), input.clone());
        async move { set_git_credential(host, input).await }
    });
    let remove = Action::new(|host: &String| {
        let host = host.clone();
        async move { delete_git_credential(host).await }
    });
    let saved = Resource::new(
        move || (save.version().get(), remove.version().get()),
        |_| my_git_credentials(),
    );
    let error = last_error(save);
    Effect::new(move |_| {
        if let Some(Ok(_)) = save.value().get() {
            token.set(String::new());
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = username.get_untracked().trim().to_owned();
        save.dispatch((
            host.get_untracked().trim().to_owned(),
            SetGitCredential {
                username: (!name.is_empty()).then_some(name),
                token: token.get_untracked().trim().to_owned(),
            },
        ));
    };
    view! {
        <section class="panel" data-testid="git-credentials">
            <h2>"Git credentials"</h2>
            <p class="hint">"Tokens for git hosts, kept encrypted: git in your own spaces gets them when it asks (never while a space is shared), without a token in the space. A token is not shown again once saved."</p>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || saved.get().map(|r| match r {
                    Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No git tokens saved."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="list">
                            <thead><tr><th>"Host"</th><th>"User name"</th><th>"Token"</th><th>"Last used"</th><th></th></tr></thead>
                            <tbody>{list.into_iter().map(|c| {
                                let gone = c.host.clone();
                                view! { <tr data-host=c.host.clone()><td><code>{c.host.clone()}</code></td><td>{c.username}</td>
                                    <td>"set " <RelativeTime at=c.created_at /></td>
                                    <td><RelativeTime at=c.last_used_at /></td>
                                    <td><ConfirmButton label="Remove" question=format!("Remove the token for {}?", c.host)
                                        on_confirm=Callback::new(move |_| { remove.dispatch(gone.clone()); }) /></td></tr> }
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            <form class="row" on:submit=submit>
                <label>"Host" <input type="text" bind:value=host placeholder="github.com" required=true />{field_error(error, "host")}</label>
                <label>"User name (optional)" <input type="text" bind:value=username placeholder="git" />{field_error(error, "username")}</label>
                <label>"Token" <input type="password" bind:value=token autocomplete="off" required=true />{field_error(error, "token")}</label>
                <button type="submit" class="primary" disabled=move || save.pending().get()>"Save"</button>
            </form>
            {form_error(error, &["host", "username", "token"])}
        </section>
    }
}

/// The caller's SSH key for git hosts (the profile page): Hangar makes it; the page shows the
/// public half to add to the git host, and when git last used it.
#[component]
pub fn GitSshKeyPanel() -> impl IntoView {
    let make = Action::new(|_: &()| make_git_ssh_key());
    let remove = Action::new(|_: &()| delete_git_ssh_key());
    let current = Resource::new(
        move || (make.version().get(), remove.version().get()),
        |_| my_git_ssh_key(),
    );
    let error = last_error(make);
    view! {
        <section class="panel" data-testid="git-ssh-key">
            <h2>"SSH key for git"</h2>
            <p class="hint">"For repositories cloned over SSH (git@host:owner/project.git): Hangar makes a key and keeps its private half encrypted; git in your own spaces uses it (never while a space is shared). Add the public key below to your git host. An agent you forward with ssh -A through Hangar's gateway is used instead when it holds keys."</p>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || current.get().map(|r| match r {
                    Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                    Ok(None) => view! {
                        <p class="empty">"No SSH key for git yet."</p>
                        <button type="button" class="primary" data-testid="make-git-ssh-key"
                            disabled=move || make.pending().get()
                            on:click=move |_| { make.dispatch(()); }>"Make a key"</button>
                    }.into_any(),
                    Ok(Some(key)) => view! {
                        <pre class="log" data-testid="git-ssh-public-key">{key.public_key.clone()}</pre>
                        <p>"Fingerprint " <code>{key.fingerprint.clone()}</code> ", made " <RelativeTime at=key.created_at />
                            ", last used " <RelativeTime at=key.last_used_at /></p>
                        <div class="row">
                            <ConfirmButton label="Replace" question="Replace the key? Git hosts refuse the old one: add the new public key to them.".to_owned()
                                on_confirm=Callback::new(move |_| { make.dispatch(()); }) />
                            <ConfirmButton label="Remove" question="Remove the SSH key for git?".to_owned()
                                on_confirm=Callback::new(move |_| { remove.dispatch(()); }) />
                        </div>
                    }.into_any(),
                })}
            </Transition>
            {form_error(error, &[])}
        </section>
    }
}
