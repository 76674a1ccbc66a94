//! HTTP API (axum) over [`FaceService`]: routes, error mapping, OpenAPI and metrics.
//!
//! - Every failure leaves through [`ApiError`] as `{"error":{"code","message"}}` with a stable
//!   code; the status/code table lives in [`error`].
//! - Uploads are limited to `server.max_upload_bytes`; an oversized body gets a readable 413.
//! - The service is synchronous and CPU-bound, so handlers run it on the blocking pool.

pub mod access;
pub mod error;
pub mod extract;
mod limit;
pub mod metrics;
pub mod openapi;
pub mod routes;

pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use openapi::ApiDoc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;
use limit::{refuse_oversized_bodies, UploadLimit};
use metrics_exporter_prometheus::PrometheusHandle;
use routes::{
    access as access_routes, cases, faces, misuse, reports, subjects, system, video, watchlists,
};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use tower_http::trace::TraceLayer;
use vigil_base::config::{MisuseConfig, ServerConfig};
use vigil_ingest::CameraManager;
use vigil_pipeline::video::VideoAnalysis;
use vigil_pipeline::FaceService;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    service: Arc<FaceService>,
    max_upload_bytes: usize,
    prometheus: PrometheusHandle,
    video: Option<VideoState>,
    access: access::Access,
    audit_anchors: Option<PathBuf>,
    misuse_policy: Arc<MisuseConfig>,
}

/// The live-video side, present when the server runs cameras.
#[derive(Clone)]
pub struct VideoState {
    pub cameras: Arc<CameraManager>,
    pub analysis: VideoAnalysis,
    pub ffmpeg: PathBuf,
    pub recordings_dir: PathBuf,
}

impl AppState {
    /// Installs the process-wide Prometheus recorder on first use. `access` authenticates
    /// every request but `/healthz` and `/v1/login` and keeps the audit log.
    pub fn new(service: Arc<FaceService>, server: &ServerConfig, access: access::Access) -> Self {
        Self {
            service,
            max_upload_bytes: server.max_upload_bytes,
            prometheus: metrics::prometheus_handle(),
            video: None,
            access,
            audit_anchors: None,
            misuse_policy: Arc::new(MisuseConfig::default()),
        }
    }

    /// The rules misuse detection applies (`[misuse]` in the configuration).
    pub fn with_misuse_policy(mut self, policy: MisuseConfig) -> Self {
        self.misuse_policy = Arc::new(policy);
        self
    }

    pub fn misuse_policy(&self) -> &MisuseConfig {
        &self.misuse_policy
    }

    /// The file of published audit heads that `GET /v1/audit/verify` checks the chain against.
    pub fn with_audit_anchors(mut self, path: PathBuf) -> Self {
        self.audit_anchors = Some(path);
        self
    }

    pub fn access(&self) -> &access::Access {
        &self.access
    }

    pub fn audit_anchors(&self) -> Option<PathBuf> {
        self.audit_anchors.clone()
    }

    /// Adds the cameras and sightings routes' backing.
    pub fn with_video(mut self, video: VideoState) -> Self {
        self.video = Some(video);
        self
    }

    pub fn video(&self) -> Option<&VideoState> {
        self.video.as_ref()
    }

    pub fn service(&self) -> &Arc<FaceService> {
        &self.service
    }

    pub fn max_upload_bytes(&self) -> usize {
        self.max_upload_bytes
    }

    pub fn prometheus(&self) -> &PrometheusHandle {
        &self.prometheus
    }
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let upload_limit = UploadLimit {
        max_upload_bytes: state.max_upload_bytes,
    };
    metrics::record_gallery_size(state.service.gallery_templates());
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/metrics", get(system::metrics))
        .route("/v1/openapi.json", get(system::openapi))
        .route("/v1/detect", post(faces::detect))
        .route("/v1/verify", post(faces::verify))
        .route("/v1/identify", post(faces::identify))
        .route(
            "/v1/subjects",
            get(subjects::list_subjects).post(subjects::create_subject),
        )
        .route(
            "/v1/subjects/{id}",
            get(subjects::show_subject).delete(subjects::delete_subject),
        )
        .route("/v1/subjects/{id}/templates", post(subjects::add_templates))
        .route("/v1/templates/{id}", delete(subjects::delete_template))
        .route(
            "/v1/templates/{id}/thumbnail",
            get(subjects::template_thumbnail),
        )
        .route(
            "/v1/cameras",
            get(video::list_cameras).post(video::add_camera),
        )
        .route(
            "/v1/cameras/{id}",
            get(video::show_camera)
                .put(video::replace_camera)
                .delete(video::delete_camera),
        )
        .route("/v1/cameras/{id}/enable", post(video::enable_camera))
        .route("/v1/cameras/{id}/disable", post(video::disable_camera))
        .route("/v1/sightings", get(video::list_sightings))
        .route("/v1/sightings/stream", get(video::sighting_stream))
        .route("/v1/sightings/{id}", get(video::show_sighting))
        .route("/v1/sightings/{id}/crop.jpg", get(video::sighting_crop))
        .route(
            "/v1/sightings/{id}/recording",
            get(video::sighting_recording),
        )
        .route("/v1/sightings/{id}/clip.mp4", get(video::sighting_clip))
        .route("/v1/login", post(access_routes::login))
        .route("/v1/logout", post(access_routes::logout))
        .route("/v1/me", get(access_routes::me))
        .route(
            "/v1/users",
            get(access_routes::list_users).post(access_routes::create_user),
        )
        .route("/v1/users/{id}/tokens", post(access_routes::issue_token))
        .route("/v1/audit", get(access_routes::audit_entries))
        .route("/v1/audit/verify", get(access_routes::audit_verify))
        .route("/v1/cases", get(cases::list_cases).post(cases::open_case))
        .route("/v1/cases/{reference}/close", post(cases::close_case))
        .route("/v1/search", post(cases::search))
        .route(
            "/v1/watchlists",
            get(watchlists::list_watchlists).post(watchlists::create_watchlist),
        )
        .route("/v1/watchlists/{id}/entries", post(watchlists::add_entry))
        .route(
            "/v1/watchlist-entries/{id}",
            delete(watchlists::remove_entry),
        )
        .route("/v1/alerts", get(watchlists::list_alerts))
        .route("/v1/alerts/stream", get(watchlists::alert_stream))
        .route("/v1/alerts/{id}", get(watchlists::show_alert))
        .route("/v1/alerts/{id}/enrolled-photo", get(watchlists::alert_enrolled_photo))
        .route("/v1/alerts/{id}/review", post(watchlists::review_alert))
        .route(
            "/v1/webhooks",
            get(watchlists::list_webhooks).post(watchlists::create_webhook),
        )
        .route(
            "/v1/webhooks/{id}/deliveries",
            get(watchlists::webhook_deliveries),
        )
        .route("/v1/misuse/alerts", get(misuse::list_alerts))
        .route(
            "/v1/misuse/alerts/{id}/acknowledge",
            post(misuse::acknowledge),
        )
        .route("/v1/misuse/activity", get(misuse::activity))
        .route(
            "/v1/subject-access-reports",
            post(reports::subject_access_report),
        )
        .route("/v1/misuse/scan", post(misuse::scan))
        // Only matched routes pass the guard (it needs the route pattern); unmatched paths go
        // to the fallbacks below, which reveal nothing.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::guard,
        ))
        .fallback(system::route_not_found)
        .method_not_allowed_fallback(system::method_not_allowed)
        // The last layer added sees the request first: trace, metrics (so refused uploads are
        // counted too), the declared-length check, then the streaming limit. `Router::layer`
        // wraps each route, so the metrics layer still sees the matched route.
        .layer(DefaultBodyLimit::max(state.max_upload_bytes))
        .layer(axum::middleware::from_fn_with_state(
            upload_limit,
            refuse_oversized_bodies,
        ))
        .layer(axum::middleware::from_fn(metrics::track_requests))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests in
/// flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving the vigil API");
    }
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}
