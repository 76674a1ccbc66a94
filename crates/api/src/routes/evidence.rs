//! `GET /v1/cases/{reference}/evidence`: the case's evidence bundle, signed with the server's
//! key (docs/design/017).

use super::cases::not_in_case;
use super::now_ms;
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::extract::ApiPath;
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use vigil_auth::Principal;
use vigil_evidence::{ClipSource, EvidenceError, EvidenceKey, ExportRequest};

/// The case's evidence as one tar archive: `case.json`, `alerts.json` (every review),
/// `sightings/<id>.json` and `.jpg`, `clips/<id>.mp4` where recorded, `audit.jsonl` (the entries
/// naming the case and the chain head), and `manifest.json` with its Ed25519 signature
/// `manifest.sig` and `public_key.txt`. Check it with `vigil verify-export`. For the case's
/// owner and members; needs a reason (`X-Vigil-Reason`), which goes into the audit entry and
/// the manifest.
#[utoipa::path(
    get,
    path = "/v1/cases/{reference}/evidence",
    tag = "cases",
    params(("reference" = String, Path, description = "Case reference")),
    responses(
        (status = 200, description = "The bundle (tar)", content_type = "application/x-tar"),
        (status = 400, description = "reason_required", body = ErrorBody),
        (status = 403, description = "forbidden, not_in_case", body = ErrorBody),
        (status = 404, description = "not_found: no such case", body = ErrorBody),
    )
)]
pub async fn export_evidence(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(reference): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, reason) = super::case_and_reason(&headers);
    if reason.trim().is_empty() {
        return Ok((
            StatusCode::BAD_REQUEST,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: "reason_required".into(),
                    message: "say why the case's evidence leaves the system in X-Vigil-Reason"
                        .into(),
                },
            }),
        )
            .into_response());
    }
    // The key lives in the data directory, which is where the server publishes its audit heads.
    let data_dir = state
        .audit_anchors()
        .and_then(|anchors| anchors.parent().map(|folder| folder.to_path_buf()))
        .ok_or_else(|| ApiError::NotFound("a data directory for the signing key".into()))?;
    let clips = state.video().map(|video| ClipSource {
        ffmpeg: video.ffmpeg.clone(),
        recordings_dir: video.recordings_dir.clone(),
    });
    let store = state.access().store.clone();
    tokio::task::spawn_blocking(move || {
        let case = store
            .case(&reference)?
            .ok_or_else(|| ApiError::NotFound(format!("case {reference}")))?;
        if !case.admits(&principal.name) {
            return Ok(not_in_case(format!(
                "you are neither the owner nor a member of case {reference}"
            )));
        }
        let key = EvidenceKey::load_or_create(&data_dir, store.sealer()).map_err(internal)?;
        let mut bundle = Vec::new();
        // Its audit entry (action `export`, the case, the reason) is written by the export
        // itself, before the bundle is read, so the bundle holds it.
        vigil_evidence::export_case(
            &store,
            &key,
            &ExportRequest {
                case: case.reference.clone(),
                actor: vigil_audit::Actor {
                    user_id: Some(principal.user_id.0.to_string()),
                    user_name: principal.name.clone(),
                },
                reason,
                now_ms: now_ms(),
            },
            clips.as_ref(),
            &mut bundle,
        )
        .map_err(internal)?;
        Ok((
            [
                (CONTENT_TYPE, vigil_evidence::CONTENT_TYPE.to_string()),
                (
                    CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"evidence-{}.tar\"",
                        safe_name(&reference)
                    ),
                ),
            ],
            Body::from(bundle),
        )
            .into_response())
    })
    .await?
}

fn internal(error: EvidenceError) -> ApiError {
    match error {
        EvidenceError::UnknownCase(reference) => ApiError::NotFound(format!("case {reference}")),
        EvidenceError::Store(error) => error.into(),
        other => ApiError::Serve(std::io::Error::other(other.to_string())),
    }
}

/// A case reference reduced to characters safe inside a quoted header value and a file name.
fn safe_name(reference: &str) -> String {
    reference
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
