//! Liveness, metrics and the API's own description.

use crate::error::ApiError;
use crate::metrics::record_gallery_size;
use crate::openapi::ApiDoc;
use crate::AppState;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the server answers.
    pub status: String,
    /// The recognizer whose embeddings the gallery holds.
    pub model: String,
    pub gallery_templates: usize,
}

/// Liveness: the server answers and the gallery is loaded.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "system",
    responses((status = 200, description = "Alive", body = Health))
)]
pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    let service = state.service();
    Json(Health {
        status: "ok".to_string(),
        model: service.model().to_string(),
        gallery_templates: service.gallery_templates(),
    })
}

/// Prometheus text exposition.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "system",
    responses((status = 200, description = "Prometheus metrics", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    record_gallery_size(state.service().gallery_templates());
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.prometheus().render(),
    )
}

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "system",
    responses((status = 200, description = "OpenAPI 3.1 description of the API", content_type = "application/json"))
)]
pub async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

/// Unknown routes.
pub async fn route_not_found() -> ApiError {
    ApiError::NotFound("route".to_string())
}

/// Known routes called with another method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
