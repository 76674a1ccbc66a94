//! Stateless face operations: detect, verify (1:1) and identify (1:N).

use super::forms::{IdentifyQuery, ImageForm, VerifyForm};
use super::run_blocking;
use crate::access::AuditFindings;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, ImageUpload, UploadForm};
use crate::metrics::{FACES_DETECTED, IDENTIFICATIONS, VERIFICATIONS};
use crate::AppState;
use axum::extract::State;
use axum::{Extension, Json};
use vigil_pipeline::{DetectionReport, IdentifyReport, VerifyReport};

/// Detects the faces in one image and reports their boxes, landmarks and quality.
#[utoipa::path(
    post,
    path = "/v1/detect",
    tag = "faces",
    request_body(
        description = "The multipart field `image`, or the raw image as the body",
        content(
            (ImageForm = "multipart/form-data"),
            (Vec<u8> = "image/jpeg"),
            (Vec<u8> = "image/png"),
            (Vec<u8> = "application/octet-stream"),
        )
    ),
    responses(
        (status = 200, description = "The faces found (possibly none)", body = DetectionReport),
        (status = 400, description = "empty_image, corrupt_image, malformed_multipart, missing_field", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_media_type, unsupported_image_format", body = ErrorBody),
        (status = 422, description = "image_too_large, too_many_faces", body = ErrorBody),
    )
)]
pub async fn detect(
    State(state): State<AppState>,
    ImageUpload(image): ImageUpload,
) -> Result<Json<DetectionReport>, ApiError> {
    let report = run_blocking(&state, move |service| service.detect(&image.bytes)).await?;
    metrics::counter!(FACES_DETECTED).increment(report.faces.len() as u64);
    Ok(Json(report))
}

/// Compares the dominant face of two photos and says whether they are the same person at the
/// configured false-match rate.
#[utoipa::path(
    post,
    path = "/v1/verify",
    tag = "faces",
    request_body(content = VerifyForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Score and its calibrated false-match rate", body = VerifyReport),
        (status = 400, description = "empty_image, corrupt_image, malformed_multipart, missing_field", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_media_type, unsupported_image_format", body = ErrorBody),
        (status = 422, description = "no_face, no_usable_face, ambiguous_faces, too_many_faces, image_too_large", body = ErrorBody),
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    form: UploadForm,
) -> Result<Json<VerifyReport>, ApiError> {
    let first = form.required_image("a")?;
    let second = form.required_image("b")?;
    let report = run_blocking(&state, move |service| {
        service.verify(&first.bytes, &second.bytes)
    })
    .await?;
    metrics::counter!(VERIFICATIONS).increment(1);
    Ok(Json(report))
}

/// Searches the gallery for every face in the photo. Only candidates whose calibrated
/// false-match rate is at or below the threshold are returned.
#[utoipa::path(
    post,
    path = "/v1/identify",
    tag = "faces",
    params(IdentifyQuery),
    request_body(content = ImageForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Candidates per face, best first", body = IdentifyReport),
        (status = 400, description = "bad_request, invalid, empty_image, corrupt_image, malformed_multipart, missing_field", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_media_type, unsupported_image_format", body = ErrorBody),
        (status = 422, description = "no_face, too_many_faces, image_too_large", body = ErrorBody),
    )
)]
pub async fn identify(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<IdentifyQuery>,
    ImageUpload(image): ImageUpload,
) -> Result<(Extension<AuditFindings>, Json<IdentifyReport>), ApiError> {
    let report = run_blocking(&state, move |service| {
        service.identify(&image.bytes, query.top_k, query.false_match_rate)
    })
    .await?;
    metrics::counter!(IDENTIFICATIONS).increment(1);
    metrics::counter!(FACES_DETECTED).increment(report.faces.len() as u64);
    let findings = AuditFindings {
        subjects: report
            .faces
            .iter()
            .flat_map(|face| face.candidates.iter().map(|c| c.subject_id))
            .collect(),
        sightings: Vec::new(),
    };
    Ok((Extension(findings), Json(report)))
}
