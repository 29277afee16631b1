//! The pages that load on demand. Their code is cut out of the main wasm by
//! `cargo xtask build` into three parts: the admin pages, the space's pages (overview and
//! terminal) and the user's own pages (profile, notifications); the first download carries
//! only the sign-in page, the dashboard, `/new` and what they share. A part is fetched the
//! first time one of its pages is shown (and, on a server-rendered page, preloaded with it).

use leptos::prelude::*;
use leptos_router::LazyRoute;

use crate::pages::{admin, notifications, profile, space, terminal};

/// The pages that live in one wasm part: one split function per part, so a part is one
/// download and the code its pages share is not cut into ever smaller pieces.
#[derive(Clone, Copy)]
pub enum AdminPage {
    Overview,
    Users,
    Groups,
    Templates,
    Spaces,
    Audit,
    Features,
    Notifications,
}

/// The signed-in user's own pages: one part.
#[derive(Clone, Copy)]
pub enum OwnPage {
    Profile,
    Notifications,
}

#[derive(Clone, Copy)]
pub enum SpacePage {
    Overview,
    Terminal,
}

/// A wasm part could not be downloaded. Leptos' `#[lazy]` panics then, which stops the whole
/// app; the splitter's `fallible` form hands the failure back instead, so the route can try
/// again and, at worst, say so on the page.
#[derive(Debug)]
pub struct PartUnavailable;

impl From<leptos::wasm_split::SplitLoaderError> for PartUnavailable {
    fn from(_: leptos::wasm_split::SplitLoaderError) -> Self {
        Self
    }
}

type PartView = Result<AnyView, PartUnavailable>;

/// A function whose code goes into a wasm part of its own, named after it, fetched the first
/// time the function is called (`$preload` fetches it without calling it). On the server it
/// is a plain function.
macro_rules! page_part {
    (fn $name:ident / $preload:ident ( $($arg:ident : $ty:ty)? ) $body:block) => {
        #[cfg_attr(
            feature = "hydrate",
            leptos::wasm_split::wasm_split(
                $name,
                wasm_split_path = ::leptos::wasm_split,
                preload(#[doc(hidden)] $preload),
                fallible
            )
        )]
        fn $name($($arg: $ty)?) -> PartView $body
    };
}

page_part!(fn admin_view / __preload_admin_view (page: AdminPage) {
    preload_part("admin_view");
    Ok(match page {
        AdminPage::Overview => view! { <admin::overview::OverviewPage /> }.into_any(),
        AdminPage::Users => view! { <admin::users::UsersPage /> }.into_any(),
        AdminPage::Groups => view! { <admin::groups::GroupsPage /> }.into_any(),
        AdminPage::Templates => view! { <admin::templates::TemplatesPage /> }.into_any(),
        AdminPage::Spaces => view! { <admin::spaces::AllSpacesPage /> }.into_any(),
        AdminPage::Audit => view! { <admin::audit::AuditPage /> }.into_any(),
        AdminPage::Features => view! { <admin::features::FeaturesPage /> }.into_any(),
        AdminPage::Notifications => {
            view! { <admin::notifications::AdminNotificationsPage /> }.into_any()
        }
    })
});

page_part!(fn space_view / __preload_space_view (page: SpacePage) {
    preload_part("space_view");
    Ok(match page {
        SpacePage::Overview => view! { <space::SpacePage /> }.into_any(),
        SpacePage::Terminal => view! { <terminal::TerminalPage /> }.into_any(),
    })
});

page_part!(fn profile_view / __preload_profile_view (page: OwnPage) {
    preload_part("profile_view");
    Ok(match page {
        OwnPage::Profile => view! { <profile::ProfilePage /> }.into_any(),
        OwnPage::Notifications => view! { <notifications::NotificationsPage /> }.into_any(),
    })
});

/// How long to wait before each new try at a part's download. A blip (Chromium drops the
/// requests in flight when the machine's network interfaces change, e.g. when Docker adds
/// one) passes within the first; a server that is really gone gets about 6 s.
#[cfg(feature = "hydrate")]
const PART_RETRY_DELAYS_MS: [i32; 4] = [250, 750, 1_500, 3_000];

/// Shows the page `load` brings, trying its download again after a failure.
#[cfg(feature = "hydrate")]
async fn show_part<F, Fut>(load: F) -> AnyView
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = PartView>,
{
    for delay in PART_RETRY_DELAYS_MS {
        match load().await {
            Ok(view) => return view,
            Err(PartUnavailable) => pause(delay).await,
        }
    }
    load()
        .await
        .unwrap_or_else(|PartUnavailable| part_unavailable())
}

/// On the server a part is plain code: nothing to download.
#[cfg(not(feature = "hydrate"))]
async fn show_part(load: impl Fn() -> PartView) -> AnyView {
    load().unwrap_or_else(|PartUnavailable| part_unavailable())
}

fn part_unavailable() -> AnyView {
    view! {
        <section class="page">
            <p class="error" role="alert">
                "This page's code could not be downloaded from the server. "
                "Check the connection, then reload the page."
            </p>
        </section>
    }
    .into_any()
}

#[cfg(feature = "hydrate")]
async fn pause(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        let scheduled = web_sys::window().is_some_and(|window| {
            window
                .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
                .is_ok()
        });
        if !scheduled {
            let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// On the server, adds `<link rel="preload">`s for the files of the wasm part `name` to the
/// page's head, so the browser fetches them beside the main wasm instead of after it.
/// (Leptos adds these too, but reads its list outside the request's context and so only
/// sometimes finds it.)
fn preload_part(name: &str) {
    #[cfg(feature = "ssr")]
    ssr::preload_part(name);
    #[cfg(not(feature = "ssr"))]
    let _ = name;
}

/// A route whose view is `$load`, a split function. The pages load their own data inside, so
/// `data()` has nothing to start ahead of the code.
macro_rules! on_demand_route {
    ($route:ident, $load:ident ( $($page:expr)? ), $preload:ident) => {
        #[doc = concat!("A route shown by `", stringify!($load), "`, loaded on demand.")]
        pub struct $route;

        impl LazyRoute for $route {
            fn data() -> Self {
                Self
            }

            async fn view(_this: Self) -> AnyView {
                show_part(|| $load($($page)?)).await
            }

            async fn preload() {
                // A failed preload is tried again by `view`.
                #[cfg(feature = "hydrate")]
                let _ = $preload().await;
            }
        }
    };
}

on_demand_route!(
    OverviewRoute,
    admin_view(AdminPage::Overview),
    __preload_admin_view
);
on_demand_route!(
    UsersRoute,
    admin_view(AdminPage::Users),
    __preload_admin_view
);
on_demand_route!(
    GroupsRoute,
    admin_view(AdminPage::Groups),
    __preload_admin_view
);
on_demand_route!(
    TemplatesRoute,
    admin_view(AdminPage::Templates),
    __preload_admin_view
);
on_demand_route!(
    AllSpacesRoute,
    admin_view(AdminPage::Spaces),
    __preload_admin_view
);
on_demand_route!(
    AuditRoute,
    admin_view(AdminPage::Audit),
    __preload_admin_view
);
on_demand_route!(
    FeaturesRoute,
    admin_view(AdminPage::Features),
    __preload_admin_view
);
on_demand_route!(
    SpaceRoute,
    space_view(SpacePage::Overview),
    __preload_space_view
);
on_demand_route!(
    TerminalRoute,
    space_view(SpacePage::Terminal),
    __preload_space_view
);
on_demand_route!(
    AdminNotificationsRoute,
    admin_view(AdminPage::Notifications),
    __preload_admin_view
);
on_demand_route!(
    ProfileRoute,
    profile_view(OwnPage::Profile),
    __preload_profile_view
);
on_demand_route!(
    NotificationsRoute,
    profile_view(OwnPage::Notifications),
    __preload_profile_view
);

#[cfg(feature = "ssr")]
pub use ssr::WasmParts;

#[cfg(feature = "ssr")]
mod ssr {
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::Arc;

    use leptos::prelude::*;
    use leptos_meta::Link;

    /// `pkg/__wasm_split_manifest.json` of the site, written by `cargo xtask build`: for each
    /// split function (`admin_view`, ...), the files of its wasm part. Read once at start and
    /// provided to every page render.
    #[derive(Clone, Debug, Default)]
    pub struct WasmParts(Arc<HashMap<String, Vec<String>>>);

    impl WasmParts {
        /// The site's manifest; none (nothing to preload) when the site was built without it.
        pub fn read(site_root: &Path) -> Self {
            let file = site_root.join("pkg").join("__wasm_split_manifest.json");
            let parts = std::fs::read_to_string(&file)
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or_default();
            Self(Arc::new(parts))
        }

        fn files(&self, name: &str) -> impl Iterator<Item = &String> {
            self.0.get(name).into_iter().flatten()
        }
    }

    pub fn preload_part(name: &str) {
        let Some(parts) = use_context::<WasmParts>() else {
            return;
        };
        let mut any = false;
        for file in parts.files(name) {
            any = true;
            // `to_html` on a leptos_meta component adds it to the page's head.
            let _ = view! {
                <Link rel="preload" href=format!("/pkg/{file}.wasm") as_="fetch"
                    type_="application/wasm" crossorigin="anonymous" />
            }
            .to_html();
        }
        if any {
            let _ = view! {
                <Link rel="modulepreload" href="/pkg/__wasm_split.______________________.js" />
            }
            .to_html();
        }
    }
}
