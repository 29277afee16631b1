//! SSH into spaces, as the pages show it: the `~/.ssh/config` entries to copy (all of the
//! user's spaces on the profile, one on the space page) and the space's live sessions.

use leptos::prelude::*;

use crate::api::spaces::SpaceDto;
use crate::api::ssh::{live_sessions, ssh_config, LiveSessionsDto, SshConfigDto};
use crate::api::templates::Feature;
use crate::error::ApiError;
use crate::ids::SpaceId;
use crate::live::Live;

/// The `~/.ssh/config` entries of every space of the user, to copy (profile page).
#[component]
pub fn SshConfigPanel() -> impl IntoView {
    let live = Live::get();
    let config = Resource::new(move || live.spaces.get(), |_| ssh_config());
    view! {
        <section class="panel" data-testid="ssh-config">
            <h2>"SSH"</h2>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || config.get().map(|r| match r {
                    Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                    Ok(config) if !config.enabled => view! {
                        <p class="empty">"The SSH gateway of this Hangar is turned off."</p>
                    }.into_any(),
                    Ok(config) => view! {
                        <p class="hint">"Add this to " <code>"~/.ssh/config"</code> ", then "
                            <code>"ssh hangar-<space>"</code> " (also " <code>"scp"</code> ", "
                            <code>"sftp"</code> ", " <code>"rsync"</code> " and " <code>"ssh -L"</code>
                            " work the same way). You sign in with the SSH keys above; the space must be running."</p>
                        <CopyBlock text=config.text.clone() testid="ssh-config-text" />
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// What the space page's SSH panel reads, made with the page (see `SpaceView`).
#[derive(Clone, Copy)]
pub struct SpaceSsh {
    config: Resource<Result<SshConfigDto, ApiError>>,
    sessions: Resource<Result<LiveSessionsDto, ApiError>>,
}

impl SpaceSsh {
    pub fn new(id: Signal<SpaceId>) -> Self {
        let live = Live::get();
        SpaceSsh {
            config: Resource::new(move || live.spaces.get(), |_| ssh_config()),
            sessions: Resource::new(
                move || (id.get(), live.spaces.get()),
                |(id, _)| live_sessions(id),
            ),
        }
    }
}

/// How to reach one space over SSH, and who is in it now (space page).
#[component]
pub fn SpaceSshPanel(space: SpaceDto, state: SpaceSsh) -> impl IntoView {
    let SpaceSsh { config, sessions } = state;
    let id = space.id.clone();
    let running = space.state.is_running();
    let offered = space.allowed_features.contains(&Feature::Ssh);
    view! {
        <section class="panel" data-testid="space-ssh">
            <h2>"SSH"</h2>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || {
                    let id = id.clone();
                    config.get().map(move |r| match r {
                        Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                        Ok(SshConfigDto { enabled: false, .. }) => view! {
                            <p class="empty">"The SSH gateway of this Hangar is turned off."</p>
                        }.into_any(),
                        Ok(config) => match config.hosts.into_iter().find(|h| h.space_id == id) {
                            // The gateway takes the owner and those the space is shared with.
                            None if offered => view! {
                                <p class="empty">"SSH into this space is for its owner and the people it is shared with."</p>
                            }.into_any(),
                            None => view! {
                                <p class="empty">"SSH is not among the features you may use here (its template's, and what an administrator allows)."</p>
                            }.into_any(),
                            Some(host) => view! {
                                <p>"Connect with " <code data-testid="ssh-command">{format!("ssh -p {} {}@{}", config.port, host.user, config.host)}</code>
                                    ", or add this to " <code>"~/.ssh/config"</code> " and use " <code>{format!("ssh {}", host.alias)}</code> ":"</p>
                                <CopyBlock text=host.text.clone() testid="space-ssh-config" />
                                {(!running).then(|| view! { <p class="hint">"Start the space to connect."</p> })}
                            }.into_any(),
                        },
                    })
                }}
            </Transition>
            <Transition fallback=|| ()>
                {move || sessions.get().and_then(Result::ok).map(|n| view! {
                    <p class="hint" data-testid="live-sessions">
                        {format!("Open now: {} SSH connection{}, {} web terminal session{}.",
                            n.ssh, if n.ssh == 1 { "" } else { "s" },
                            n.terminal, if n.terminal == 1 { "" } else { "s" })}
                    </p>
                })}
            </Transition>
        </section>
    }
}

/// Text to copy: shown whole, selected on focus, with a button that copies it.
#[component]
fn CopyBlock(text: String, testid: &'static str) -> impl IntoView {
    let copied = RwSignal::new(false);
    let rows = text.lines().count().clamp(2, 24);
    let to_copy = text.clone();
    let copy = move |_| {
        copy_to_clipboard(&to_copy);
        copied.set(true);
    };
    view! {
        <div class="copy-block">
            <textarea readonly=true rows=rows.to_string() spellcheck="false" data-testid=testid
                on:focus=|ev| select_all(&ev)>{text}</textarea>
            <button type="button" class="secondary" on:click=copy>
                {move || if copied.get() { "Copied" } else { "Copy" }}
            </button>
        </div>
    }
}

fn select_all(ev: &leptos::ev::FocusEvent) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        if let Some(area) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlTextAreaElement>().ok())
        {
            area.select();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ev;
}

/// `navigator.clipboard.writeText(text)`, where the browser offers it (secure pages only).
fn copy_to_clipboard(text: &str) {
    #[cfg(feature = "hydrate")]
    {
        use js_sys::{Function, Reflect};
        use wasm_bindgen::{JsCast, JsValue};
        let clipboard = Reflect::get(&window(), &JsValue::from_str("navigator"))
            .and_then(|navigator| Reflect::get(&navigator, &JsValue::from_str("clipboard")));
        if let Ok(clipboard) = clipboard {
            if let Ok(write) = Reflect::get(&clipboard, &JsValue::from_str("writeText")) {
                if let Some(write) = write.dyn_ref::<Function>() {
                    let _ = write.call1(&clipboard, &JsValue::from_str(text));
                }
            }
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = text;
}
