//! Misuse detection for auditors: per-user search statistics and the alerts raised when a user
//! searches far above their norm, off hours, or outside their cases (docs/design/013).

use super::{audit_entry, now_ms};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::AppState;
use axum::extract::State;
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use vigil_audit::AuditAction;
use vigil_auth::Principal;
use vigil_store::{MisuseAlert, UserSearchActivity};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MisuseAlertQuery {
    /// Only alerts no auditor has acknowledged yet (default true).
    pub open: Option<bool>,
    pub limit: Option<usize>,
}

/// Misuse alerts, newest first.
#[utoipa::path(get, path = "/v1/misuse/alerts", tag = "audit", operation_id = "list_misuse_alerts", params(MisuseAlertQuery),
    responses((status = 200, description = "Alerts for auditors", body = Vec<vigil_store::MisuseAlert>)))]
pub async fn list_alerts(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<MisuseAlertQuery>,
) -> Result<Json<Vec<MisuseAlert>>, ApiError> {
    let store = state.access().store.clone();
    let open = query.open.unwrap_or(true);
    let limit = query.limit.unwrap_or(100);
    Ok(Json(
        tokio::task::spawn_blocking(move || store.misuse_alerts(open, limit)).await??,
    ))
}

/// The last millisecond of 9999-12-31 UTC: a day to report lies between the epoch and then.
const LAST_MS_OF_YEAR_9999: i64 = 253_402_300_799_999;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    /// Any time in the local day to report (unix ms; default now).
    #[param(minimum = 0, maximum = 253402300799999i64)]
    pub at_ms: Option<i64>,
}

/// Every user's searches on one local day beside their own norm, with off-hours searches and
/// attempts outside their cases.
#[utoipa::path(get, path = "/v1/misuse/activity", tag = "audit", operation_id = "misuse_activity", params(ActivityQuery),
    responses((status = 200, description = "Per-user statistics", body = Vec<vigil_store::UserSearchActivity>)))]
pub async fn activity(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ActivityQuery>,
) -> Result<Json<Vec<UserSearchActivity>>, ApiError> {
    let store = state.access().store.clone();
    let policy = state.misuse_policy().clone();
    let at = query.at_ms.unwrap_or_else(now_ms);
    if !(0..=LAST_MS_OF_YEAR_9999).contains(&at) {
        return Err(ApiError::BadRequest(format!(
            "at_ms must be between 0 and {LAST_MS_OF_YEAR_9999} (unix ms)"
        )));
    }
    Ok(Json(
        tokio::task::spawn_blocking(move || store.search_activity(at, &policy)).await??,
    ))
}

/// Scans the audit log now (the server also scans on its own every
/// `misuse.scan_interval_secs`) and returns the alerts this scan raised.
#[utoipa::path(post, path = "/v1/misuse/scan", tag = "audit", operation_id = "scan_for_misuse",
    responses((status = 200, description = "Newly raised alerts", body = Vec<vigil_store::MisuseAlert>)))]
pub async fn scan(State(state): State<AppState>) -> Result<Json<Vec<MisuseAlert>>, ApiError> {
    let store = state.access().store.clone();
    let policy = state.misuse_policy().clone();
    Ok(Json(
        tokio::task::spawn_blocking(move || store.scan_for_misuse(&policy, now_ms())).await??,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AcknowledgeBody {
    /// What the auditor found (required).
    pub note: String,
}

/// An auditor acknowledges an alert with a note; never one about themselves (409). Recorded in
/// the audit log in the same transaction.
#[utoipa::path(post, path = "/v1/misuse/alerts/{id}/acknowledge", tag = "audit", operation_id = "acknowledge_misuse_alert",
    params(("id" = i64, Path, description = "Misuse alert id")), request_body = AcknowledgeBody,
    responses((status = 200, description = "Acknowledged", body = vigil_store::MisuseAlert),
        (status = 400, description = "invalid: no note", body = ErrorBody),
        (status = 409, description = "conflict: already acknowledged, or about yourself", body = ErrorBody)))]
pub async fn acknowledge(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    body: Result<Json<AcknowledgeBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<MisuseAlert>, ApiError> {
    let Json(body) = body?;
    let store = state.access().store.clone();
    Ok(Json(
        tokio::task::spawn_blocking(move || {
            let audit = audit_entry(
                &principal,
                AuditAction::MisuseReview,
                ("misuse_alert", id.to_string()),
                None,
                &body.note,
                serde_json::json!({}),
            );
            store.acknowledge_misuse_alert(id, &principal.name, &body.note, &audit, now_ms())
        })
        .await??,
    ))
}
