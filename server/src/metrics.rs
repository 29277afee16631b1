//! Prometheus metrics, served on a listener of their own (`--metrics-listen`, off by default,
//! so they are never public by accident). Counters and histograms are recorded where things
//! happen (requests, transitions, refusals, the reconciler); gauges that are a count of what
//! exists (spaces by state, terminal sessions, database connections) are read when scraped.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::{ConnectionTrait, EntityTrait, QuerySelect};

use crate::entities::space;
use crate::services::Services;
use app::lifecycle::SpaceState;

/// Seconds: from a fast API call to a slow container start.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The process's one recorder (metrics are process-wide), installed on first use.
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: cannot install the recorder");
                    None
                }
            }
        })
        .as_ref()
}

/// Records every request: `hangar_http_requests_total` and
/// `hangar_http_request_duration_seconds` by method, route pattern and status.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    // The route's pattern, not the path: ids would make every space a series of its own.
    // Written `/spaces/:id`, as some text-format parsers stop at a `}` inside a label.
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || "unmatched".to_owned(),
        |p| p.as_str().replace('{', ":").replace('}', ""),
    );
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("hangar_http_requests_total", &labels).increment(1);
    metrics::histogram!("hangar_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Sets the gauges that count what exists now.
async fn refresh_gauges(services: &Services) {
    let counts: Result<Vec<(SpaceState, i64)>, _> = space::Entity::find()
        .select_only()
        .column(space::Column::State)
        .column_as(
            sea_orm::sea_query::Expr::col(space::Column::Id).count(),
            "n",
        )
        .group_by(space::Column::State)
        .into_tuple()
        .all(&services.db)
        .await;
    if let Ok(counts) = counts {
        for state in SpaceState::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| *s == state)
                .map_or(0, |(_, n)| *n);
            metrics::gauge!("hangar_spaces", "state" => state.as_str()).set(n as f64);
        }
    }
    metrics::gauge!("hangar_terminal_sessions").set(services.terminals.session_count() as f64);
    let (size, idle) = match services.db.get_database_backend() {
        sea_orm::DatabaseBackend::Sqlite => {
            let pool = services.db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        sea_orm::DatabaseBackend::Postgres => {
            let pool = services.db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => (0, 0),
    };
    metrics::gauge!("hangar_db_connections", "state" => "open").set(f64::from(size));
    metrics::gauge!("hangar_db_connections", "state" => "idle").set(idle as f64);
}

async fn scrape(State(services): State<Services>) -> Response {
    refresh_gauges(&services).await;
    let body = handle().map(PrometheusHandle::render).unwrap_or_default();
    Response::builder()
        .header("content-type", "text/plain; version=0.0.4")
        .body(body.into())
        .unwrap_or_default()
}

/// Installs the recorder now, so that what happens before the first scrape counts.
pub fn init() {
    let _ = handle();
}

/// Serves `GET /metrics` on `addr` until the task is dropped.
pub async fn serve(
    addr: SocketAddr,
    services: Services,
) -> Result<tokio::task::JoinHandle<()>, String> {
    init();
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
