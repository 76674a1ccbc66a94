//! Cases, and the retrospective search that must name one.

use super::{audit_entry, now_ms};
use crate::access::AuditFindings;
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::extract::{ApiPath, ApiQuery, UploadForm};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use vigil_audit::AuditAction;
use vigil_auth::Principal;
use vigil_base::CameraId;
use vigil_pipeline::video::{SearchFilter, SearchReport};
use vigil_store::{Case, NewCase};

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewCaseBody {
    pub reference: String,
    pub purpose: String,
    pub legal_basis: String,
    /// Login names of the users who may act under the case besides its owner (the caller);
    /// each must be an existing user (400 `invalid` otherwise). Stored by user id.
    #[serde(default)]
    pub members: Vec<String>,
    /// Unix milliseconds; required: no case is open-ended.
    pub expires_at_ms: i64,
    /// Days the sightings behind this case's alerts are kept after it closes or expires
    /// (default 30, at most 3650).
    pub evidence_retention_days: Option<u32>,
}

/// Opens a case owned by the caller; recorded in the audit log in the same transaction.
#[utoipa::path(
    post,
    path = "/v1/cases",
    tag = "cases",
    request_body = NewCaseBody,
    responses(
        (status = 201, description = "Opened", body = vigil_store::Case),
        (status = 400, description = "invalid: a missing purpose, legal basis or expiry, or a member who is not a user", body = ErrorBody),
        (status = 409, description = "conflict", body = ErrorBody),
    )
)]
pub async fn open_case(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: Result<Json<NewCaseBody>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(body) = body?;
    let store = state.access().store.clone();
    let case = tokio::task::spawn_blocking(move || {
        let entry = audit_entry(
            &principal,
            AuditAction::CaseOpen,
            ("case", body.reference.clone()),
            Some(body.reference.clone()),
            &body.purpose,
            serde_json::json!({
                "legal_basis": body.legal_basis,
                "members": body.members,
                "expires_at_ms": body.expires_at_ms,
                "evidence_retention_days": body.evidence_retention_days,
            }),
        );
        store.open_case(
            &NewCase {
                reference: body.reference,
                purpose: body.purpose,
                legal_basis: body.legal_basis,
                owner: principal.name.clone(),
                members: body.members,
                expires_at_ms: body.expires_at_ms,
                evidence_retention_days: body.evidence_retention_days,
            },
            &entry,
            now_ms(),
        )
    })
    .await??;
    Ok((StatusCode::CREATED, Json(case)))
}

/// Lists cases.
#[utoipa::path(get, path = "/v1/cases", tag = "cases", responses((status = 200, description = "Cases", body = Vec<vigil_store::Case>)))]
pub async fn list_cases(State(state): State<AppState>) -> Result<Json<Vec<Case>>, ApiError> {
    let store = state.access().store.clone();
    Ok(Json(
        tokio::task::spawn_blocking(move || store.cases()).await??,
    ))
}

/// 403 `not_in_case`: the caller may not do this to a case (or to what belongs to it). The
/// guard logs the refusal (the route is `Transactional`).
pub(crate) fn not_in_case(message: String) -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(ErrorBody {
            error: ErrorDetail {
                code: "not_in_case".into(),
                message,
            },
        }),
    )
        .into_response()
}

/// Closes a case: nothing more can be done under it. Only its owner may close it (members act
/// under a case; ending it is the owner's decision).
#[utoipa::path(
    post,
    path = "/v1/cases/{reference}/close",
    tag = "cases",
    params(("reference" = String, Path, description = "Case reference")),
    responses(
        (status = 200, description = "Closed", body = vigil_store::Case),
        (status = 403, description = "not_in_case: the caller is not the case's owner", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
    )
)]
pub async fn close_case(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(reference): ApiPath<String>,
) -> Result<Response, ApiError> {
    let store = state.access().store.clone();
    tokio::task::spawn_blocking(move || {
        let case = store
            .case(&reference)?
            .ok_or_else(|| ApiError::NotFound(format!("case {reference}")))?;
        if case.owner != principal.name {
            return Ok(not_in_case(format!(
                "only the owner of case {reference} ({}) may close it",
                case.owner
            )));
        }
        let entry = audit_entry(
            &principal,
            AuditAction::CaseClose,
            ("case", reference.clone()),
            Some(reference.clone()),
            "closed",
            serde_json::json!({}),
        );
        let closed = store.close_case(&reference, &entry, now_ms())?;
        Ok(Json(closed).into_response())
    })
    .await?
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Comma-separated camera ids; all cameras when absent.
    pub cameras: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// At most this many sightings (default 50).
    pub limit: Option<usize>,
    /// Threshold as a false-match rate (default: the configured one).
    pub false_match_rate: Option<f64>,
}

/// Retrospective search: where and when the probe's face was seen. Needs an open case the
/// caller belongs to (`X-Vigil-Case`) and a reason (`X-Vigil-Reason`); the probe is kept with
/// the audit entry.
#[utoipa::path(
    post,
    path = "/v1/search",
    tag = "cases",
    params(SearchQuery),
    request_body(content = crate::routes::forms::ImageForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Matching sightings, best first", body = SearchReport),
        (status = 400, description = "case_required, invalid", body = ErrorBody),
        (status = 403, description = "forbidden, case_not_open, not_in_case", body = ErrorBody),
        (status = 422, description = "no_face, no_usable_face", body = ErrorBody),
    )
)]
pub async fn search(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SearchQuery>,
    headers: axum::http::HeaderMap,
    form: UploadForm,
) -> Result<(Extension<AuditFindings>, Json<SearchReport>), ApiError> {
    let video = state
        .video()
        .ok_or_else(|| ApiError::NotFound("video analysis (not enabled on this server)".into()))?
        .clone();
    let image = form
        .required_images("image")?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::MissingField("image".into()))?;
    let cameras = query
        .cameras
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| CameraId::parse(c).map_err(|e| ApiError::BadRequest(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let filter = SearchFilter {
        cameras,
        from_ms: query.from_ms,
        to_ms: query.to_ms,
    };
    let limit = query.limit.unwrap_or(50);
    let rate = query.false_match_rate;
    let ceiling = state.service().matching().max_false_match_rate;
    let report = tokio::task::spawn_blocking(move || {
        video.analysis.search(&image.bytes, &filter, limit, rate)
    })
    .await??;
    let findings = AuditFindings {
        subjects: Vec::new(),
        sightings: report.hits.iter().map(|hit| hit.sighting.id).collect(),
    };
    // What a search under a case returns, the case's investigators may look at again; never a
    // hit looser than the ceiling (the service refuses such a request, this keeps it so).
    if let Some(case) = crate::access::header_text(&headers, crate::access::CASE_HEADER) {
        let store = state.access().store.clone();
        let hits: Vec<i64> = report
            .hits
            .iter()
            .filter(|hit| hit.false_match_rate <= ceiling)
            .map(|hit| hit.sighting.id)
            .collect();
        tokio::task::spawn_blocking(move || store.link_sightings_to_case(&case, &hits, now_ms()))
            .await??;
    }
    Ok((Extension(findings), Json(report)))
}
