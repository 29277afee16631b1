//! The ways into a running space besides its terminal: the apps Hangar runs there (VS Code,
//! a desktop), the ports listening inside it (pushed live by the server), its public links
//! (tunnels), the VS Code tunnel's sign-in code, and the features the viewer may use.

use leptos::prelude::*;

use super::widgets::{last_error, refreshing, ConfirmButton};
use crate::api::ports::{
    create_tunnel, my_tunnels, open_link, revoke_tunnel, space_tunnels, vscode_tunnel, AppKind,
    AppLink, SpacePorts, TunnelCreated, TunnelDto,
};
use crate::api::spaces::SpaceDto;
use crate::api::templates::Feature;
use crate::components::time::RelativeTime;
use crate::error::ApiError;
use crate::ids::{SpaceId, TunnelId};
use crate::live::Live;

/// Buttons opening the apps of a running space, each in a tab of its own.
#[component]
pub fn AppButtons(apps: Vec<AppLink>) -> impl IntoView {
    apps.into_iter()
        .map(|app| {
            let testid = match app.kind {
                AppKind::VsCode => "open-vscode",
                AppKind::Desktop => "open-desktop",
            };
            // `rel=external`: a full page load, never the router (the page is not Hangar's).
            let href = open_link(&app.url);
            view! { <a class="button" href=href target="_blank" rel="external noopener" data-testid=testid>{app.label}</a> }
        })
        .collect_view()
}

/// What a space page keeps across its live redraws: the pushed port list, the tunnel
/// actions (a new link is shown once, so it must survive them).
#[derive(Clone, Copy)]
pub struct PortsState {
    ports: RwSignal<Option<SpacePorts>>,
    create: Action<(SpaceId, u16), Result<TunnelCreated, ApiError>>,
    revoke: Action<TunnelId, Result<(), ApiError>>,
    port_text: RwSignal<String>,
    /// Read with the page's own data (a resource of its own, nested in the page's loading
    /// state, would not hydrate as rendered).
    tunnels: Resource<Result<Vec<TunnelDto>, ApiError>>,
}

impl PortsState {
    /// Starts following the ports of the space `id` names (in the browser).
    pub fn new(id: Signal<SpaceId>) -> Self {
        let live = Live::get();
        let ports = RwSignal::new(None);
        follow_ports(id, ports);
        let tunnels = Resource::new(
            move || (id.get(), live.spaces.get()),
            |(id, _)| space_tunnels(id),
        );
        Self {
            ports,
            tunnels,
            create: refreshing(
                live.spaces,
                Action::new(|(id, port): &(SpaceId, u16)| {
                    let (id, port) = (id.clone(), *port);
                    async move { create_tunnel(id, port).await }
                }),
            ),
            revoke: refreshing(
                live.spaces,
                Action::new(|id: &TunnelId| {
                    let id = id.clone();
                    async move { revoke_tunnel(id).await }
                }),
            ),
            port_text: RwSignal::new(String::new()),
        }
    }
}

/// Keeps `ports` up to date from the server's stream for the space (browser only).
fn follow_ports(id: Signal<SpaceId>, ports: RwSignal<Option<SpacePorts>>) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::closure::Closure;
        use wasm_bindgen::JsCast;
        use web_sys::{EventSource, MessageEvent};

        let current = StoredValue::new_local(None::<EventSource>);
        let close = move || {
            if let Some(source) = current.get_value() {
                source.close();
            }
        };
        Effect::new(move |_| {
            close();
            ports.set(None);
            let url = format!("/api/v1/spaces/{}/ports/live", id.get());
            let Ok(source) = EventSource::new(&url) else {
                return;
            };
            let on_ports = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let data = event.data().as_string().unwrap_or_default();
                if let Ok(report) = serde_json::from_str::<SpacePorts>(&data) {
                    ports.set(Some(report));
                }
            });
            let _ =
                source.add_event_listener_with_callback("ports", on_ports.as_ref().unchecked_ref());
            // Lives as long as the stream, which this page closes when it goes.
            on_ports.forget();
            current.set_value(Some(source));
        });
        on_cleanup(close);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (id, ports);
}

/// The space page's section: features, apps, ports, public links, VS Code tunnel.
#[component]
pub fn PortsSection(space: SpaceDto, state: PortsState) -> impl IntoView {
    let may = |f: Feature| space.allowed_features.contains(&f);
    let can_publish = space.can_manage && may(Feature::Tunnels);
    let features = if space.allowed_features.is_empty() {
        "none".to_owned()
    } else {
        space
            .allowed_features
            .iter()
            .map(|f| f.label())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let running = space.state.is_running();
    view! {
        <section class="panel" data-testid="ports-section">
            <h2>"Apps and ports"</h2>
            <p class="hint" data-testid="allowed-features">"You may use here: " {features}</p>
            {running.then(|| view! { <ListeningPorts space=space.clone() state can_publish /> })}
            {(!running).then(|| view! { <p class="empty">"Start the space to see what listens in it."</p> })}
            {(may(Feature::Tunnels) || space.can_manage).then(|| view! { <Tunnels space=space.clone() state can_publish /> })}
            {(running && may(Feature::VscodeTunnel)).then(|| view! { <VscodeTunnel id=space.id.clone() /> })}
        </section>
    }
}

#[component]
fn ListeningPorts(space: SpaceDto, state: PortsState, can_publish: bool) -> impl IntoView {
    let PortsState { ports, create, .. } = state;
    let id = space.id.clone();
    view! {
        {move || match ports.get() {
            None => view! { <p class="hint">"Looking for listening ports…"</p> }.into_any(),
            Some(SpacePorts { note: Some(note), .. }) => view! { <p class="hint">{note}</p> }.into_any(),
            Some(SpacePorts { ports, .. }) if ports.is_empty() => view! {
                <p class="empty" data-testid="no-ports">"Nothing listens in this space. Start a server (on 0.0.0.0) and it shows up here."</p>
            }.into_any(),
            Some(SpacePorts { ports, .. }) => {
                let id = id.clone();
                view! {
                    <table class="list" data-testid="ports">
                        <thead><tr><th>"Port"</th><th>"Address"</th><th>"App"</th><th></th></tr></thead>
                        <tbody>{ports.into_iter().map(|p| {
                            let publish_id = id.clone();
                            let port = p.port;
                            view! {
                                <tr data-port=p.port>
                                    <td>{p.port}</td>
                                    <td><code>{p.address.clone()}</code>
                                        {(!p.reachable).then(|| view! { <span class="hint">" (this space only: listen on 0.0.0.0 to open it)"</span> })}</td>
                                    <td>{p.app.clone().or_else(|| p.label.clone()).unwrap_or_default()}</td>
                                    <td class="actions">
                                        {p.url.as_deref().map(open_link).map(|href| view! { <a class="button secondary" href=href target="_blank" rel="external noopener" data-testid="open-port">"Open"</a> })}
                                        {(can_publish && p.reachable).then(|| view! {
                                            <button type="button" class="secondary" data-testid="publish"
                                                disabled=move || create.pending().get()
                                                on:click=move |_| { create.dispatch((publish_id.clone(), port)); }>"Make public"</button>
                                        })}
                                    </td>
                                </tr>
                            }
                        }).collect_view()}</tbody>
                    </table>
                }.into_any()
            }
        }}
    }
}

#[component]
fn Tunnels(space: SpaceDto, state: PortsState, can_publish: bool) -> impl IntoView {
    let PortsState {
        create,
        revoke,
        port_text,
        tunnels,
        ..
    } = state;
    let error = move || last_error(create)().or_else(last_error(revoke));
    let id = space.id.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Ok(port) = port_text.get_untracked().trim().parse::<u16>() {
            create.dispatch((id.clone(), port));
        }
    };
    view! {
        <h3>"Public links"</h3>
        <p class="hint">"A public link opens a port to anyone who has it, without signing in, until it is revoked."</p>
        {move || create.value().get().and_then(|r| r.ok()).map(|made| view! {
            <div class="secret" role="status" data-testid="tunnel-link">
                <p><strong>"Copy the link now: it is shown only once."</strong></p>
                <NewLink url=made.url />
            </div>
        })}
        {move || error().map(|e| view! { <p class="error" role="alert" data-testid="tunnel-error">{e.message}</p> })}
        {move || tunnels.get().map(|r| match r {
            Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
            Ok(list) => view! { <TunnelList list revoke manage=can_publish /> }.into_any(),
        })}
        {can_publish.then(|| view! {
            <form class="row" on:submit=submit>
                <label>"Port" <input type="number" min="1" max="65535" data-testid="tunnel-port" bind:value=port_text required=true /></label>
                <button type="submit" class="primary" data-testid="create-tunnel" disabled=move || create.pending().get()>"Make public"</button>
            </form>
        })}
    }
}

/// A new link: a path is completed with the page's own origin.
#[component]
fn NewLink(url: String) -> impl IntoView {
    let shown = RwSignal::new(url.clone());
    #[cfg(feature = "hydrate")]
    if url.starts_with('/') {
        if let Ok(origin) = window().location().origin() {
            shown.set(format!("{origin}{url}"));
        }
    }
    view! { <code>{move || shown.get()}</code> }
}

#[component]
fn TunnelList(
    list: Vec<TunnelDto>,
    revoke: Action<TunnelId, Result<(), ApiError>>,
    manage: bool,
) -> impl IntoView {
    if list.is_empty() {
        return view! { <p class="empty" data-testid="no-tunnels">"No public links."</p> }
            .into_any();
    }
    view! {
        <table class="list" data-testid="tunnels">
            <thead><tr><th>"Space"</th><th>"Port"</th><th>"Link starts with"</th><th>"Made"</th><th></th></tr></thead>
            <tbody>{list.into_iter().map(|t| {
                let id = t.id.clone();
                view! {
                    <tr data-port=t.port>
                        <td>{t.space_name}</td><td>{t.port}</td><td><code>{t.hint}"…"</code></td>
                        <td><RelativeTime at=t.created_at /> " by " {t.created_by}</td>
                        <td>{manage.then(|| view! {
                            <ConfirmButton label="Revoke" testid="revoke-tunnel" question="Revoke this public link?".into()
                                on_confirm=Callback::new(move |_| { revoke.dispatch(id.clone()); }) />
                        })}</td>
                    </tr>
                }
            }).collect_view()}</tbody>
        </table>
    }
    .into_any()
}

#[component]
fn VscodeTunnel(id: SpaceId) -> impl IntoView {
    let ask = Action::new(|id: &SpaceId| {
        let id = id.clone();
        async move { vscode_tunnel(id).await }
    });
    view! {
        <h3>"VS Code tunnel"</h3>
        <p class="hint">"Connect VS Code on your computer to this space (the tunnel needs internet access from the space)."</p>
        <button type="button" class="secondary" data-testid="vscode-tunnel"
            on:click=move |_| { ask.dispatch(id.clone()); }>"Show the sign-in code"</button>
        {move || ask.value().get().map(|r| match r {
            Ok(status) => view! {
                <p data-testid="vscode-tunnel-status">{status.message}
                    {status.device_code.map(|code| view! { " " <strong data-testid="device-code">{code}</strong> })}</p>
            }.into_any(),
            Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
        })}
    }
}

/// The profile's list of the user's public links, with a way to revoke each.
#[component]
pub fn MyTunnels() -> impl IntoView {
    let live = Live::get();
    let revoke = refreshing(
        live.spaces,
        Action::new(|id: &TunnelId| {
            let id = id.clone();
            async move { revoke_tunnel(id).await }
        }),
    );
    let tunnels = Resource::new(move || live.spaces.get(), |_| my_tunnels());
    view! {
        <section class="panel" data-testid="my-tunnels">
            <h2>"Public links"</h2>
            <p class="hint">"Ports of your spaces that anyone with the link can open. They count against your tunnel quota."</p>
            {move || last_error(revoke)().map(|e| view! { <p class="error" role="alert">{e.message}</p> })}
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || tunnels.get().map(|r| match r {
                    Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                    Ok(list) => view! { <TunnelList list revoke manage=true /> }.into_any(),
                })}
            </Transition>
        </section>
    }
}
