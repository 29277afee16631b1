//! The pages that load on demand: each is a `LazyRoute` whose view lives in a wasm chunk of its
//! own (split out by `cargo xtask build`), so the first download carries only the sign-in page,
//! the dashboard and what they share.

use leptos::prelude::*;
use leptos_router::{lazy_route, LazyRoute};

/// A route that loads `$page`'s code the first time it is shown. The pages load their own data
/// inside, so `data()` has nothing to start ahead of the code.
macro_rules! lazy_page {
    ($route:ident, $page:path) => {
        #[doc = concat!("`", stringify!($page), "`, loaded on demand.")]
        pub struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                Self
            }

            fn view(_this: Self) -> AnyView {
                use $page as Page;
                view! { <Page /> }.into_any()
            }
        }
    };
}

lazy_page!(SpaceRoute, crate::pages::space::SpacePage);
lazy_page!(TerminalRoute, crate::pages::terminal::TerminalPage);
lazy_page!(ProfileRoute, crate::pages::profile::ProfilePage);
lazy_page!(UsersRoute, crate::pages::admin::users::UsersPage);
lazy_page!(GroupsRoute, crate::pages::admin::groups::GroupsPage);
lazy_page!(TemplatesRoute, crate::pages::admin::templates::TemplatesPage);
lazy_page!(AllSpacesRoute, crate::pages::admin::spaces::AllSpacesPage);
lazy_page!(AuditRoute, crate::pages::admin::audit::AuditPage);
lazy_page!(FeaturesRoute, crate::pages::admin::features::FeaturesPage);
