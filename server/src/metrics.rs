//! Prometheus metrics: the process's one recorder and its text rendering. Counters and
//! histograms are recorded where things happen (requests, transitions, refusals, the
//! reconciler); gauges that are a count of what exists are set by the services when scraped
//! (`Services::refresh_gauges`); the listener is the HTTP door's (`crate::http::metrics`,
//! `--metrics-listen`, off by default, so they are never public by accident).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
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

/// Installs the recorder now, so that what happens before the first scrape counts.
pub fn init() {
    let _ = handle();
}

/// Everything recorded so far, in Prometheus' text format.
pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}
