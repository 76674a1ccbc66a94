//! Route handlers. Each hands the CPU-bound service call to the blocking pool, so that a slow
//! detection never stalls the async workers serving other requests.

pub mod access;
pub mod cases;
pub mod evidence;
pub mod faces;
pub mod forms;
pub mod misuse;
pub mod reports;
pub mod subjects;
pub mod system;
pub mod video;
pub mod watchlists;

use crate::error::ApiError;
use crate::AppState;
use vigil_pipeline::{FaceService, ServiceError};

/// Runs `work` against the service on the blocking thread pool.
pub(crate) async fn run_blocking<T, F>(state: &AppState, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&FaceService) -> Result<T, ServiceError> + Send + 'static,
{
    let service = state.service().clone();
    Ok(tokio::task::spawn_blocking(move || work(&service)).await??)
}

/// The request's case reference and reason (`X-Vigil-Case`, `X-Vigil-Reason`), for the audit
/// entries handlers write themselves.
pub(crate) fn case_and_reason(headers: &axum::http::HeaderMap) -> (Option<String>, String) {
    use crate::access::{header_text, CASE_HEADER, REASON_HEADER};
    (
        header_text(headers, CASE_HEADER),
        header_text(headers, REASON_HEADER).unwrap_or_default(),
    )
}

/// Wall-clock now, unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The audit entry of a change that a handler writes in the same transaction as the change.
pub(crate) fn audit_entry(
    principal: &vigil_auth::Principal,
    action: vigil_audit::AuditAction,
    target: (&str, String),
    case_ref: Option<String>,
    reason: &str,
    request: serde_json::Value,
) -> vigil_audit::NewAuditEntry {
    vigil_audit::NewAuditEntry {
        actor: vigil_audit::Actor {
            user_id: Some(principal.user_id.0.to_string()),
            user_name: principal.name.clone(),
        },
        action,
        target: vigil_audit::Target {
            kind: target.0.to_string(),
            id: target.1,
        },
        case_ref,
        reason: reason.to_string(),
        request,
        probe_image: None,
        outcome: vigil_audit::Outcome::success(""),
    }
}
