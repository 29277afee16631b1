//! The HTTP doors: one function builds the whole router (pages, server functions, JSON API,
//! WebSockets, server-sent events, the port proxy, health) with its layers. Every handler of
//! Hangar lives below this module; the rooms below it never see a request.

pub mod api;
pub mod apps;
pub mod events;
pub mod extract;
pub mod files;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod oidc;
pub mod openapi;

pub mod shape;
pub mod ssh;
pub mod state;
pub mod terminal;

use std::sync::{Arc, LazyLock};

use app::api::ssr::SharedApi;
use app::{shell, App};
use axum::routing::{any, get};
use axum::{Json, Router};
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::session_store::DbSessionStore;
pub use state::AppState;

/// The pages' routes, listed once per process. Listing them renders the app with resource
/// loads suppressed by a flag global to the process (leptos_server 0.8): a resource made while
/// it is set never loads, so a page rendered by another server of the same process (the tests
/// run many) at that moment would wait forever.
static PAGE_ROUTES: LazyLock<Vec<AxumRouteListing>> = LazyLock::new(|| generate_route_list(App));

pub fn router(state: AppState) -> Router {
    let (api, mut document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(api::routes())
        .split_for_parts();
    openapi::complete(&mut document, &state.config);
    let document = Arc::new(document);
    let api = api
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let document = document.clone();
                async move { Json(document.as_ref().clone()) }
            }),
        )
        .route("/api/v1/{*rest}", any(api::no_such_route))
        .route("/api/v1", any(api::no_such_route));

    let services: SharedApi = state.api.clone();
    let wasm_parts = app::pages::lazy::WasmParts::read(&state.config.site_root);
    let context = move || {
        provide_context(services.clone());
        provide_context(wasm_parts.clone());
    };
    let options = state.leptos_options.clone();

    let sessions = SessionManagerLayer::new(DbSessionStore::new(state.db.clone()))
        .with_name(crate::auth::SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.config.secure_cookies())
        .with_expiry(Expiry::OnInactivity(time::Duration::days(
            state.config.session_days,
        )));

    // The layers that every request passes take the state behind an Arc: axum clones a layer's
    // state twice a request, and the whole state's clone (its services' handles, the site's
    // options) showed in the proxy's profile.
    let shared_state = Arc::new(state.clone());
    api.route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .leptos_routes_with_context(&state, PAGE_ROUTES.clone(), context.clone(), move || {
            shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell))
        // Ports of spaces by path on Hangar's origin: after the cross-origin check, with the
        // session known.
        .layer(axum::middleware::from_fn_with_state(
            shared_state.clone(),
            apps::path_apps,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.config.clone(),
            middleware::csrf::reject_cross_origin,
        ))
        .layer(axum::middleware::from_fn(middleware::read_credentials))
        .layer(sessions)
        // Outside the session layer, to see (and secure) the cookie it sets.
        .layer(axum::middleware::from_fn_with_state(
            state.config.clone(),
            middleware::client::resolve_client,
        ))
        .layer(axum::middleware::from_fn(middleware::revalidate_site_files))
        .layer(axum::middleware::from_fn(middleware::track_requests))
        // Every answer of Hangar's own (not an app's, not on an apps domain) refuses framing.
        .layer(axum::middleware::from_fn(middleware::refuse_framing))
        // App domains never reach Hangar's pages nor its session.
        .layer(axum::middleware::from_fn_with_state(
            shared_state,
            apps::apps_domain,
        ))
        // As tower-http's default span, without the secrets some addresses carry.
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
                tracing::debug_span!(
                    "request",
                    method = %request.method(),
                    uri = %middleware::loggable_path(request.uri()),
                    version = ?request.version(),
                )
            }),
        )
        .with_state(state)
}
