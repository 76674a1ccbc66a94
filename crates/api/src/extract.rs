//! Request extractors whose every failure is an [`ApiError`], so that axum's own rejections
//! (bad query, bad path, bad multipart, body too large) leave in the API's JSON error shape.

use crate::error::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Multipart, Path, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use vigil_pipeline::NamedImage;

/// One multipart part, read into memory (the body limit bounds the total).
#[derive(Debug)]
pub struct UploadPart {
    pub field: String,
    pub file_name: Option<String>,
    pub bytes: Bytes,
}

/// A whole `multipart/form-data` body.
#[derive(Debug)]
pub struct UploadForm {
    parts: Vec<UploadPart>,
}

impl UploadForm {
    /// Every part of `field`, as images named after their file names.
    pub fn images(&self, field: &str) -> Vec<NamedImage> {
        self.parts
            .iter()
            .filter(|part| part.field == field)
            .enumerate()
            .map(|(position, part)| NamedImage {
                name: part
                    .file_name
                    .clone()
                    .unwrap_or_else(|| format!("{field}[{position}]")),
                bytes: part.bytes.to_vec(),
            })
            .collect()
    }

    /// The first part of `field`; `missing_field` when there is none.
    pub fn required_image(&self, field: &str) -> Result<NamedImage, ApiError> {
        self.images(field)
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::MissingField(field.to_string()))
    }

    /// At least one part of `field`.
    pub fn required_images(&self, field: &str) -> Result<Vec<NamedImage>, ApiError> {
        let images = self.images(field);
        if images.is_empty() {
            return Err(ApiError::MissingField(field.to_string()));
        }
        Ok(images)
    }

    /// A text field, trimmed; `None` when absent or blank.
    pub fn text(&self, field: &str) -> Result<Option<String>, ApiError> {
        let Some(part) = self.parts.iter().find(|part| part.field == field) else {
            return Ok(None);
        };
        let text = std::str::from_utf8(&part.bytes)
            .map_err(|_| ApiError::BadRequest(format!("field `{field}` is not UTF-8 text")))?
            .trim();
        Ok((!text.is_empty()).then(|| text.to_string()))
    }

    pub fn required_text(&self, field: &str) -> Result<String, ApiError> {
        self.text(field)?
            .ok_or_else(|| ApiError::MissingField(field.to_string()))
    }
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    content_type(headers)
        .and_then(|value| value.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase())
}

fn is_multipart(headers: &HeaderMap) -> bool {
    media_type(headers).as_deref() == Some("multipart/form-data")
}

impl FromRequest<AppState> for UploadForm {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if !is_multipart(request.headers()) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "expected multipart/form-data, got {}",
                content_type(request.headers()).unwrap_or("no content type")
            )));
        }
        let limit_bytes = state.max_upload_bytes();
        let mut multipart = Multipart::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::MalformedMultipart(rejection.body_text()))?;
        let mut parts = Vec::new();
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|error| ApiError::from_multipart(error, limit_bytes))?
        {
            let name = field.name().unwrap_or_default().to_string();
            let file_name = field.file_name().map(str::to_string);
            let bytes = field
                .bytes()
                .await
                .map_err(|error| ApiError::from_multipart(error, limit_bytes))?;
            parts.push(UploadPart {
                field: name,
                file_name,
                bytes,
            });
        }
        Ok(UploadForm { parts })
    }
}

/// The one image of a single-image route: the multipart field `image`, or the raw body when
/// it is sent with an image content type (or `application/octet-stream`).
#[derive(Debug)]
pub struct ImageUpload(pub NamedImage);

impl FromRequest<AppState> for ImageUpload {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if is_multipart(request.headers()) {
            let form = UploadForm::from_request(request, state).await?;
            return Ok(ImageUpload(form.required_image("image")?));
        }
        let media = media_type(request.headers()).unwrap_or_default();
        if !(media.starts_with("image/") || media == "application/octet-stream") {
            return Err(ApiError::UnsupportedMediaType(format!(
                "expected multipart/form-data or an image content type, got {}",
                if media.is_empty() {
                    "no content type"
                } else {
                    media.as_str()
                }
            )));
        }
        let limit_bytes = state.max_upload_bytes();
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge { limit_bytes }
                } else {
                    ApiError::BadRequest(rejection.body_text())
                }
            })?;
        Ok(ImageUpload(NamedImage {
            name: "body".to_string(),
            bytes: bytes.to_vec(),
        }))
    }
}

/// `Query<T>` whose rejection is a JSON `bad_request`.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}

/// `Path<T>` whose rejection is a JSON `bad_request`.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}
