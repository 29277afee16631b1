//! Hangar's user interface (Leptos components and pages), the wire types it shares with the
//! server, and the server functions the pages call.

#![recursion_limit = "256"]

pub mod api;
pub mod error;
pub mod ids;
pub mod lifecycle;
pub mod live;
pub mod pages;
pub mod protocol;
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

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <script type="importmap" inner_html=XTERM_IMPORT_MAP></script>
                <link rel="stylesheet" href="/xterm/xterm.css" />
                <AutoReload options=options.clone() />
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
                    <Route path=path!("/spaces/:id/terminal") view={Lazy::<lazy::TerminalRoute>::new()} />
                    <Route path=path!("/spaces/:id") view={Lazy::<lazy::SpaceRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/profile") view={Lazy::<lazy::ProfileRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin/users") view={Lazy::<lazy::UsersRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin/groups") view={Lazy::<lazy::GroupsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin/templates") view={Lazy::<lazy::TemplatesRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin/spaces") view={Lazy::<lazy::AllSpacesRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin/audit") view={Lazy::<lazy::AuditRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin/features") view={Lazy::<lazy::FeaturesRoute>::new()} ssr=SsrMode::Async />
                </Routes>
            </pages::layout::Layout>
        </Router>
    }
}
