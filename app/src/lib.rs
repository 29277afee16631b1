//! Hangar's user interface (Leptos components and pages), the wire types it shares with the
//! server, and the server functions the pages call.

#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod error;
pub mod ids;
pub mod lifecycle;
pub mod live;
pub mod pages;
pub mod protocol;
pub mod redirect;
pub mod time;
pub mod utf8_stream;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, Lazy, SsrMode,
};

use crate::api::auth::{current_user, UserDto};
use crate::error::ApiError;
use crate::pages::lazy;

/// xterm.js is an ES module served from `/xterm/`; this map lets the wasm's `import 'xterm'` find it.
const XTERM_IMPORT_MAP: &str = r#"{"imports":{"xterm":"/xterm/xterm.mjs"}}"#;

/// Sent on `window` once the whole page is hydrated, the lazily loaded part included.
pub const HYDRATED_EVENT: &str = "hangar:hydrated";

/// Called by the browser entry point once the whole page is hydrated: marks `<body>`
/// (`data-hydrated="true"`, what people and tests wait for) and sends [`HYDRATED_EVENT`].
#[cfg(feature = "hydrate")]
pub fn page_hydrated() {
    if let Some(body) = document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
    if let Ok(event) = web_sys::Event::new(HYDRATED_EVENT) {
        let _ = window().dispatch_event(&event);
    }
}

/// Whether [`page_hydrated`] has run on this page.
#[cfg(feature = "hydrate")]
pub fn is_hydrated() -> bool {
    document()
        .body()
        .is_some_and(|body| body.get_attribute("data-hydrated").is_some())
}

/// Turns true once the page is hydrated (at once on a page the browser draws itself after a
/// navigation). Parts drawn in the browser only wait for it: while a page whose code loads on
/// demand is hydrated, effects already run, and one that changed the page's DOM then would
/// pull the nodes from under the hydration still walking them. Always false on the server.
pub fn hydrated_signal() -> ReadSignal<bool> {
    let (hydrated, set_hydrated) = signal(false);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        // `try_set`: the part may be gone before the page is hydrated.
        when_hydrated(move || {
            set_hydrated.try_set(true);
        })
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = set_hydrated;
    hydrated
}

/// Runs `f` once the whole page is hydrated: at once if it is, else on [`HYDRATED_EVENT`].
#[cfg(feature = "hydrate")]
pub fn when_hydrated(f: impl FnOnce() + 'static) {
    use wasm_bindgen::JsCast;
    if is_hydrated() {
        f();
        return;
    }
    let later = wasm_bindgen::closure::Closure::once_into_js(f);
    let _ = window().add_event_listener_with_callback(HYDRATED_EVENT, later.unchecked_ref());
}

/// Loads the page again when its code did not come (Leptos's hydration script gives up: the
/// page would stay dead, every button inert, a terminal "connecting…" forever). Requests in
/// flight are dropped when the machine's network changes (Chromium fails them with
/// `ERR_NETWORK_CHANGED`: Docker adds and removes an interface for every container it starts
/// and stops), and the page's wasm is its biggest download. A browser keeps a module whose
/// download failed as failed for the document's life (importing it again fails at once), so
/// the page is loaded again, as a person would: after 1 s, doubling up to 30 s while it keeps
/// failing (the count kept in the tab's session storage, cleared once a page hydrates).
const RELOAD_WHEN_CODE_FAILS: &str = r#"(() => {
  const key = 'hangar-code-failures';
  let planned = false;
  window.addEventListener('hangar:hydrated', () => sessionStorage.removeItem(key));
  window.addEventListener('unhandledrejection', (event) => {
    const reason = event.reason;
    const text = String((reason && reason.message) || reason);
    if (document.body?.dataset.hydrated === 'true') return;
    if (!/fetch|import|WebAssembly|network|load/i.test(text)) return;
    // Handled: the page loads again (no "uncaught" error for a failure it recovers from).
    event.preventDefault();
    if (planned) return;
    planned = true;
    const failures = Number(sessionStorage.getItem(key) || 0);
    sessionStorage.setItem(key, String(failures + 1));
    const delay = Math.min(1000 * 2 ** failures, 30000);
    console.warn(`Hangar's code did not load (${text}): loading the page again in ${delay} ms`);
    setTimeout(() => location.reload(), delay);
  });
})();"#;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let now = components::time::Now::capture();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name=components::time::NOW_META content=now.to_string() />
                <script type="importmap" inner_html=XTERM_IMPORT_MAP></script>
                <link rel="stylesheet" href="/xterm/xterm.css" />
                <AutoReload options=options.clone() />
                <script inner_html=RELOAD_WHEN_CODE_FAILS></script>
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The signed-in user (or none), loaded once per page and shared by every component.
#[derive(Clone, Copy)]
pub struct CurrentUser(pub Resource<Result<Option<UserDto>, ApiError>>);

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let user = Resource::new(|| (), |_| current_user());
    provide_context(CurrentUser(user));
    components::time::Now::provide();
    let live = live::Live::provide();
    // One live stream per page, opened in the browser once someone is signed in.
    Effect::new(move |connected: Option<bool>| {
        if connected == Some(true) {
            return true;
        }
        let signed_in = matches!(user.get(), Some(Ok(Some(_))));
        if signed_in {
            live.connect();
        }
        signed_in
    });

    view! {
        <Stylesheet id="leptos" href="/pkg/hangar.css" />
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg" />
        <Title text="Hangar" />
        <Router>
            <pages::layout::Layout>
                <Routes fallback=pages::NotFound>
                    // Async: a signed-out visitor must get a real 302 to the sign-in page, which
                    // needs the user resolved before the first byte is sent; and pages with
                    // nested loading states hydrate reliably only when rendered whole.
                    <Route path=path!("/") view=pages::dashboard::DashboardPage ssr=SsrMode::Async />
                    <Route path=path!("/login") view=pages::login::LoginPage />
                    <Route path=path!("/new") view=pages::repos::NewSpacePage ssr=SsrMode::Async />
                    <Route path=path!("/spaces/:id/terminal") view={Lazy::<lazy::TerminalRoute>::new()} />
                    <Route path=path!("/spaces/:id") view={Lazy::<lazy::SpaceRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/notifications") view={Lazy::<lazy::NotificationsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/profile") view={Lazy::<lazy::ProfileRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin") view={Lazy::<lazy::OverviewRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin/users") view={Lazy::<lazy::UsersRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin/groups") view={Lazy::<lazy::GroupsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin/templates") view={Lazy::<lazy::TemplatesRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin/spaces") view={Lazy::<lazy::AllSpacesRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin/notifications") view={Lazy::<lazy::AdminNotificationsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin/audit") view={Lazy::<lazy::AuditRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin/features") view={Lazy::<lazy::FeaturesRoute>::new()} ssr=SsrMode::Async />
                </Routes>
            </pages::layout::Layout>
        </Router>
    }
}
