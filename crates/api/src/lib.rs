//! HTTP API (axum) over [`FaceService`]: routes, error mapping, OpenAPI and metrics.
//!
//! - Every failure leaves through [`ApiError`] as `{"error":{"code","message"}}` with a stable
//!   code; the status/code table lives in [`error`].
//! - Uploads are limited to `server.max_upload_bytes`; an oversized body gets a readable 413.
//! - The service is synchronous and CPU-bound, so handlers run it on the blocking pool.

pub mod access;
pub mod bounded_audit;
pub mod error;
pub mod extract;
mod limit;
pub mod limits;
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
    limits: Arc<limits::RequestLimits>,
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
            limits: Arc::new(limits::RequestLimits::new(server)),
        }
    }

    /// In-flight, connection and time limits (`[server]`).
    pub fn limits(&self) -> &Arc<limits::RequestLimits> {
        &self.limits
    }

    /// The calling client's address: the peer, or what a trusted proxy says it forwarded for.
    pub fn client_address(
        &self,
        headers: &axum::http::HeaderMap,
        extensions: &axum::http::Extensions,
    ) -> std::net::IpAddr {
        self.limits
            .client_address(limits::peer_address(extensions), headers)
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
        .route("/v1/cameras/{id}/live.jpg", get(video::live_picture))
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
        .route(
            "/v1/cases/{reference}/evidence",
            get(routes::evidence::export_evidence),
        )
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
        .route(
            "/v1/alerts/{id}/enrolled-photo",
            get(watchlists::alert_enrolled_photo),
        )
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
        // The console's assets are public (they hold no data) and outside the guard.
        .merge(vigil_console::router())
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
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::limit_requests,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then lets the requests in flight
/// finish for at most [`DRAIN_TIME`] (an open event stream never finishes by itself).
///
/// Each connection is counted against its client address (`max_connections_per_client`;
/// beyond, it is closed at once) and must send its headers within `header_timeout_secs`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto;
    use tower::ServiceExt;

    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving the vigil API");
    }
    let limits = state.limits().clone();
    let access = state.access().clone();
    let app = router(state);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Summaries of refusal windows are written even when no refusal follows a burst.
    let flusher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(
            (bounded_audit::WINDOW_MS / 4) as u64,
        ));
        loop {
            tick.tick().await;
            access.flush_refusals().await;
        }
    });
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = limits.open_connection(peer.ip()) else {
            tracing::debug!(%peer, "connection refused: its address holds its share");
            drop(stream);
            continue;
        };
        let service = app.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            },
        );
        let connection = builder
            .serve_connection_with_upgrades(
                TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            )
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIME, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("requests still open after the drain time were cut");
    }
    flusher.abort();
    Ok(())
}

/// How long requests in flight may take to finish once the server is asked to stop.
pub const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);
