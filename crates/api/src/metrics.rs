//! Prometheus metrics: per-route request counts and latencies, and the service's own counters.
//!
//! The `metrics` recorder is process-global and can be installed only once, while a process
//! (a test, or an app that restarts its server) may build several routers; so the handle is
//! kept in a `OnceLock` and shared.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

pub const HTTP_REQUESTS: &str = "vigil_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "vigil_http_request_duration_seconds";
pub const FACES_DETECTED: &str = "vigil_faces_detected_total";
pub const ENROLMENTS: &str = "vigil_enrolments_total";
pub const ENROLLED_TEMPLATES: &str = "vigil_enrolled_templates_total";
pub const IDENTIFICATIONS: &str = "vigil_identifications_total";
pub const VERIFICATIONS: &str = "vigil_verifications_total";
pub const GALLERY_TEMPLATES: &str = "vigil_gallery_templates";

/// Latency buckets, seconds: from a cached health check to a large multi-face upload on CPU.
const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first use.
pub fn prometheus_handle() -> PrometheusHandle {
    PROMETHEUS.get_or_init(install_recorder).clone()
}

fn install_recorder() -> PrometheusHandle {
    let builder = PrometheusBuilder::new();
    let builder = match builder.set_buckets_for_metric(
        Matcher::Full(HTTP_REQUEST_DURATION.to_string()),
        LATENCY_BUCKETS_SECONDS,
    ) {
        Ok(with_buckets) => with_buckets,
        Err(error) => {
            tracing::warn!(%error, "latency buckets refused; durations are exported as summaries");
            PrometheusBuilder::new()
        }
    };
    match builder.install_recorder() {
        Ok(handle) => handle,
        Err(error) => {
            // Another recorder owns the process (e.g. an embedding application installed its
            // own). Serve an empty, private one rather than failing to start.
            tracing::warn!(%error, "cannot install the Prometheus recorder; /metrics will be empty");
            PrometheusBuilder::new().build_recorder().handle()
        }
    }
}

/// Counts every request and its latency by method, matched route (not raw path, to keep label
/// cardinality bounded) and status.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}

pub fn record_gallery_size(templates: usize) {
    metrics::gauge!(GALLERY_TEMPLATES).set(templates as f64);
}
