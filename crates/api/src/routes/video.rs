//! Cameras (add, change, remove, enable, disable at run time), sightings, their best-shot crops,
//! recorded clips around them, and the live sighting stream (SSE).

use crate::access::CaseScope;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::{AppState, VideoState};
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};
use vigil_audit::AuditAction;
use vigil_auth::Principal;
use vigil_base::{CameraConfig, CameraId, SubjectId};
use vigil_ingest::{position_of, CameraStatus, RecordingPosition};
use vigil_pipeline::video::{sighting_view, CameraAnalysisView, SightingView};
use vigil_store::{SightingId, SightingQuery};

/// A camera's settings and its live state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CameraView {
    pub config: CameraConfig,
    /// State (`starting`, `streaming`, `reconnecting`, `failed`, `ended`, `disabled`) and
    /// counters (frames, drops, restarts).
    pub status: CameraStatus,
    /// What analysing the camera costs (frames detected and gated, faces, embeddings, time
    /// per frame) since its analysis started; absent while it is not analysed.
    pub analysis: Option<CameraAnalysisView>,
}

fn video(state: &AppState) -> Result<&VideoState, ApiError> {
    state
        .video()
        .ok_or_else(|| ApiError::NotFound("video analysis (not enabled on this server)".into()))
}

fn camera_id(text: &str) -> Result<CameraId, ApiError> {
    CameraId::parse(text).map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn view(video: &VideoState, id: &CameraId) -> Result<CameraView, ApiError> {
    let config = video
        .cameras
        .config(id)
        .ok_or_else(|| ApiError::NotFound(format!("camera {id}")))?;
    let status = video
        .cameras
        .status(id)
        .ok_or_else(|| ApiError::NotFound(format!("camera {id}")))?;
    let analysis = video.analysis.camera_analysis(id);
    Ok(CameraView {
        // camera passwords never leave the server (a PUT of the redacted URL keeps them)
        config: config.redacted(),
        status,
        analysis,
    })
}

/// Runs a blocking camera operation (they stop and start processes) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await?
}

/// Lists the cameras with their state.
#[utoipa::path(
    get,
    path = "/v1/cameras",
    tag = "video",
    responses((status = 200, description = "All cameras", body = Vec<CameraView>))
)]
pub async fn list_cameras(
    State(state): State<AppState>,
) -> Result<Json<Vec<CameraView>>, ApiError> {
    let video = video(&state)?;
    let views = video
        .cameras
        .configs()
        .iter()
        .filter_map(|c| view(video, &c.id).ok())
        .collect();
    Ok(Json(views))
}

/// Adds a camera and starts it (when enabled). Kept across restarts.
#[utoipa::path(
    post,
    path = "/v1/cameras",
    tag = "video",
    request_body = CameraConfig,
    responses(
        (status = 201, description = "Added", body = CameraView),
        (status = 400, description = "invalid, bad_request", body = ErrorBody),
        (status = 409, description = "conflict: the id is taken", body = ErrorBody),
    )
)]
pub async fn add_camera(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: Result<Json<CameraConfig>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(camera) = body?;
    let video = video(&state)?.clone();
    let id = camera.id.clone();
    let audit = camera_entry(&principal, AuditAction::CameraAdd, &id, Some(&camera));
    let added = blocking(move || {
        video.cameras.add_audited(camera, Some(&audit))?;
        view(&video, &id)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(added)))
}

#[utoipa::path(
    get,
    path = "/v1/cameras/{id}",
    tag = "video",
    params(("id" = String, Path, description = "Camera id")),
    responses(
        (status = 200, description = "The camera", body = CameraView),
        (status = 404, description = "not_found", body = ErrorBody),
    )
)]
pub async fn show_camera(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CameraView>, ApiError> {
    Ok(Json(view(video(&state)?, &camera_id(&id)?)?))
}

/// Replaces a camera's settings and restarts it. The body's `id` must be the path's (or absent).
#[utoipa::path(
    put,
    path = "/v1/cameras/{id}",
    tag = "video",
    params(("id" = String, Path, description = "Camera id")),
    request_body = CameraConfig,
    responses(
        (status = 200, description = "Changed and restarted", body = CameraView),
        (status = 400, description = "invalid, bad_request", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
    )
)]
pub async fn replace_camera(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    body: Result<Json<CameraConfig>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<CameraView>, ApiError> {
    let Json(mut camera) = body?;
    let id = camera_id(&id)?;
    if camera.id.0.is_empty() {
        camera.id = id.clone();
    } else if camera.id != id {
        return Err(ApiError::BadRequest(format!(
            "the body names camera {} but the path names {id}",
            camera.id
        )));
    }
    let video = video(&state)?.clone();
    let audit = camera_entry(&principal, AuditAction::CameraChange, &id, Some(&camera));
    Ok(Json(
        blocking(move || {
            video.cameras.replace_audited(camera, Some(&audit))?;
            view(&video, &id)
        })
        .await?,
    ))
}

/// Stops and removes a camera. Its sightings and recordings stay until retention.
#[utoipa::path(
    delete,
    path = "/v1/cameras/{id}",
    tag = "video",
    params(("id" = String, Path, description = "Camera id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "not_found", body = ErrorBody),
    )
)]
pub async fn delete_camera(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = camera_id(&id)?;
    let video = video(&state)?.clone();
    let audit = camera_entry(&principal, AuditAction::CameraRemove, &id, None);
    blocking(move || Ok(video.cameras.remove_audited(&id, Some(&audit))?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_enabled(
    state: AppState,
    principal: Principal,
    id: String,
    enabled: bool,
) -> Result<Json<CameraView>, ApiError> {
    let id = camera_id(&id)?;
    let video = video(&state)?.clone();
    let mut audit = camera_entry(&principal, AuditAction::CameraChange, &id, None);
    audit.request = serde_json::json!({ "enabled": enabled });
    Ok(Json(
        blocking(move || {
            video
                .cameras
                .set_enabled_audited(&id, enabled, Some(&audit))?;
            view(&video, &id)
        })
        .await?,
    ))
}

#[utoipa::path(
    post,
    path = "/v1/cameras/{id}/enable",
    tag = "video",
    params(("id" = String, Path, description = "Camera id")),
    responses((status = 200, description = "Enabled", body = CameraView), (status = 404, description = "not_found", body = ErrorBody))
)]
pub async fn enable_camera(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CameraView>, ApiError> {
    set_enabled(state, principal, id, true).await
}

#[utoipa::path(
    post,
    path = "/v1/cameras/{id}/disable",
    tag = "video",
    params(("id" = String, Path, description = "Camera id")),
    responses((status = 200, description = "Disabled", body = CameraView), (status = 404, description = "not_found", body = ErrorBody))
)]
pub async fn disable_camera(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CameraView>, ApiError> {
    set_enabled(state, principal, id, false).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SightingsQuery {
    /// Only this camera.
    pub camera: Option<String>,
    /// Sightings overlapping [from_ms, to_ms], unix milliseconds.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Only sightings whose top candidate is this subject.
    pub subject_id: Option<i64>,
    /// Page backwards: sightings with an id below this.
    pub before_id: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u64>,
}

/// Lists sightings, newest first.
#[utoipa::path(
    get,
    path = "/v1/sightings",
    tag = "video",
    params(SightingsQuery),
    responses((status = 200, description = "Sightings", body = Vec<SightingView>), (status = 400, description = "bad_request", body = ErrorBody))
)]
pub async fn list_sightings(
    State(state): State<AppState>,
    scope: Option<Extension<CaseScope>>,
    ApiQuery(query): ApiQuery<SightingsQuery>,
) -> Result<Json<Vec<SightingView>>, ApiError> {
    let video = video(&state)?.clone();
    let camera = query.camera.as_deref().map(camera_id).transpose()?;
    let store_query = SightingQuery {
        camera,
        from_ms: query.from_ms,
        to_ms: query.to_ms,
        subject: query.subject_id.map(SubjectId),
        before_id: query.before_id.map(SightingId),
        case: scope.map(|Extension(CaseScope(case))| case),
        limit: query.limit.unwrap_or(100).clamp(1, 1000),
    };
    let records = blocking(move || {
        Ok(video
            .analysis
            .store()
            .list_sightings(&store_query)
            .map_err(vigil_pipeline::ServiceError::from)?)
    })
    .await?;
    Ok(Json(records.into_iter().map(SightingView::of).collect()))
}

#[utoipa::path(
    get,
    path = "/v1/sightings/{id}",
    tag = "video",
    params(("id" = i64, Path, description = "Sighting id")),
    responses((status = 200, description = "The sighting", body = SightingView), (status = 404, description = "not_found", body = ErrorBody))
)]
pub async fn show_sighting(
    State(state): State<AppState>,
    scope: Option<Extension<CaseScope>>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<SightingView>, ApiError> {
    within_scope(&state, scope, id).await?;
    let video = video(&state)?.clone();
    Ok(Json(
        blocking(move || {
            Ok(sighting_view(
                video.analysis.store().as_ref(),
                SightingId(id),
            )?)
        })
        .await?,
    ))
}

/// The camera's live picture: its latest analysed frame with a box around each tracked face
/// (green: confirmed track; amber: not yet confirmed). A request keeps the picture updated for
/// the next 5 s; the first answers once a frame is in (at most 2 s). `X-Vigil-Faces` counts the
/// boxes, `X-Vigil-Frame-At` is the frame's time (unix ms). Watching is audited, one entry per
/// user and camera per minute.
#[utoipa::path(
    get,
    path = "/v1/cameras/{id}/live.jpg",
    tag = "video",
    params(("id" = String, Path, description = "Camera id")),
    responses((status = 200, description = "JPEG", content_type = "image/jpeg"), (status = 404, description = "not_found: no such camera, or no analysed frame yet", body = ErrorBody))
)]
pub async fn live_picture(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let video = video(&state)?.clone();
    let camera = CameraId(id.clone());
    let picture = video
        .analysis
        .watch_live(&camera, super::now_ms())
        .ok_or_else(|| ApiError::NotFound(format!("camera {id} (or it is not analysed)")))?;
    state
        .access()
        .record_bounded(
            crate::bounded_audit::AuditKey {
                action: AuditAction::ViewLive,
                name: principal.name.clone(),
                place: id.clone(),
            },
            vigil_audit::NewAuditEntry {
                actor: vigil_audit::Actor {
                    user_id: Some(principal.user_id.0.to_string()),
                    user_name: principal.name.clone(),
                },
                action: AuditAction::ViewLive,
                target: vigil_audit::Target {
                    kind: "camera".into(),
                    id: id.clone(),
                },
                case_ref: None,
                reason: String::new(),
                request: serde_json::json!({}),
                probe_image: None,
                outcome: vigil_audit::Outcome::success(""),
            },
        )
        .await;
    // A camera watched from now on has no frame kept yet: wait for the next analysed one.
    let started = std::time::Instant::now();
    let frame = loop {
        match picture.latest() {
            Some(frame) if super::now_ms() - frame.at_ms < 10_000 => break frame,
            _ if started.elapsed() > Duration::from_secs(2) => {
                return Err(ApiError::NotFound(format!(
                    "no live picture of camera {id} yet: ask again in a moment"
                )))
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let faces = frame.faces.len();
    let at_ms = frame.at_ms;
    let jpeg = blocking(move || frame.to_jpeg().map_err(ApiError::from)).await?;
    Ok((
        [
            (CONTENT_TYPE, "image/jpeg".to_string()),
            (axum::http::header::CACHE_CONTROL, "no-store".to_string()),
            (
                axum::http::HeaderName::from_static("x-vigil-faces"),
                faces.to_string(),
            ),
            (
                axum::http::HeaderName::from_static("x-vigil-frame-at"),
                at_ms.to_string(),
            ),
        ],
        jpeg,
    ))
}

/// The sighting's best-shot face crop.
#[utoipa::path(
    get,
    path = "/v1/sightings/{id}/crop.jpg",
    tag = "video",
    params(("id" = i64, Path, description = "Sighting id")),
    responses((status = 200, description = "JPEG", content_type = "image/jpeg"), (status = 404, description = "not_found", body = ErrorBody))
)]
pub async fn sighting_crop(
    State(state): State<AppState>,
    scope: Option<Extension<CaseScope>>,
    ApiPath(id): ApiPath<i64>,
) -> Result<impl IntoResponse, ApiError> {
    within_scope(&state, scope, id).await?;
    let video = video(&state)?.clone();
    let crop = blocking(move || {
        video
            .analysis
            .store()
            .sighting_crop(SightingId(id))?
            .ok_or_else(|| ApiError::NotFound(format!("sighting {id}")))
    })
    .await?;
    Ok(([(CONTENT_TYPE, "image/jpeg")], crop))
}

/// Where the sighting's best shot lies in the camera's recordings.
#[utoipa::path(
    get,
    path = "/v1/sightings/{id}/recording",
    tag = "video",
    params(("id" = i64, Path, description = "Sighting id")),
    responses((status = 200, description = "Segment and offset", body = vigil_ingest::RecordingPosition), (status = 404, description = "not_found: no sighting, or no recording of that moment", body = ErrorBody))
)]
pub async fn sighting_recording(
    State(state): State<AppState>,
    scope: Option<Extension<CaseScope>>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<RecordingPosition>, ApiError> {
    within_scope(&state, scope, id).await?;
    let video = video(&state)?.clone();
    Ok(Json(
        blocking(move || {
            let store = video.analysis.store();
            let sighting = sighting_view(store.as_ref(), SightingId(id))?;
            let segments = store.segments_between(
                &sighting.camera,
                sighting.best_at_ms,
                sighting.best_at_ms,
            )?;
            position_of(&segments, sighting.best_at_ms)
                .ok_or_else(|| ApiError::NotFound(format!("recording of sighting {id}")))
        })
        .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClipQuery {
    /// Seconds before the sighting's start (default 5, at most 120).
    pub before_secs: Option<f64>,
    /// Seconds after its end (default 5, at most 120).
    pub after_secs: Option<f64>,
}

/// An MP4 clip around the sighting, cut from the recordings without re-encoding.
#[utoipa::path(
    get,
    path = "/v1/sightings/{id}/clip.mp4",
    tag = "video",
    params(("id" = i64, Path, description = "Sighting id"), ClipQuery),
    responses((status = 200, description = "MP4", content_type = "video/mp4"), (status = 404, description = "not_found: no sighting, or no recording of that time", body = ErrorBody))
)]
pub async fn sighting_clip(
    State(state): State<AppState>,
    scope: Option<Extension<CaseScope>>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<ClipQuery>,
) -> Result<impl IntoResponse, ApiError> {
    within_scope(&state, scope, id).await?;
    let bound = |v: Option<f64>| -> Result<i64, ApiError> {
        let secs = v.unwrap_or(5.0);
        if !(0.0..=120.0).contains(&secs) {
            return Err(ApiError::BadRequest(
                "before_secs and after_secs must be between 0 and 120".into(),
            ));
        }
        Ok((secs * 1000.0) as i64)
    };
    let before = bound(query.before_secs)?;
    let after = bound(query.after_secs)?;
    let video = video(&state)?.clone();
    let bytes = blocking(move || {
        let store = video.analysis.store();
        let sighting = sighting_view(store.as_ref(), SightingId(id))?;
        let from = sighting.started_at_ms - before;
        let to = sighting.ended_at_ms + after;
        let segments = store.segments_between(&sighting.camera, from, to)?;
        if segments.is_empty() {
            return Err(ApiError::NotFound(format!("recording of sighting {id}")));
        }
        let dir = tempfile::tempdir().map_err(ApiError::Serve)?;
        let out = dir.path().join("clip.mp4");
        vigil_ingest::export_clip(
            &video.ffmpeg,
            &video.recordings_dir,
            &segments,
            from,
            to,
            &out,
        )?;
        std::fs::read(&out).map_err(ApiError::Serve)
    })
    .await?;
    Ok((
        [
            (CONTENT_TYPE, "video/mp4".to_string()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"sighting-{id}.mp4\""),
            ),
        ],
        Body::from(bytes),
    ))
}

/// Server-sent events: one `sighting` event (JSON `SightingView`) per new sighting, as it is
/// stored. A client that falls far behind gets a `lagged` event saying how many it missed.
#[utoipa::path(
    get,
    path = "/v1/sightings/stream",
    tag = "video",
    responses((status = 200, description = "text/event-stream of sightings", content_type = "text/event-stream"))
)]
pub async fn sighting_stream(
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let receiver = video(&state)?.analysis.subscribe();
    let events = stream::unfold(receiver, |mut receiver| async move {
        loop {
            let event = match receiver.recv().await {
                Ok(sighting) => Event::default()
                    .event("sighting")
                    .id(sighting.id.to_string())
                    .json_data(sighting.as_ref()),
                Err(RecvError::Lagged(missed)) => {
                    Ok(Event::default().event("lagged").data(missed.to_string()))
                }
                Err(RecvError::Closed) => return None,
            };
            match event {
                Ok(event) => return Some((Ok(event), receiver)),
                Err(error) => {
                    tracing::warn!(%error, "cannot serialise a sighting event");
                    continue;
                }
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Refuses (as not found: its existence is not the caller's business) a sighting that the
/// request's case, when it is limited to one, does not hold.
async fn within_scope(
    state: &AppState,
    scope: Option<Extension<CaseScope>>,
    id: i64,
) -> Result<(), ApiError> {
    let Some(Extension(CaseScope(case))) = scope else {
        return Ok(());
    };
    let store = state.access().store.clone();
    let held =
        tokio::task::spawn_blocking(move || store.case_holds_sighting(&case, SightingId(id)))
            .await??;
    if held {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("sighting {id}")))
    }
}

/// The audit entry of a camera change, written in the same transaction as the stored settings
/// (the routes are `Transactional`). The settings are summarised without the URL, which may
/// carry credentials.
fn camera_entry(
    principal: &Principal,
    action: AuditAction,
    id: &CameraId,
    camera: Option<&CameraConfig>,
) -> vigil_audit::NewAuditEntry {
    let request = camera.map_or_else(
        || serde_json::json!({}),
        |camera| {
            serde_json::json!({
                "url": vigil_base::camera::redact_url(&camera.url),
                "substream_url": camera.substream_url.as_deref().map(vigil_base::camera::redact_url),
                "enabled": camera.enabled,
                "record": camera.record,
                "analysis_fps": camera.analysis_fps,
            })
        },
    );
    super::audit_entry(
        principal,
        action,
        ("camera", id.to_string()),
        None,
        "",
        request,
    )
}
