//! Liveness (`/healthz`) and readiness (`/readyz`: database and Docker reachable).

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
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let (database, docker) = tokio::join!(crate::db::ping(&state.db), state.docker.ping());
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
        }),
    )
}
