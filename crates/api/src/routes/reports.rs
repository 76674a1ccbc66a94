//! Subject access reports: what vigil holds about one person, as JSON or a readable page.

use super::now_ms;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, UploadForm};
use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use vigil_auth::Principal;
use vigil_base::SubjectId;
use vigil_pipeline::access_report::{build_report, ReportBasis, ReportRequest};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `json` (default) or `html`.
    pub format: Option<String>,
    /// Link faces to the person at or below this false-match rate (default: the configured one).
    pub false_match_rate: Option<f64>,
    /// Compare every stored search probe with the person (default true; one face analysis per
    /// distinct probe).
    pub check_probes: Option<bool>,
}

/// Multipart form: either `image` (a photo of the person) or `subject_id`.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the form for OpenAPI only
pub struct ReportForm {
    #[schema(value_type = Option<String>, format = Binary)]
    image: Option<Vec<u8>>,
    subject_id: Option<i64>,
}

/// The subject access report: every template, watchlist entry, sighting, alert and search that
/// concerns the person. Needs a reason (`X-Vigil-Reason`, e.g. the request's reference); the
/// request and its photo are kept in the audit log.
#[utoipa::path(
    post,
    path = "/v1/subject-access-reports",
    tag = "audit",
    params(ReportQuery),
    request_body(content = ReportForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The report (JSON, or HTML with format=html)", content((vigil_pipeline::access_report::SubjectAccessReport = "application/json"), (String = "text/html"))),
        (status = 400, description = "reason_required, missing_field, invalid", body = ErrorBody),
        (status = 404, description = "not_found: no such subject", body = ErrorBody),
        (status = 422, description = "no_face, no_usable_face", body = ErrorBody),
    )
)]
pub async fn subject_access_report(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<ReportQuery>,
    headers: axum::http::HeaderMap,
    form: UploadForm,
) -> Result<Response, ApiError> {
    let basis = match form.images("image").into_iter().next() {
        Some(image) => ReportBasis::Photo(image.bytes),
        None => {
            let id = form
                .text("subject_id")?
                .ok_or_else(|| ApiError::MissingField("image or subject_id".into()))?;
            let id = id
                .trim()
                .parse::<i64>()
                .map_err(|_| ApiError::BadRequest(format!("subject_id {id:?} is not a number")))?;
            ReportBasis::Subject(SubjectId(id))
        }
    };
    let html = match query.format.as_deref() {
        None | Some("json") => false,
        Some("html") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "format {other:?}: expected json or html"
            )))
        }
    };
    let (_, reason) = super::case_and_reason(&headers);
    let request = ReportRequest {
        basis,
        requested_by: principal.name.clone(),
        reason,
        false_match_rate: query.false_match_rate,
        check_probes: query.check_probes.unwrap_or(true),
    };
    let service = state.service().clone();
    let store = state.access().store.clone();
    let report = tokio::task::spawn_blocking(move || {
        build_report(&service, &store, &request, now_ms(), &mut |_, _| {})
    })
    .await??;
    if html {
        Ok((
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            report.to_html(),
        )
            .into_response())
    } else {
        Ok(Json(report).into_response())
    }
}
