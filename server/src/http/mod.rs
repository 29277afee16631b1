//! The HTTP surface: one function builds the whole router (pages, server functions, JSON API,
//! health) with its layers.

pub mod api;
pub mod extract;
pub mod health;
pub mod openapi;

use std::sync::Arc;

use app::api::ssr::SharedBackend;
use app::{shell, App};
use axum::routing::{delete, get, post, put};
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::auth::session_store::DbSessionStore;
use crate::backend::ServerBackend;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/auth/login", post(api::login))
        .route("/auth/logout", post(api::logout))
        .route("/me", get(api::me))
        .route("/me/quota", get(api::my_quota))
        .route("/me/password", post(api::change_password))
        .route("/me/tokens", get(api::list_tokens).post(api::create_token))
        .route("/me/tokens/{id}", delete(api::revoke_token))
        .route(
            "/me/ssh-keys",
            get(api::list_ssh_keys).post(api::add_ssh_key),
        )
        .route("/me/ssh-keys/{id}", delete(api::remove_ssh_key))
        .route("/users", get(api::list_users).post(api::create_user))
        .route(
            "/users/{id}",
            get(api::get_user)
                .patch(api::update_user)
                .delete(api::delete_user),
        )
        .route("/users/quotas", get(api::user_quotas))
        .route("/users/{id}/quota", get(api::user_quota))
        .route("/groups", get(api::list_groups).post(api::create_group))
        .route(
            "/groups/{id}",
            get(api::get_group)
                .patch(api::update_group)
                .delete(api::delete_group),
        )
        .route(
            "/groups/{id}/members/{user_id}",
            put(api::add_member).delete(api::remove_member),
        )
        .route(
            "/templates",
            get(api::list_templates).post(api::create_template),
        )
        .route(
            "/templates/{id}",
            get(api::get_template)
                .patch(api::update_template)
                .delete(api::delete_template),
        )
        .route("/templates/{id}/preview", get(api::create_preview))
        .route("/spaces", get(api::list_spaces).post(api::create_space))
        .route(
            "/spaces/{id}",
            get(api::get_space).delete(api::delete_space),
        )
        .route("/spaces/{id}/history", get(api::space_history))
        .route("/spaces/{id}/start", post(api::start_space))
        .route("/spaces/{id}/stop", post(api::stop_space))
        .route("/spaces/{id}/restart", post(api::restart_space))
        .route("/spaces/{id}/terminal", get(crate::terminal::ws::terminal))
        .route("/spaces/{id}/shares", get(api::list_shares))
        .route(
            "/spaces/{id}/shares/{user_id}",
            put(api::share_space).delete(api::revoke_share),
        )
        .route("/audit", get(api::audit))
        .route("/events", get(crate::live::sse::events))
        .route("/openapi.json", get(openapi::openapi_json))
        .route(
            "/admin/orphans",
            get(api::list_orphans).delete(api::remove_orphans),
        )
        .route("/admin/unlabelled/{name}", delete(api::remove_unlabelled))
        .fallback(api::no_such_route);

    let backend: SharedBackend = Arc::new(ServerBackend {
        auth: state.auth.clone(),
        state: state.clone(),
    });
    let context = move || provide_context(backend.clone());
    let options = state.leptos_options.clone();

    let sessions = SessionManagerLayer::new(DbSessionStore::new(state.db.clone()))
        .with_name(crate::auth::SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.config.secure_cookies())
        .with_expiry(Expiry::OnInactivity(time::Duration::days(
            state.config.session_days,
        )));

    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(health::healthz))
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
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::csrf::reject_cross_origin,
        ))
        .layer(axum::middleware::from_fn(extract::remember_session_user))
        .layer(sessions)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
