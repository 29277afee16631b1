//! Liveness (`/healthz`) and readiness (`/readyz`: database and Docker reachable), with what
//! the host enforces of the limits Hangar promises (volume sizes, network isolation).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use crate::state::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

#[derive(Debug, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub database: String,
    pub docker: String,
    /// Whether volume sizes are hard limits: `enforced: …`, or `not enforced: <why>`. Does
    /// not make Hangar unready.
    pub storage: String,
    /// Whether spaces are kept from the host and 169.254.0.0/16, likewise.
    pub network: String,
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let (database, docker, enforcement) = tokio::join!(
        crate::db::ping(&state.db),
        state.docker.ping(),
        state.services.runtime.enforcement()
    );
    let enforced =
        |r: Result<String, String>| r.unwrap_or_else(|why| format!("not enforced: {why}"));
    let ready = database.is_ok() && docker.is_ok();
    let describe = |r: Result<(), String>| r.map_or_else(|e| e, |()| "ok".to_owned());
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready,
            database: describe(database),
            docker: describe(docker),
            storage: enforced(enforcement.storage),
            network: enforced(enforcement.network),
        }),
    )
}
