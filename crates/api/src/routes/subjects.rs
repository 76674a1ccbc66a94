//! The gallery: subjects, their templates and template thumbnails.

use super::forms::{EnrolmentForm, PageQuery, TemplatesForm};
use super::{audit_entry, case_and_reason, run_blocking};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, UploadForm};
use crate::metrics::{record_gallery_size, ENROLLED_TEMPLATES, ENROLMENTS};
use crate::AppState;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use vigil_audit::{AuditAction, NewAuditEntry};
use vigil_auth::Principal;
use vigil_base::{SubjectId, TemplateId};
use vigil_pipeline::{EnrolmentReport, NamedImage, SubjectDetail, SubjectView};
use vigil_store::SubjectRef;

/// Lists subjects, oldest first.
#[utoipa::path(
    get,
    path = "/v1/subjects",
    tag = "subjects",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of subjects", body = Vec<SubjectView>),
        (status = 400, description = "bad_request", body = ErrorBody),
    )
)]
pub async fn list_subjects(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Vec<SubjectView>>, ApiError> {
    let subjects = run_blocking(&state, move |service| {
        service.list_subjects(page.offset, page.limit)
    })
    .await?;
    Ok(Json(subjects))
}

/// Enrols photos under a subject name: creates the subject (201) or adds to the one of that
/// name (200). All-or-nothing: one photo without a single dominant usable face refuses the
/// whole request and stores nothing.
#[utoipa::path(
    post,
    path = "/v1/subjects",
    tag = "subjects",
    request_body(content = EnrolmentForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Subject created and photos enrolled", body = EnrolmentReport),
        (status = 200, description = "Photos added to the existing subject of that name", body = EnrolmentReport),
        (status = 400, description = "invalid, empty_image, corrupt_image, malformed_multipart, missing_field", body = ErrorBody),
        (status = 409, description = "conflict", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_media_type, unsupported_image_format", body = ErrorBody),
        (status = 422, description = "no_face, no_usable_face, ambiguous_faces, too_many_faces, image_too_large", body = ErrorBody),
    )
)]
pub async fn create_subject(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    form: UploadForm,
) -> Result<impl IntoResponse, ApiError> {
    let name = form.required_text("name")?;
    let notes = form.text("notes")?;
    let images = form.required_images("image")?;
    let audit = enrol_entry(
        &principal,
        &headers,
        ("subject", name.clone()),
        images.len(),
    );
    let report = enrol(&state, SubjectRef::ByName(name), notes, images, audit).await?;
    let status = if report.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(report)))
}

/// Shows a subject and its templates.
#[utoipa::path(
    get,
    path = "/v1/subjects/{id}",
    tag = "subjects",
    params(("id" = i64, Path, description = "Subject id")),
    responses(
        (status = 200, description = "The subject", body = SubjectDetail),
        (status = 404, description = "not_found", body = ErrorBody),
    )
)]
pub async fn show_subject(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<SubjectDetail>, ApiError> {
    let detail = run_blocking(&state, move |service| service.subject_detail(SubjectId(id))).await?;
    Ok(Json(detail))
}

/// Adds photos to an existing subject; all-or-nothing like enrolment.
#[utoipa::path(
    post,
    path = "/v1/subjects/{id}/templates",
    tag = "subjects",
    params(("id" = i64, Path, description = "Subject id")),
    request_body(content = TemplatesForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Photos enrolled", body = EnrolmentReport),
        (status = 400, description = "invalid, empty_image, corrupt_image, malformed_multipart, missing_field", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_media_type, unsupported_image_format", body = ErrorBody),
        (status = 422, description = "no_face, no_usable_face, ambiguous_faces, too_many_faces, image_too_large", body = ErrorBody),
    )
)]
pub async fn add_templates(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
    form: UploadForm,
) -> Result<Json<EnrolmentReport>, ApiError> {
    let images = form.required_images("image")?;
    let audit = enrol_entry(
        &principal,
        &headers,
        ("subject", id.to_string()),
        images.len(),
    );
    let report = enrol(&state, SubjectRef::ById(SubjectId(id)), None, images, audit).await?;
    Ok(Json(report))
}

/// The audit entry of an enrolment, written in its transaction (the route is `Transactional`:
/// the guard logs only failures).
fn enrol_entry(
    principal: &Principal,
    headers: &HeaderMap,
    target: (&str, String),
    photos: usize,
) -> NewAuditEntry {
    let (case_ref, reason) = case_and_reason(headers);
    audit_entry(
        principal,
        AuditAction::Enrol,
        target,
        case_ref,
        &reason,
        serde_json::json!({ "photos": photos }),
    )
}

async fn enrol(
    state: &AppState,
    subject: SubjectRef,
    notes: Option<String>,
    images: Vec<NamedImage>,
    audit: NewAuditEntry,
) -> Result<EnrolmentReport, ApiError> {
    let (report, gallery_templates) = run_blocking(state, move |service| {
        let report = service.enroll_audited(subject, notes, &images, Some(audit))?;
        Ok((report, service.gallery_templates()))
    })
    .await?;
    metrics::counter!(ENROLMENTS).increment(1);
    metrics::counter!(ENROLLED_TEMPLATES).increment(report.enrolled.len() as u64);
    record_gallery_size(gallery_templates);
    Ok(report)
}

/// Deletes a subject and all its templates. A subject on a watchlist is not deleted on its own
/// (409 `conflict`, naming the entry and its case): removing the entry deletes it.
#[utoipa::path(
    delete,
    path = "/v1/subjects/{id}",
    tag = "subjects",
    params(("id" = i64, Path, description = "Subject id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "conflict: the subject is on a watchlist; remove the entry first", body = ErrorBody),
    )
)]
pub async fn delete_subject(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    let (case_ref, reason) = case_and_reason(&headers);
    let audit = audit_entry(
        &principal,
        AuditAction::Delete,
        ("subject", id.to_string()),
        case_ref,
        &reason,
        serde_json::json!({}),
    );
    // Deleting the subject would leave its entry in force with no face to match (the entry's
    // subject is set NULL): the entry, under its case's rules, is what is removed.
    let store = state.access().store.clone();
    let holding =
        tokio::task::spawn_blocking(move || store.entries_holding_subject(SubjectId(id))).await??;
    if let Some(entry) = holding.first() {
        return Err(vigil_store::StoreError::Conflict(format!(
            "subject {id} is on watchlist {} (entry {}) under case {}: remove the entry first \
             (DELETE /v1/watchlist-entries/{})",
            entry.watchlist, entry.id, entry.case_ref, entry.id
        ))
        .into());
    }
    let gallery_templates = run_blocking(&state, move |service| {
        service.delete_subject_audited(SubjectId(id), Some(&audit))?;
        Ok(service.gallery_templates())
    })
    .await?;
    record_gallery_size(gallery_templates);
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes one template.
#[utoipa::path(
    delete,
    path = "/v1/templates/{id}",
    tag = "subjects",
    params(("id" = i64, Path, description = "Template id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "not_found", body = ErrorBody),
    )
)]
pub async fn delete_template(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    let (case_ref, reason) = case_and_reason(&headers);
    let audit = audit_entry(
        &principal,
        AuditAction::Delete,
        ("template", id.to_string()),
        case_ref,
        &reason,
        serde_json::json!({}),
    );
    let gallery_templates = run_blocking(&state, move |service| {
        service.delete_template_audited(TemplateId(id), Some(&audit))?;
        Ok(service.gallery_templates())
    })
    .await?;
    record_gallery_size(gallery_templates);
    Ok(StatusCode::NO_CONTENT)
}

/// The aligned face crop a template was computed from, as JPEG.
#[utoipa::path(
    get,
    path = "/v1/templates/{id}/thumbnail",
    tag = "subjects",
    params(("id" = i64, Path, description = "Template id")),
    responses(
        (status = 200, description = "The aligned crop", content_type = "image/jpeg", body = Vec<u8>),
        (status = 404, description = "not_found", body = ErrorBody),
    )
)]
pub async fn template_thumbnail(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<impl IntoResponse, ApiError> {
    let jpeg = run_blocking(&state, move |service| service.thumbnail(TemplateId(id))).await?;
    Ok(([(CONTENT_TYPE, "image/jpeg")], jpeg))
}
