//! What every request handler can reach (axum state, split by `FromRef`).

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sea_orm::DatabaseConnection;

use crate::auth::AuthService;
use crate::config::Config;
use crate::runtime::client::DockerClient;
use crate::services::Services;
use app::api::ssr::SharedApi;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub docker: Arc<DockerClient>,
    pub auth: Arc<AuthService>,
    pub services: Services,
    /// The same services, as both doors (JSON handlers and server functions) reach them.
    pub api: SharedApi,
    /// The port proxy's connections and caches.
    pub proxy: Arc<crate::proxy::Proxy>,
    /// The SSH gateway's listener, until serving begins.
    pub ssh_gateway: Arc<crate::ssh::Gateway>,
}
