//! One space: its details, state history, terminal panel and sharing.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::dashboard::{SignedIn, SpaceActions, SpaceButtons};
use super::terminal::TerminalPanel;
use super::widgets::{field_error, form_error, last_error, refreshing, StateBadge};
use crate::api::auth::{UserDto, UserRef};
use crate::api::spaces::{
    get_space, revoke_share, share_space, space_history, space_storage, ShareDto, SpaceDto,
    VolumeUsage,
};
use crate::components::size::{bytes_text, exact_bytes};
use crate::components::time::RelativeTime;
use crate::error::{ApiError, ErrorCode};
use crate::ids::{SpaceId, UserId};
use crate::live::Live;

#[component]
pub fn SpacePage() -> impl IntoView {
    view! { <SignedIn page=|_: UserDto| view! { <SpaceView /> } /> }
}

#[component]
fn SpaceView() -> impl IntoView {
    let params = use_params_map();
    let id = move || SpaceId(params.with(|p| p.get("id").unwrap_or_default()));
    let live = Live::get();
    let space = Resource::new(move || (id(), live.spaces.get()), |(id, _)| get_space(id));
    let history = Resource::new(
        move || (id(), live.spaces.get()),
        |(id, _)| space_history(id),
    );
    let actions = SpaceActions::new();
    let action_error = actions.error();
    // Kept above the parts redrawn on every live change, so typing and messages survive them.
    let sharing = SharingState::new();
    let ports = super::ports::PortsState::new(Signal::derive(id));
    // Every resource of the page is made here, before the parts that read it: made inside a
    // `Transition`'s children, a resource is numbered differently on the server (which makes
    // it after the outer one resolved) and in the browser, and hydration fails.
    let storage = Resource::new(
        move || (id(), live.spaces.get()),
        |(id, _)| space_storage(id),
    );
    let ssh = super::ssh::SpaceSsh::new(Signal::derive(id));
    let usage_state = super::usage::UsageState::new();
    let usage = Resource::new(
        move || (id(), usage_state.range.get(), usage_state.tick.get()),
        |(id, range, _)| crate::api::usage::space_usage(id, range),
    );
    // Refetched when saved, not on every live change: the form's typing survives those.
    let stops_saved = RwSignal::new(0u64);
    let stops = Resource::new(
        move || (id(), stops_saved.get()),
        |(id, _)| crate::api::autostop::space_autostop(id),
    );
    Effect::new(move |_| {
        if let Some(Ok(None)) = actions.delete.value().get() {
            super::reload_to("/");
        }
    });
    view! {
        <Transition fallback=|| view! { <p>"Loading the space…"</p> }>
            {move || space.get().map(|result| match result {
                Err(e) if e.code == ErrorCode::NotFound => view! {
                    <section class="panel" data-testid="space-gone">
                        <h1>"No such space"</h1>
                        <p>"This space does not exist (any more) or is not shared with you. "
                            <a href="/">"Back to the dashboard"</a></p>
                    </section>
                }.into_any(),
                Err(e) => view! { <p class="error" role="alert">"Could not load the space: " {e.message}</p> }.into_any(),
                Ok(space) => view! {
                    <Details space=space.clone() actions storage />
                    {move || action_error().map(|e| view! { <p class="error" role="alert" data-testid="action-error">{e.message}</p> })}
                    <super::repos::RepositoryPanel space=space.clone() />
                    <TerminalSection space=space.clone() />
                    <super::ssh::SpaceSshPanel space=space.clone() state=ssh />
                    <super::ports::PortsSection space=space.clone() state=ports />
                    <super::autostop::ScheduleEditor space=space.clone() settings=stops saved=stops_saved />
                    {space.can_manage.then(|| view! { <Sharing space=space.clone() state=sharing /> })}
                }.into_any(),
            })}
        </Transition>
        <super::usage::UsagePanel usage state=usage_state />
        <super::files::FilesPanel space />
        <section class="panel">
            <h2>"History"</h2>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || history.get().map(|result| match result {
                    Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                    Ok(events) if events.is_empty() => view! { <p class="empty">"Nothing has happened to this space yet."</p> }.into_any(),
                    Ok(events) => view! {
                        <table class="list" data-testid="history">
                            <thead><tr><th>"When"</th><th>"Who"</th><th>"What"</th><th>"Outcome"</th></tr></thead>
                            <tbody>
                                {events.into_iter().map(|e| view! {
                                    <tr><td><RelativeTime at=e.at /></td><td>{e.actor}</td><td>{e.action}</td>
                                        <td class=format!("outcome {}", e.outcome)>{e.outcome.clone()}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// One volume: where it is mounted and what it holds of its size.
fn volume_text(volume: &VolumeUsage) -> String {
    let used = match volume.used_bytes {
        Some(used) => format!(
            "{} used of {} GiB",
            bytes_text(used as f64),
            volume.size_gib
        ),
        None => format!("{} GiB, use not measured", volume.size_gib),
    };
    let limit = if volume.enforced {
        ""
    } else {
        " (size not enforced)"
    };
    format!("{} at {}: {used}{limit}", volume.name, volume.mount_path)
}

/// The space's volumes with what each holds, measured when the page (or the space) changes.
#[component]
fn Volumes(space: SpaceDto, usage: Resource<Result<Vec<VolumeUsage>, ApiError>>) -> impl IntoView {
    if space.volumes.is_empty() {
        return view! { <dd>"none"</dd> }.into_any();
    }
    let declared = space
        .volumes
        .iter()
        .map(|v| format!("{} at {} ({} GiB)", v.name, v.mount_path, v.size_gib))
        .collect::<Vec<_>>()
        .join(", ");
    view! {
        <dd data-testid="volumes">
            <Transition fallback=move || declared.clone()>
                {move || usage.get().map(|result| match result {
                    Ok(volumes) => volumes.iter().map(|v| view! {
                        <span class="volume" data-testid="volume-usage" data-volume=v.name.clone()
                            data-used=v.used_bytes.map(|b| b.to_string()) data-enforced=v.enforced.to_string()
                            title=v.used_bytes.map(|b| format!("{} used", exact_bytes(b.max(0) as u64)))>
                            {volume_text(v)}</span>
                    }).collect_view().into_any(),
                    Err(e) => view! { <span class="error">{e.message}</span> }.into_any(),
                })}
            </Transition>
        </dd>
    }
    .into_any()
}

/// A person as the page names them: `Ann Lee (ann)`, or `ann` when that is their name too.
fn person_name(user: &UserRef) -> String {
    if user.display_name == user.username {
        user.username.clone()
    } else {
        format!("{} ({})", user.display_name, user.username)
    }
}

#[component]
fn Details(
    space: SpaceDto,
    actions: SpaceActions,
    storage: Resource<Result<Vec<VolumeUsage>, ApiError>>,
) -> impl IntoView {
    view! {
        <section class="panel" data-testid="space-details" data-state=space.state.as_str()>
            <div class="panel-head">
                <h1>{space.name.clone()}</h1>
                <StateBadge state=space.state />
            </div>
            <dl class="facts">
                <dt>"Owner"</dt><dd data-testid="owner">{person_name(&space.owner)}
                    {space.shared_with_me.then(|| view! { <span>" — shared with you"</span> })}</dd>
                <dt>"Template"</dt><dd>{space.template_name.clone()}</dd>
                <dt>"Units"</dt><dd>{format!("{} CU, {} SU", space.compute_units, space.storage_units)}</dd>
                <dt>"Image"</dt><dd><code>{space.image.clone()}</code></dd>
                <dt>"Volumes"</dt><Volumes space=space.clone() usage=storage />
                {space.privileged.then(|| view! { <dt>"Rights"</dt><dd>"Docker-in-Docker (privileged template)"</dd> })}
                {(space.raw_sockets && !space.privileged).then(|| view! { <dt>"Rights"</dt><dd>"Raw sockets"</dd> })}
                {space.devcontainer_run_options.then(|| view! { <dt>"Run options"</dt><dd>"its devcontainer.json may set them (privileged, capAdd, tmpfs mounts)"</dd> })}
                <dt>"Created"</dt><dd data-testid="created"><RelativeTime at=space.created_at.clone() /></dd>
                {space.started_at.clone().map(|t| view! { <dt>"Started"</dt><dd><RelativeTime at=t /></dd> })}
                {space.stopped_at.clone().map(|t| view! { <dt>"Stopped"</dt><dd><RelativeTime at=t /></dd> })}
                <dt>"Last activity"</dt><dd data-testid="last-activity"><super::autostop::LastSeen space=space.clone() /></dd>
            </dl>
            {space.last_error.clone().map(|e| view! { <p class="error" data-testid="last-error">"Last error: " {e}</p> })}
            <super::autostop::AutoStopLine space=space.clone() />
            <SpaceButtons space=space.clone() actions on_its_page=true />
        </section>
    }
}

#[component]
fn TerminalSection(space: SpaceDto) -> impl IntoView {
    let open = RwSignal::new(false);
    let allowed = space
        .allowed_features
        .contains(&crate::api::templates::Feature::Terminal);
    let running = space.state.is_running() && allowed;
    let id = space.id.clone();
    view! {
        <section class="panel">
            <div class="panel-head">
                <h2>"Terminal"</h2>
                {running.then(|| view! {
                    <button type="button" class="secondary" data-testid="terminal-toggle"
                        on:click=move |_| open.update(|o| *o = !*o)>
                        {move || if open.get() { "Hide the terminal" } else { "Open a terminal here" }}
                    </button>
                })}
            </div>
            {(!allowed).then(|| view! { <p class="empty">"The web terminal is not among the features you may use here."</p> })}
            {(allowed && !running).then(|| view! { <p class="empty">"Start the space to open a terminal."</p> })}
            <Show when=move || open.get() && running>
                <TerminalPanel space_id=id.clone() />
            </Show>
        </section>
    }
}

/// The sharing form's input and actions.
#[derive(Clone, Copy)]
struct SharingState {
    username: RwSignal<String>,
    share: Action<(SpaceId, String), Result<Vec<ShareDto>, ApiError>>,
    revoke: Action<(SpaceId, UserId), Result<Vec<ShareDto>, ApiError>>,
}

impl SharingState {
    fn new() -> Self {
        let live = Live::get();
        let username = RwSignal::new(String::new());
        let share = refreshing(
            live.spaces,
            Action::new(|(id, name): &(SpaceId, String)| {
                let (id, name) = (id.clone(), name.clone());
                async move { share_space(id, name).await }
            }),
        );
        let revoke = refreshing(
            live.spaces,
            Action::new(|(id, user): &(SpaceId, UserId)| {
                let (id, user) = (id.clone(), user.clone());
                async move { revoke_share(id, user).await }
            }),
        );
        Effect::new(move |_| {
            if let Some(Ok(_)) = share.value().get() {
                username.set(String::new());
            }
        });
        Self {
            username,
            share,
            revoke,
        }
    }
}

#[component]
fn Sharing(space: SpaceDto, state: SharingState) -> impl IntoView {
    let SharingState {
        username,
        share,
        revoke,
    } = state;
    let share_error = last_error(share);
    let revoke_error = last_error(revoke);
    let id = space.id.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = username.get_untracked().trim().to_owned();
        if !name.is_empty() {
            share.dispatch((id.clone(), name));
        }
    };
    let space_id = space.id.clone();
    view! {
        <section class="panel" data-testid="sharing">
            <h2>"Sharing"</h2>
            <p class="hint">"People you share with can see this space and use its terminal; they cannot change, share or delete it."</p>
            <form class="row" on:submit=submit>
                <label>"Username"
                    <input type="text" data-testid="share-username" bind:value=username placeholder="e.g. alice" />
                    {field_error(share_error, "user")}
                </label>
                <button type="submit" class="primary" data-testid="share" disabled=move || share.pending().get()>"Share"</button>
            </form>
            {form_error(share_error, &["user"])}
            {form_error(revoke_error, &[])}
            {if space.shared_with.is_empty() {
                view! { <p class="empty" data-testid="no-shares">"Not shared with anyone."</p> }.into_any()
            } else {
                view! {
                    <ul class="shares" data-testid="shares">
                        {space.shared_with.into_iter().map(|s| {
                            let (sid, uid) = (space_id.clone(), s.user.id.clone());
                            view! {
                                <li data-user=s.user.username.clone()>
                                    <span>{person_name(&s.user)}</span>
                                    <span class="hint">" since " <RelativeTime at=s.granted_at /></span>
                                    <button type="button" class="secondary" data-testid="revoke"
                                        on:click=move |_| { revoke.dispatch((sid.clone(), uid.clone())); }>"Revoke"</button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
    }
}
