//! The HTTP surface: one function builds the whole router (pages, server functions, JSON API,
//! health) with its layers.

pub mod api;
pub mod extract;
pub mod files;
pub mod health;
pub mod openapi;
pub mod ports;
pub mod shape;

use std::sync::Arc;

use app::api::ssr::SharedApi;
use app::{shell, App};
use axum::routing::{any, get};
use axum::{Json, Router};
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::session_store::DbSessionStore;
use crate::state::AppState;

/// The site's files (`/pkg/`: the wasm, its parts, the JS, the style sheet) keep their names
/// from one release to the next, and a main wasm only works with the parts built with it:
/// browsers ask again each time (a cheap 304 when nothing changed) rather than guess how long a
/// file stays fresh and mix an old main wasm with new parts.
async fn revalidate_site_files(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let site_file = request.uri().path().starts_with("/pkg/");
    let mut response = next.run(request).await;
    if site_file {
        response
            .headers_mut()
            .entry(http::header::CACHE_CONTROL)
            .or_insert(http::HeaderValue::from_static("no-cache"));
    }
    response
}

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

    api.route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .leptos_routes_with_context(
            &state,
            generate_route_list(App),
            context.clone(),
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell))
        // Ports of spaces by path on Hangar's origin: after the cross-origin check, with the
        // session known.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::proxy::path_apps,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::csrf::reject_cross_origin,
        ))
        .layer(axum::middleware::from_fn(
            crate::auth::remember_session_user,
        ))
        .layer(sessions)
        // Outside the session layer, to see (and secure) the cookie it sets.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::client::resolve_client,
        ))
        .layer(axum::middleware::from_fn(revalidate_site_files))
        .layer(axum::middleware::from_fn(crate::metrics::track_requests))
        // App domains never reach Hangar's pages nor its session.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::proxy::apps_domain,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
