//! The one place where failures become HTTP responses.
//!
//! Every error leaves the API as `{"error":{"code":"...","message":"..."}}`. The `code` is a
//! stable machine-readable string clients may branch on; the message is for people and may
//! change. Status and code for each cause:
//!
//! | code                       | status | cause                                                   |
//! |----------------------------|--------|---------------------------------------------------------|
//! | `bad_request`              | 400    | unparsable query string, path parameter or JSON         |
//! | `malformed_multipart`      | 400    | a multipart body that cannot be parsed                  |
//! | `missing_field`            | 400    | a required multipart field is absent or empty           |
//! | `invalid`                  | 400    | a well-formed request the service refuses (empty name…) |
//! | `empty_image`              | 400    | a zero-byte image                                       |
//! | `corrupt_image`            | 400    | a truncated or damaged image                            |
//! | `not_found`                | 404    | unknown subject, template or route                      |
//! | `method_not_allowed`       | 405    | a known route with another method                       |
//! | `conflict`                 | 409    | the request collides with stored data                   |
//! | `payload_too_large`        | 413    | the body exceeds `server.max_upload_bytes`              |
//! | `unsupported_media_type`   | 415    | a content type the route does not accept                |
//! | `unsupported_image_format` | 415    | bytes that are not an image format vigil decodes        |
//! | `image_too_large`          | 422    | width × height beyond `server.max_image_pixels`         |
//! | `no_face`                  | 422    | no face detected                                        |
//! | `no_usable_face`           | 422    | faces found, none good enough                           |
//! | `ambiguous_faces`          | 422    | several similar-size faces where one is needed          |
//! | `too_many_faces`           | 422    | more faces than one request may analyse                 |
//! | `unauthenticated`          | 401    | no, unknown, expired or revoked token or session        |
//! | `forbidden`                | 403    | the caller's roles do not grant the route's permission  |
//! | `case_required`            | 400    | a search without case reference and reason              |
//! | `case_not_open`            | 403    | the named case does not exist, is closed or expired     |
//! | `not_in_case`              | 403    | the caller is neither owner nor member of the case      |
//! | `throttled`                | 429    | too many failed logins, or requests in flight, from a client |
//! | `overloaded`               | 503    | the server is at `server.max_in_flight` requests        |
//! | `internal`                 | 500    | a fault of the server; details go to the log only       |
//! | `storage_full`             | 507    | the data disk is full; nothing stored was damaged       |

use axum::extract::multipart::MultipartError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vigil_base::CalibrationError;
use vigil_infer::InferError;
use vigil_pipeline::ServiceError;
use vigil_store::StoreError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("{0}")]
    BadRequest(String),
    #[error("malformed multipart body: {0}")]
    MalformedMultipart(String),
    #[error("missing field `{0}`")]
    MissingField(String),
    #[error("the request body exceeds the limit of {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A worker task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
    #[error("server failed: {0}")]
    Serve(#[from] std::io::Error),
    #[error(transparent)]
    Video(#[from] vigil_ingest::IngestError),
    #[error(transparent)]
    Auth(#[from] vigil_auth::AuthError),
}

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `no_face`.
    pub code: String,
    /// Human-readable explanation; not stable.
    pub message: String,
}

impl ApiError {
    /// Status and stable code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Service(error) => service_status_and_code(error),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::MalformedMultipart(_) => (StatusCode::BAD_REQUEST, "malformed_multipart"),
            ApiError::MissingField(_) => (StatusCode::BAD_REQUEST, "missing_field"),
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Task(_) | ApiError::Serve(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
            ApiError::Video(error) => video_status_and_code(error),
            ApiError::Auth(error) => match error {
                vigil_auth::AuthError::Unauthenticated => {
                    (StatusCode::UNAUTHORIZED, "unauthenticated")
                }
                vigil_auth::AuthError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
                vigil_auth::AuthError::Throttled { .. } => {
                    (StatusCode::TOO_MANY_REQUESTS, "throttled")
                }
                vigil_auth::AuthError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
                vigil_auth::AuthError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
                vigil_auth::AuthError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                vigil_auth::AuthError::Database(_) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "internal")
                }
            },
        }
    }

    /// Maps a multipart stream error; the body limit surfaces here while fields are read.
    pub(crate) fn from_multipart(error: MultipartError, limit_bytes: usize) -> Self {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit_bytes }
        } else {
            ApiError::MalformedMultipart(error.body_text())
        }
    }
}

fn video_status_and_code(error: &vigil_ingest::IngestError) -> (StatusCode, &'static str) {
    use vigil_ingest::IngestError;
    match error {
        IngestError::Config(_) => (StatusCode::BAD_REQUEST, "invalid"),
        IngestError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        IngestError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        IngestError::Store(StoreError::StorageFull(_)) => {
            (StatusCode::INSUFFICIENT_STORAGE, "storage_full")
        }
        IngestError::Store(StoreError::NotFound(_)) => (StatusCode::NOT_FOUND, "not_found"),
        IngestError::Store(StoreError::Conflict(_)) => (StatusCode::CONFLICT, "conflict"),
        IngestError::Store(StoreError::Invalid(_)) => (StatusCode::BAD_REQUEST, "invalid"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

fn service_status_and_code(error: &ServiceError) -> (StatusCode, &'static str) {
    const UNPROCESSABLE: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;
    match error {
        ServiceError::Image(infer) => match infer {
            InferError::EmptyImage => (StatusCode::BAD_REQUEST, "empty_image"),
            InferError::UnsupportedFormat => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_image_format",
            ),
            InferError::CorruptImage(_) => (StatusCode::BAD_REQUEST, "corrupt_image"),
            InferError::ImageTooLarge { .. } => (UNPROCESSABLE, "image_too_large"),
            // Model loading, inference and configuration faults are the server's, not the caller's.
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        },
        ServiceError::NoFace => (UNPROCESSABLE, "no_face"),
        ServiceError::NoUsableFace { .. } => (UNPROCESSABLE, "no_usable_face"),
        ServiceError::AmbiguousFaces { .. } => (UNPROCESSABLE, "ambiguous_faces"),
        ServiceError::TooManyFaces { .. } => (UNPROCESSABLE, "too_many_faces"),
        ServiceError::Store(store) => match store {
            StoreError::StorageFull(_) => (StatusCode::INSUFFICIENT_STORAGE, "storage_full"),
            StoreError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            StoreError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            StoreError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        },
        // A caller-supplied false-match rate outside (0, 1] is the only calibration error a
        // request can cause; a malformed or mismatched table is a deployment fault.
        ServiceError::Calibration(CalibrationError::BadRate(_)) => {
            (StatusCode::BAD_REQUEST, "invalid")
        }
        ServiceError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
        ServiceError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        ServiceError::Calibration(_) | ServiceError::Index(_) | ServiceError::Io { .. } => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if code == "storage_full" {
            // The operator's signal: a counter to alert on, besides the log line below.
            metrics::counter!("vigil_storage_full_total").increment(1);
        }
        let message = if status.is_server_error() {
            // The cause may name files or database internals; it belongs in the log, not the reply.
            tracing::error!(error = %self, "request failed");
            "internal server error".to_string()
        } else {
            self.to_string()
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_string(),
                message,
            },
        };
        (status, Json(body)).into_response()
    }
}

/// Store errors mean what they mean for the service (not found, conflict, invalid, internal).
impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::Service(error.into())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::UnsupportedMediaType(rejection.body_text())
            }
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(error: tokio::task::JoinError) -> Self {
        ApiError::Task(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_image_error_a_caller_can_cause_has_its_own_code() {
        let cases = [
            (InferError::EmptyImage, "empty_image"),
            (InferError::UnsupportedFormat, "unsupported_image_format"),
            (InferError::CorruptImage("eof".into()), "corrupt_image"),
            (
                InferError::ImageTooLarge {
                    width: 1,
                    height: 1,
                    max_pixels: 0,
                },
                "image_too_large",
            ),
        ];
        for (error, expected) in cases {
            let (status, code) = ApiError::from(ServiceError::from(error)).status_and_code();
            assert_eq!(code, expected);
            assert!(status.is_client_error());
        }
    }

    #[test]
    fn store_conflicts_and_missing_rows_keep_their_meaning() {
        let conflict = ApiError::from(ServiceError::from(StoreError::Conflict("name".into())));
        assert_eq!(
            conflict.status_and_code(),
            (StatusCode::CONFLICT, "conflict")
        );
        let missing = ApiError::from(ServiceError::from(StoreError::NotFound("subject 1".into())));
        assert_eq!(
            missing.status_and_code(),
            (StatusCode::NOT_FOUND, "not_found")
        );
        let broken = ApiError::from(ServiceError::from(StoreError::Database("disk".into())));
        assert_eq!(
            broken.status_and_code(),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        );
    }

    #[test]
    fn a_bad_false_match_rate_is_the_callers_fault_but_a_wrong_table_is_not() {
        let bad_rate = ApiError::from(ServiceError::from(CalibrationError::BadRate(2.0)));
        assert_eq!(
            bad_rate.status_and_code(),
            (StatusCode::BAD_REQUEST, "invalid")
        );
        let wrong_table = ApiError::from(ServiceError::from(CalibrationError::WrongModel {
            table: "a".into(),
            requested: "b".into(),
        }));
        assert_eq!(wrong_table.status_and_code().1, "internal");
    }

    #[tokio::test]
    async fn internal_errors_do_not_leak_their_cause_to_the_client() {
        let response = ApiError::Task("panic at /secret/path".into()).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(body.error.code, "internal");
        assert!(!body.error.message.contains("/secret/path"));
    }
}
