//! `GET /metrics` on a listener of its own (`--metrics-listen`): never on Hangar's public
//! address by accident.

use std::net::SocketAddr;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::services::Services;

async fn scrape(State(services): State<Services>) -> Response {
    services.refresh_gauges().await;
    Response::builder()
        .header("content-type", "text/plain; version=0.0.4")
        .body(crate::metrics::render().into())
        .unwrap_or_default()
}

/// Serves `GET /metrics` on `addr` until the task is dropped.
pub async fn serve(
    addr: SocketAddr,
    services: Services,
) -> Result<tokio::task::JoinHandle<()>, String> {
    crate::metrics::init();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(services);
    tracing::info!("metrics at http://{addr}/metrics");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the metrics listener stopped");
        }
    }))
}
