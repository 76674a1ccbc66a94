//! Watchlists, their entries, alerts and their review.

use super::{audit_entry, now_ms};
use crate::access::CaseScope;
use crate::access::{header_text, CASE_HEADER};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, UploadForm};
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};
use vigil_audit::AuditAction;
use vigil_auth::Principal;
use vigil_base::SubjectId;
use vigil_store::{AlertRecord, AlertState, NewWatchEntry, ReviewDecision, SubjectRef};

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewWatchlistBody {
    pub name: String,
    pub description: Option<String>,
    /// Alert threshold as a calibrated false-match rate, e.g. 1e-5; at most the configured
    /// ceiling (`[matching] max_false_match_rate`).
    pub false_match_rate: f64,
}

/// Creates a watchlist.
#[utoipa::path(post, path = "/v1/watchlists", tag = "watchlists", request_body = NewWatchlistBody,
    responses((status = 201, description = "Created", body = vigil_store::Watchlist), (status = 400, description = "invalid: a missing name, or a false-match rate outside (0, 1) or above the ceiling", body = ErrorBody), (status = 409, description = "conflict", body = ErrorBody)))]
pub async fn create_watchlist(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: Result<Json<NewWatchlistBody>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(body) = body?;
    state.service().check_rate_ceiling(body.false_match_rate)?;
    let store = state.access().store.clone();
    let list = tokio::task::spawn_blocking(move || {
        let audit = audit_entry(
            &principal,
            AuditAction::WatchlistAdd,
            ("watchlist", body.name.clone()),
            None,
            "",
            serde_json::json!({ "false_match_rate": body.false_match_rate }),
        );
        store.create_watchlist(
            &body.name,
            body.description,
            body.false_match_rate,
            &principal.name,
            &audit,
            now_ms(),
        )
    })
    .await??;
    Ok((StatusCode::CREATED, Json(list)))
}

/// Lists watchlists.
#[utoipa::path(get, path = "/v1/watchlists", tag = "watchlists", responses((status = 200, description = "Watchlists", body = Vec<vigil_store::Watchlist>)))]
pub async fn list_watchlists(
    State(state): State<AppState>,
) -> Result<Json<Vec<vigil_store::Watchlist>>, ApiError> {
    let store = state.access().store.clone();
    Ok(Json(
        tokio::task::spawn_blocking(move || store.watchlists()).await??,
    ))
}

/// Puts a person on a watchlist from enrolment photos. The case (`X-Vigil-Case`) must be open
/// and the caller its owner or member; `legal_basis`, `responsible` and `expires_at_ms` are
/// required. The photos become the entry's own subject, deleted with the entry.
#[utoipa::path(post, path = "/v1/watchlists/{id}/entries", tag = "watchlists",
    params(("id" = i64, Path, description = "Watchlist id")),
    request_body(content = super::forms::WatchEntryForm, content_type = "multipart/form-data"),
    responses((status = 201, description = "Entry added", body = vigil_store::WatchEntry), (status = 400, description = "invalid, missing_field, case_required", body = ErrorBody), (status = 403, description = "case_not_open, not_in_case", body = ErrorBody)))]
pub async fn add_entry(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(list): ApiPath<i64>,
    headers: HeaderMap,
    form: UploadForm,
) -> Result<impl IntoResponse, ApiError> {
    let name = form.required_text("name")?;
    let legal_basis = form.required_text("legal_basis")?;
    let responsible = form.required_text("responsible")?;
    let expires_at_ms: i64 = form
        .required_text("expires_at_ms")?
        .trim()
        .parse()
        .map_err(|_| ApiError::BadRequest("expires_at_ms must be unix milliseconds".into()))?;
    let images = form.required_images("image")?;
    let case_ref = header_text(&headers, CASE_HEADER)
        .ok_or_else(|| ApiError::BadRequest("X-Vigil-Case is required".into()))?;
    let store = state.access().store.clone();
    let service = state.service().clone();
    let entry = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let now = now_ms();
        let mut draft = NewWatchEntry {
            watchlist: list,
            subject: SubjectId(0),
            subject_name: name.clone(),
            legal_basis,
            case_ref: case_ref.clone(),
            responsible,
            expires_at_ms,
            created_by: principal.name.clone(),
        };
        // Everything is checked before the photos are enrolled.
        store.check_watch_entry(&draft, now)?;
        let subject_name = format!("watchlist {list}: {name} ({case_ref})");
        let report = service.enroll(SubjectRef::ByName(subject_name), None, &images)?;
        draft.subject = SubjectId(report.subject.id);
        let audit = audit_entry(
            &principal,
            AuditAction::WatchlistAdd,
            ("watchlist_entry", format!("{list}")),
            Some(case_ref),
            "",
            serde_json::json!({
                "name": name,
                "legal_basis": draft.legal_basis,
                "responsible": draft.responsible,
                "expires_at_ms": draft.expires_at_ms,
                "templates": report.enrolled.len(),
            }),
        );
        match store.add_watch_entry(&draft, &audit, now) {
            Ok(entry) => Ok(entry),
            Err(error) => {
                // Undo the enrolment: no subject may sit in the gallery without its entry.
                let _ = service.delete_subject(draft.subject);
                Err(error.into())
            }
        }
    })
    .await??;
    Ok((StatusCode::CREATED, Json(entry)))
}

/// Removes an entry: it never matches again, and its photos' templates are deleted. Only the
/// owner or a member of the entry's case may remove it (403 `not_in_case`, logged, otherwise).
#[utoipa::path(delete, path = "/v1/watchlist-entries/{id}", tag = "watchlists",
    params(("id" = i64, Path, description = "Entry id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "not_in_case: the caller is neither owner nor member of the entry's case", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
    ))]
pub async fn remove_entry(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let store = state.access().store.clone();
    let service = state.service().clone();
    tokio::task::spawn_blocking(move || -> Result<Response, ApiError> {
        let entry = store
            .watch_entry(id)?
            .filter(|entry| entry.removed_at_ms.is_none())
            .ok_or_else(|| ApiError::NotFound(format!("watchlist entry {id}")))?;
        // Membership never changes after a case is opened, so this check cannot go stale
        // before the removal below.
        let admitted = store
            .case(&entry.case_ref)?
            .is_some_and(|case| case.admits(&principal.name));
        if !admitted {
            return Ok(super::cases::not_in_case(format!(
                "watchlist entry {id} belongs to case {}, of which you are neither the owner \
                 nor a member",
                entry.case_ref
            )));
        }
        let audit = audit_entry(
            &principal,
            AuditAction::WatchlistRemove,
            ("watchlist_entry", id.to_string()),
            Some(entry.case_ref.clone()),
            "",
            serde_json::json!({}),
        );
        if let Some(subject) = store.remove_watch_entry(id, &audit, now_ms())? {
            service.delete_subject(subject)?;
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await?
}

/// An alert with what a reviewer compares side by side.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertView {
    pub alert: AlertRecord,
    /// The face seen by the camera (the sighting's best shot).
    pub probe_crop_url: String,
    /// The enrolled photo that matched (the best template's thumbnail), readable by whoever
    /// may see the alert.
    pub enrolled_photo_url: String,
    /// Distinct confirmations needed (neither by the entry's creator).
    pub confirmations_needed: usize,
}

impl AlertView {
    pub fn of(alert: AlertRecord) -> Self {
        Self {
            probe_crop_url: format!("/v1/sightings/{}/crop.jpg", alert.sighting),
            enrolled_photo_url: format!("/v1/alerts/{}/enrolled-photo", alert.id),
            confirmations_needed: vigil_store::CONFIRMATIONS_NEEDED,
            alert,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// candidate, confirmed or rejected
    pub state: Option<String>,
    pub limit: Option<u64>,
}

/// Alerts, newest first.
#[utoipa::path(get, path = "/v1/alerts", tag = "watchlists", params(AlertsQuery), responses((status = 200, description = "Alerts", body = Vec<AlertView>)))]
pub async fn list_alerts(
    State(state): State<AppState>,
    scope: Option<Extension<CaseScope>>,
    ApiQuery(query): ApiQuery<AlertsQuery>,
) -> Result<Json<Vec<AlertView>>, ApiError> {
    let wanted = match query.state.as_deref() {
        None => None,
        Some("candidate") => Some(AlertState::Candidate),
        Some("confirmed") => Some(AlertState::Confirmed),
        Some("rejected") => Some(AlertState::Rejected),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "unknown alert state {other:?}"
            )))
        }
    };
    let store = state.access().store.clone();
    let case = scope.map(|Extension(CaseScope(case))| case);
    let alerts = tokio::task::spawn_blocking(move || {
        store.alerts_in_case(wanted, case.as_deref(), query.limit.unwrap_or(100))
    })
    .await??;
    Ok(Json(alerts.into_iter().map(AlertView::of).collect()))
}

#[utoipa::path(get, path = "/v1/alerts/{id}", tag = "watchlists", params(("id" = i64, Path, description = "Alert id")),
    responses((status = 200, description = "The alert", body = AlertView), (status = 404, description = "not_found", body = ErrorBody)))]
pub async fn show_alert(
    State(state): State<AppState>,
    scope: Option<Extension<CaseScope>>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<AlertView>, ApiError> {
    let store = state.access().store.clone();
    let case = scope.map(|Extension(CaseScope(case))| case);
    let alert = tokio::task::spawn_blocking(move || {
        // Limited to a case: another case's alert is "not found".
        if let Some(case) = case {
            if store.alert_case(id)?.as_deref() != Some(case.as_str()) {
                return Ok(None);
            }
        }
        store.alert(id)
    })
    .await??
    .ok_or_else(|| ApiError::NotFound(format!("alert {id}")))?;
    Ok(Json(AlertView::of(alert)))
}

/// The enrolled photo an alert matched (its best template's aligned crop, JPEG), for whoever
/// may see the alert: reviewers compare it with the camera's crop without the enrolment
/// permission that reads every template. Limited to a case like the alert itself; logged.
#[utoipa::path(get, path = "/v1/alerts/{id}/enrolled-photo", tag = "watchlists", params(("id" = i64, Path, description = "Alert id")),
    responses(
        (status = 200, description = "The aligned crop of the matched template", content_type = "image/jpeg", body = Vec<u8>),
        (status = 404, description = "not_found: no such alert (in the case), or its template was deleted", body = ErrorBody),
    ))]
pub async fn alert_enrolled_photo(
    State(state): State<AppState>,
    scope: Option<Extension<CaseScope>>,
    ApiPath(id): ApiPath<i64>,
) -> Result<impl IntoResponse, ApiError> {
    let store = state.access().store.clone();
    let service = state.service().clone();
    let case = scope.map(|Extension(CaseScope(case))| case);
    let jpeg = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ApiError> {
        if let Some(case) = case {
            if store.alert_case(id)?.as_deref() != Some(case.as_str()) {
                return Err(ApiError::NotFound(format!("alert {id}")));
            }
        }
        let alert = store
            .alert(id)?
            .ok_or_else(|| ApiError::NotFound(format!("alert {id}")))?;
        Ok(service.thumbnail(vigil_base::TemplateId(alert.best_template))?)
    })
    .await??;
    Ok(([(axum::http::header::CONTENT_TYPE, "image/jpeg")], jpeg))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReviewBody {
    /// confirm or reject
    #[schema(value_type = String)]
    pub decision: ReviewDecision,
    pub note: Option<String>,
}

/// Reviews a candidate alert: two distinct reviewers, neither the entry's creator, confirm;
/// one rejection closes it. A second review by the same person is refused (409).
#[utoipa::path(post, path = "/v1/alerts/{id}/review", tag = "watchlists", params(("id" = i64, Path, description = "Alert id")), request_body = ReviewBody,
    responses((status = 200, description = "Reviewed", body = AlertView), (status = 409, description = "conflict: closed, already reviewed by you, or you created the entry", body = ErrorBody)))]
pub async fn review_alert(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    body: Result<Json<ReviewBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<AlertView>, ApiError> {
    let Json(body) = body?;
    let store = state.access().store.clone();
    let alert = tokio::task::spawn_blocking(move || {
        let audit = audit_entry(
            &principal,
            AuditAction::ReviewAlert,
            ("alert", id.to_string()),
            None,
            "",
            serde_json::json!({ "decision": body.decision, "note": body.note }),
        );
        store.review_alert(
            id,
            &principal.name,
            body.decision,
            body.note,
            &audit,
            now_ms(),
        )
    })
    .await??;
    if let Some(video) = state.video() {
        video.analysis.publish_alert(alert.clone());
    }
    Ok(Json(AlertView::of(alert)))
}

/// Server-sent events: an `alert` event (JSON `AlertView`) when an alert is raised and each
/// time a review changes it.
#[utoipa::path(get, path = "/v1/alerts/stream", tag = "watchlists", responses((status = 200, description = "text/event-stream of alerts", content_type = "text/event-stream")))]
pub async fn alert_stream(
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let receiver = state
        .video()
        .ok_or_else(|| ApiError::NotFound("video analysis (not enabled on this server)".into()))?
        .analysis
        .subscribe_alerts();
    let events = stream::unfold(receiver, |mut receiver| async move {
        loop {
            let event = match receiver.recv().await {
                Ok(alert) => Event::default()
                    .event("alert")
                    .id(alert.id.to_string())
                    .json_data(AlertView::of(alert.as_ref().clone())),
                Err(RecvError::Lagged(missed)) => {
                    Ok(Event::default().event("lagged").data(missed.to_string()))
                }
                Err(RecvError::Closed) => return None,
            };
            if let Ok(event) = event {
                return Some((Ok(event), receiver));
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewWebhookBody {
    /// http(s) URL receiving signed POSTs.
    pub url: String,
    /// Event kinds to deliver (`alert.raised`, `alert.reviewed`); empty = all.
    #[serde(default)]
    pub event_kinds: Vec<String>,
    #[serde(default)]
    pub description: String,
}

/// A subscription as listed: the signing secret is shown only when created.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: i64,
    pub url: String,
    pub event_kinds: Vec<String>,
    pub enabled: bool,
    pub description: String,
    pub created_at_ms: i64,
    /// Only in the reply to the creation: the HMAC key receivers verify `X-Vigil-Signature`
    /// with (`sha256=hex(HMAC-SHA256(secret, timestamp + "." + body))`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookView {
    fn of(subscription: vigil_notify::Subscription, with_secret: bool) -> Self {
        Self {
            id: subscription.id.0,
            url: subscription.url,
            event_kinds: subscription.event_kinds,
            enabled: subscription.enabled,
            description: subscription.description,
            created_at_ms: subscription.created_at_ms,
            secret: with_secret.then_some(subscription.secret),
        }
    }
}

/// Subscribes a URL to alert events, delivered signed and retried with backoff.
#[utoipa::path(post, path = "/v1/webhooks", tag = "watchlists", request_body = NewWebhookBody,
    responses((status = 201, description = "Subscribed; the reply holds the signing secret once", body = WebhookView), (status = 400, description = "invalid", body = ErrorBody)))]
pub async fn create_webhook(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: Result<Json<NewWebhookBody>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(body) = body?;
    let store = state.access().store.clone();
    let secret = vigil_notify::generate_secret()
        .map_err(|e| ApiError::Task(format!("no randomness for the webhook secret: {e}")))?;
    let created = tokio::task::spawn_blocking(move || {
        let audit = audit_entry(
            &principal,
            AuditAction::ConfigChange,
            ("webhook", body.url.clone()),
            None,
            "",
            serde_json::json!({ "event_kinds": body.event_kinds }),
        );
        store.create_webhook(
            &vigil_notify::NewSubscription {
                url: body.url,
                secret,
                event_kinds: body.event_kinds,
                enabled: true,
                description: body.description,
            },
            &audit,
            now_ms(),
        )
    })
    .await??;
    Ok((StatusCode::CREATED, Json(WebhookView::of(created, true))))
}

/// Lists webhook subscriptions (without their secrets).
#[utoipa::path(get, path = "/v1/webhooks", tag = "watchlists", responses((status = 200, description = "Subscriptions", body = Vec<WebhookView>)))]
pub async fn list_webhooks(
    State(state): State<AppState>,
) -> Result<Json<Vec<WebhookView>>, ApiError> {
    let store = state.access().store.clone();
    let hooks = tokio::task::spawn_blocking(move || store.webhooks()).await??;
    Ok(Json(
        hooks
            .into_iter()
            .map(|h| WebhookView::of(h, false))
            .collect(),
    ))
}

/// One delivery of the log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub event_kind: String,
    /// pending, delivered or failed
    pub state: String,
    pub attempts: u32,
    pub created_at_ms: i64,
    pub next_attempt_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// The delivery log of a subscription: state, attempts, last error, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "watchlists", params(("id" = i64, Path, description = "Subscription id")),
    responses((status = 200, description = "Deliveries", body = Vec<DeliveryView>)))]
pub async fn webhook_deliveries(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Vec<DeliveryView>>, ApiError> {
    let store = state.access().store.clone();
    let deliveries =
        tokio::task::spawn_blocking(move || store.webhook_deliveries(Some(id), 200)).await??;
    Ok(Json(
        deliveries
            .into_iter()
            .map(|d| DeliveryView {
                id: d.id.0,
                event_kind: d.event_kind,
                state: match d.state {
                    vigil_notify::DeliveryState::Pending => "pending",
                    vigil_notify::DeliveryState::Delivered => "delivered",
                    vigil_notify::DeliveryState::Failed => "failed",
                }
                .to_string(),
                attempts: d.attempts,
                created_at_ms: d.created_at_ms,
                next_attempt_at_ms: d.next_attempt_at_ms,
                finished_at_ms: d.finished_at_ms,
                // Status, timing and error class only: never what the receiver answered.
                last_error: d
                    .last_error
                    .map(|error| vigil_notify::error_class(&error).to_owned()),
            })
            .collect(),
    ))
}
