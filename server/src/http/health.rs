//! Liveness (`/healthz`) and readiness (`/readyz`: database and Docker reachable), with what
//! the host enforces of the limits Hangar promises (volume sizes, network isolation,
//! no-new-privileges). Anyone
//! may ask; what went wrong is told in full to admins only (and to the debug log): the raw
//! errors name hosts, paths and versions that are nobody else's business.

use app::api::ssr::Presented;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use super::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

#[derive(Debug, Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// `ok`, else `unavailable` (the reason for admins).
    pub database: String,
    /// `ok`, else `unavailable` (the reason for admins).
    pub docker: String,
    /// Whether volume sizes are hard limits: `enforced`, or `not enforced` (for admins, how
    /// or why). Does not make Hangar unready.
    pub storage: String,
    /// Whether spaces are kept from the host and 169.254.0.0/16, likewise.
    pub network: String,
    /// Whether spaces run with no-new-privileges (setuid programs do not raise privileges),
    /// likewise.
    pub privileges: String,
}

pub async fn readyz(State(state): State<AppState>, parts: Parts) -> (StatusCode, Json<Readiness>) {
    let (database, docker, enforcement) = tokio::join!(
        crate::db::ping(&state.db),
        state.docker.ping(),
        state.services.runtime.enforcement()
    );
    let ready = database.is_ok() && docker.is_ok();
    let admin = match Presented::of(&parts) {
        Ok(presented) => state
            .api
            .caller(&presented)
            .await
            .is_ok_and(|caller| caller.is_admin()),
        Err(_) => false,
    };
    let detailed = !ready && admin;
    // The sentences name paths and devices: admins read them, others the verdict.
    let enforced = |result: Result<String, String>| match result {
        Ok(how) if admin => how,
        Ok(_) => "enforced".to_owned(),
        Err(why) if admin => format!("not enforced: {why}"),
        Err(_) => "not enforced".to_owned(),
    };
    let describe = |part: &str, result: Result<(), String>| match result {
        Ok(()) => "ok".to_owned(),
        Err(reason) => {
            tracing::debug!(part, %reason, "not ready");
            if detailed {
                reason
            } else {
                "unavailable".to_owned()
            }
        }
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready,
            database: describe("database", database),
            docker: describe("docker", docker),
            storage: enforced(enforcement.storage),
            network: enforced(enforcement.network),
            privileges: enforced(enforcement.privileges),
        }),
    )
}
