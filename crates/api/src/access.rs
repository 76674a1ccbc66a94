//! Authentication, authorisation and the audit trail of every request.
//!
//! One middleware in front of every route but `/healthz` and `/v1/login`:
//! 1. authenticates the bearer token (`vgl_…`), session secret (`vgs_…`) or `vigil_session`
//!    cookie → 401 `unauthenticated` otherwise;
//! 2. looks the matched route up in [`ROUTE_PERMISSIONS`] (one table, so the policy is reviewed in
//!    one place and a test walks it) → 403 `forbidden` when the principal's roles lack it; a
//!    route missing from the table is refused for everyone;
//! 3. for routes that touch biometric data or change administration, writes an audit entry
//!    with who, what, the case reference and reason (`X-Vigil-Case`, `X-Vigil-Reason` headers),
//!    the probe image of a search (its sha256 in the hashed entry, the bytes stored once), and
//!    the outcome (status). Identification and verification without a case reference and reason
//!    are refused (400 `case_required`) before any face is compared, and so are those naming a
//!    case that is not open (403 `case_not_open`) or that the caller is not owner or member of
//!    (403 `not_in_case`).

use crate::bounded_audit::{AuditKey, BoundedAudit};
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::routes::now_ms;
use crate::AppState;
use axum::body::{to_bytes, Body};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use vigil_audit::{Actor, AuditAction, NewAuditEntry, Outcome, Target};
use vigil_auth::{AuthError, AuthOptions, Permission, Principal, UserDirectory};
use vigil_store::SqliteStore;

pub const CASE_HEADER: &str = "x-vigil-case";
pub const REASON_HEADER: &str = "x-vigil-reason";
pub const SESSION_COOKIE: &str = "vigil_session";

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Any authenticated user.
    Authenticated,
    Permission(Permission),
}

/// How a route is audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auditing {
    None,
    /// An entry with this action for every call, successful or not.
    Entry(AuditAction),
    /// As `Entry`, and the call needs a case reference and a reason; the request body (the
    /// probe) is hashed and kept with the entry.
    CaseBound(AuditAction),
    /// The call needs an open case the caller belongs to; the handler writes its audit entry
    /// in the same transaction as its change. The action names a refused call in the log.
    CaseChecked(AuditAction),
    /// The handler writes the entry of a successful call in the same transaction as its change;
    /// the guard writes one only for a call that failed or was refused.
    Transactional(AuditAction),
    /// As `Entry`, and the call needs a reason (`X-Vigil-Reason`) but no case; the request
    /// body (a photo) is kept with the entry. For subject access reports.
    ReasonBound(AuditAction),
}

/// What a handler found, for the audit entry of its call: the subjects and sightings a search
/// returned, so a subject access report can list the searches that concerned a person.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AuditFindings {
    pub subjects: Vec<i64>,
    pub sightings: Vec<i64>,
}

/// Method, route pattern, requirement, auditing. Every routed endpoint except `/healthz` and
/// `/v1/login` must be listed: an unlisted route is refused for everyone.
#[rustfmt::skip]
pub const ROUTE_PERMISSIONS: &[(&str, &str, Requirement, Auditing)] = {
    use AuditAction as A;
    use Auditing::{CaseBound, CaseChecked, Entry, None as Quiet, ReasonBound, Transactional};
    use Permission as P;
    use Requirement::{Authenticated as Any, Permission as Needs};
    &[
        ("GET", "/metrics", Needs(P::ViewCameras), Quiet),
        ("GET", "/v1/openapi.json", Any, Quiet),
        ("GET", "/v1/me", Any, Quiet),
        ("POST", "/v1/logout", Any, Quiet),
        ("POST", "/v1/detect", Needs(P::Identify), Quiet),
        ("POST", "/v1/verify", Needs(P::Verify), CaseBound(A::Verify)),
        ("POST", "/v1/identify", Needs(P::Identify), CaseBound(A::Identify)),
        ("GET", "/v1/subjects", Needs(P::Enrol), Quiet),
        ("POST", "/v1/subjects", Needs(P::Enrol), Transactional(A::Enrol)),
        ("GET", "/v1/subjects/{id}", Needs(P::Enrol), Quiet),
        ("DELETE", "/v1/subjects/{id}", Needs(P::DeleteBiometric), Transactional(A::Delete)),
        ("POST", "/v1/subjects/{id}/templates", Needs(P::Enrol), Transactional(A::Enrol)),
        ("DELETE", "/v1/templates/{id}", Needs(P::DeleteBiometric), Transactional(A::Delete)),
        ("GET", "/v1/templates/{id}/thumbnail", Needs(P::Enrol), Entry(A::ViewTemplate)),
        ("GET", "/v1/cameras", Needs(P::ViewCameras), Quiet),
        ("POST", "/v1/cameras", Needs(P::ManageCameras), Transactional(A::CameraAdd)),
        ("GET", "/v1/cameras/{id}", Needs(P::ViewCameras), Quiet),
        // watching faces live is for monitoring roles; audited by the handler, bounded per window
        ("GET", "/v1/cameras/{id}/live.jpg", Needs(P::MonitorAllCameras), Quiet),
        ("PUT", "/v1/cameras/{id}", Needs(P::ManageCameras), Transactional(A::CameraChange)),
        ("DELETE", "/v1/cameras/{id}", Needs(P::ManageCameras), Transactional(A::CameraRemove)),
        ("POST", "/v1/cameras/{id}/enable", Needs(P::ManageCameras), Transactional(A::CameraChange)),
        ("POST", "/v1/cameras/{id}/disable", Needs(P::ManageCameras), Transactional(A::CameraChange)),
        ("GET", "/v1/sightings", Needs(P::ViewSightings), Entry(A::ViewSighting)),
        ("GET", "/v1/sightings/stream", Needs(P::ViewSightings), Entry(A::ViewSighting)),
        ("GET", "/v1/sightings/{id}", Needs(P::ViewSightings), Entry(A::ViewSighting)),
        ("GET", "/v1/sightings/{id}/crop.jpg", Needs(P::ViewSightings), Entry(A::ViewSighting)),
        ("GET", "/v1/sightings/{id}/recording", Needs(P::ViewSightings), Quiet),
        ("GET", "/v1/sightings/{id}/clip.mp4", Needs(P::Export), Entry(A::Export)),
        ("GET", "/v1/users", Needs(P::ManageUsers), Quiet),
        ("POST", "/v1/users", Needs(P::ManageUsers), Transactional(A::UserCreate)),
        ("POST", "/v1/users/{id}/tokens", Any, Transactional(A::UserChange)), // oneself only
        ("GET", "/v1/audit", Needs(P::ReadAudit), Quiet),
        ("GET", "/v1/audit/verify", Needs(P::ReadAudit), Quiet),
        ("GET", "/v1/cases", Needs(P::ManageCases), Quiet),
        ("POST", "/v1/cases", Needs(P::ManageCases), Quiet), // audited in the same transaction
        ("POST", "/v1/cases/{reference}/close", Needs(P::ManageCases), Transactional(A::CaseClose)),
        ("GET", "/v1/cases/{reference}/evidence", Needs(P::Export), Transactional(A::Export)), // reason and case checked, entry written, by the handler
        ("POST", "/v1/search", Needs(P::Search), CaseBound(A::Search)),
        ("GET", "/v1/watchlists", Needs(P::ManageWatchlists), Quiet),
        // audited by the handlers, in the same transaction as the change:
        ("POST", "/v1/watchlists", Needs(P::ManageWatchlists), Quiet),
        ("POST", "/v1/watchlists/{id}/entries", Needs(P::ManageWatchlists), CaseChecked(A::WatchlistAdd)),
        ("DELETE", "/v1/watchlist-entries/{id}", Needs(P::ManageWatchlists), Transactional(A::WatchlistRemove)),
        ("POST", "/v1/alerts/{id}/review", Needs(P::ReviewAlerts), Quiet),
        ("GET", "/v1/alerts", Needs(P::ViewAlerts), Entry(A::ViewAlert)),
        ("GET", "/v1/alerts/stream", Needs(P::ViewAlerts), Entry(A::ViewAlert)),
        ("GET", "/v1/alerts/{id}", Needs(P::ViewAlerts), Entry(A::ViewAlert)),
        ("GET", "/v1/alerts/{id}/enrolled-photo", Needs(P::ViewAlerts), Entry(A::ViewTemplate)),
        ("GET", "/v1/webhooks", Needs(P::ManageConfiguration), Quiet),
        ("POST", "/v1/webhooks", Needs(P::ManageConfiguration), Quiet), // audited in its transaction
        ("GET", "/v1/webhooks/{id}/deliveries", Needs(P::ManageConfiguration), Quiet),
        ("POST", "/v1/subject-access-reports", Needs(P::SubjectAccessReport), ReasonBound(A::AccessReport)),
        ("GET", "/v1/misuse/alerts", Needs(P::ViewMisuseAlerts), Quiet),
        ("GET", "/v1/misuse/activity", Needs(P::ViewMisuseAlerts), Quiet),
        ("POST", "/v1/misuse/scan", Needs(P::ViewMisuseAlerts), Quiet),
        // audited in the same transaction as the acknowledgement:
        ("POST", "/v1/misuse/alerts/{id}/acknowledge", Needs(P::ViewMisuseAlerts), Quiet),
    ]
};

/// Routes whose results a principal without `MonitorAllCameras` (an investigator) sees only
/// through a case it names: the handler gets a [`CaseScope`] and shows only what the case holds.
/// The action names a refused call in the log.
pub const CASE_SCOPED_ROUTES: &[(&str, &str, AuditAction)] = &[
    ("GET", "/v1/sightings", AuditAction::ViewSighting),
    ("GET", "/v1/sightings/{id}", AuditAction::ViewSighting),
    (
        "GET",
        "/v1/sightings/{id}/crop.jpg",
        AuditAction::ViewSighting,
    ),
    (
        "GET",
        "/v1/sightings/{id}/recording",
        AuditAction::ViewSighting,
    ),
    ("GET", "/v1/sightings/{id}/clip.mp4", AuditAction::Export),
    ("GET", "/v1/alerts", AuditAction::ViewAlert),
    ("GET", "/v1/alerts/{id}", AuditAction::ViewAlert),
    (
        "GET",
        "/v1/alerts/{id}/enrolled-photo",
        AuditAction::ViewTemplate,
    ),
];

/// Live streams of every camera: monitoring roles only.
pub const MONITORING_ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/sightings/stream"),
    ("GET", "/v1/alerts/stream"),
];

/// The case a request's sightings and alerts are limited to (see `CASE_SCOPED_ROUTES`).
#[derive(Debug, Clone)]
pub struct CaseScope(pub String);

/// Routes reachable without credentials.
pub const PUBLIC_ROUTES: &[(&str, &str)] = &[("GET", "/healthz"), ("POST", "/v1/login")];

/// Users, credentials and the audit log: they live in the embedded database.
#[derive(Clone)]
pub struct Access {
    pub store: Arc<SqliteStore>,
    pub directory: Arc<UserDirectory>,
    refusals: Arc<BoundedAudit>,
    /// Where password checks run: each argon2 verification holds 19 MiB, so a login flood
    /// queues here instead of growing memory with every concurrent attempt.
    password_checks: Arc<PasswordCheckers>,
}

type PasswordCheck = Box<dyn FnOnce() + Send>;

/// One thread per core for argon2 and nothing else. Besides bounding how many 19 MiB buffers
/// exist at once, a fixed set of threads keeps the freed buffers in a fixed set of allocator
/// arenas: run on the blocking pool's changing threads, a login flood left hundreds of MiB
/// behind (RELIABILITY.md, "Load").
struct PasswordCheckers {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<PasswordCheck>>,
}

impl PasswordCheckers {
    fn start(threads: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<PasswordCheck>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for index in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-check-{index}"))
                .spawn(move || loop {
                    // the lock is held only while taking a job; ends when Access is dropped
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password-check thread");
            }
        }
        Self {
            jobs: std::sync::Mutex::new(jobs),
        }
    }
}

impl Access {
    pub fn new(store: Arc<SqliteStore>, options: AuthOptions) -> Result<Self, AuthError> {
        Ok(Self {
            store,
            directory: Arc::new(UserDirectory::new(options)?),
            refusals: Arc::new(BoundedAudit::default()),
            password_checks: Arc::new(PasswordCheckers::start(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
        })
    }

    /// Runs a password check on the password-check threads; `None` if they are gone.
    pub async fn check_password<T: Send + 'static>(
        &self,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: PasswordCheck = Box::new(move || {
            let _ = answer.send(check());
        });
        self.password_checks.jobs.lock().ok()?.send(job).ok()?;
        answered.await.ok()
    }

    /// Audits what a caller can repeat at any rate (a failed login, a permission refused, a
    /// live picture watched), bounded per window by [`BoundedAudit`]. A failure to write is logged,
    /// never the caller's problem.
    pub async fn record_bounded(&self, key: AuditKey, entry: NewAuditEntry) {
        let to_write = self.refusals.record(key, entry, now_ms());
        self.write_entries(to_write.entries).await;
    }

    /// Writes the summaries of refusal windows that have ended; the server calls it on a timer.
    pub async fn flush_refusals(&self) {
        let entries = self.refusals.flush(now_ms());
        self.write_entries(entries).await;
    }

    async fn write_entries(&self, entries: Vec<NewAuditEntry>) {
        if entries.is_empty() {
            return;
        }
        let store = self.store.clone();
        let written = tokio::task::spawn_blocking(move || {
            entries
                .iter()
                .try_for_each(|entry| store.audit(entry).map(|_| ()))
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "could not audit a refusal"),
            Err(error) => tracing::error!(%error, "could not audit a refusal"),
        }
    }

    fn authenticate(&self, secret: &str) -> Result<Principal, AuthError> {
        self.store.with_connection(|connection| {
            if secret.starts_with(vigil_auth::SESSION_PREFIX) {
                self.directory.authenticate_session(connection, secret)
            } else {
                self.directory.authenticate_token(connection, secret)
            }
        })
    }
}

fn rule_for(method: &Method, route: &str) -> Option<(Requirement, Auditing)> {
    ROUTE_PERMISSIONS
        .iter()
        .find(|(m, r, _, _)| *m == method.as_str() && *r == route)
        .map(|(_, _, requirement, auditing)| (*requirement, *auditing))
}

/// The CSRF token of a session: derived from its secret, which only the session's holder has
/// (the cookie is HttpOnly), so another site that makes the browser send the cookie cannot
/// produce it.
pub fn csrf_token(session_secret: &str) -> String {
    hex::encode(Sha256::digest(
        format!("vigil-csrf\n{session_secret}").as_bytes(),
    ))
}

/// Whether the credential came from the session cookie rather than an `Authorization` header:
/// only then can the browser have sent it on another site's behalf.
fn credential_is_cookie(headers: &HeaderMap) -> bool {
    !headers.contains_key(axum::http::header::AUTHORIZATION)
}

pub const CSRF_HEADER: &str = "x-csrf-token";

/// The bearer secret, or else the session cookie.
pub(crate) fn credential(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return value.strip_prefix("Bearer ").map(|s| s.trim().to_string());
    }
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(ErrorBody {
            error: ErrorDetail {
                code: code.to_string(),
                message: message.to_string(),
            },
        }),
    )
        .into_response()
}

/// The answer when an audit entry cannot be written: the operation is not answered (no audit,
/// no biometric read: fail closed). A full disk says so, 507 `storage_full` counted in
/// `vigil_storage_full_total` like any write refused for space; anything else is a 500.
fn audit_not_written(error: &vigil_store::StoreError) -> Response {
    match error {
        vigil_store::StoreError::StorageFull(_) => {
            metrics::counter!("vigil_storage_full_total").increment(1);
            refusal(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
                "the data disk is full: the audit entry this operation needs cannot be written, \
                 so it is not answered",
            )
        }
        _ => refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        ),
    }
}

/// A header's trimmed text; `None` when absent, not text, or blank.
pub(crate) fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// At most this much of a refused request's body is read, and for at most this long.
const REFUSAL_DRAIN_BYTES: usize = 256 * 1024;
const REFUSAL_DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Sends a refusal decided from the headers alone, before the body was read. An ordinary client
/// that sent a small upload in one go must read the answer, not a reset connection (closing a
/// socket with unread data resets it), so a little of the body is read and dropped; a refused
/// caller can never make the server read a large upload nor wait long on a slow one. The
/// connection is closed after the answer.
async fn refuse_unread(request: Request, mut response: Response) -> Response {
    use http_body_util::BodyExt;
    let mut body = request.into_body();
    let mut drained = 0usize;
    let _ = tokio::time::timeout(REFUSAL_DRAIN_TIME, async {
        while drained <= REFUSAL_DRAIN_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => {
                    drained += frame.data_ref().map_or(0, |data| data.len());
                }
                _ => break,
            }
        }
    })
    .await;
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

/// The middleware described in the module documentation.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let Some(route) = route else {
        // Unmatched paths fall through to the 404/405 fallbacks, which reveal nothing.
        return next.run(request).await;
    };
    if PUBLIC_ROUTES
        .iter()
        .any(|(m, r)| *m == method.as_str() && *r == route)
    {
        return next.run(request).await;
    }
    let access = state.access().clone();
    let Some(secret) = credential(request.headers()) else {
        return refuse_unread(
            request,
            refusal(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send an API token or session as `Authorization: Bearer …`",
            ),
        )
        .await;
    };
    // A browser sends the cookie with requests other sites trigger: a state-changing request
    // authenticated by the cookie alone must also carry the session's CSRF token.
    let changes_state = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state && credential_is_cookie(request.headers()) {
        let sent = header_text(request.headers(), CSRF_HEADER).unwrap_or_default();
        let expected = csrf_token(&secret);
        if !subtle_equal(sent.as_bytes(), expected.as_bytes()) {
            return refuse_unread(
                request,
                refusal(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "a request authenticated by the session cookie must carry its X-CSRF-Token",
                ),
            )
            .await;
        }
    }
    let principal = match tokio::task::spawn_blocking({
        let access = access.clone();
        move || access.authenticate(&secret)
    })
    .await
    {
        Ok(Ok(principal)) => principal,
        Ok(Err(AuthError::Database(detail))) => {
            tracing::error!(%detail, "authentication failed");
            return refuse_unread(
                request,
                refusal(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal server error",
                ),
            )
            .await;
        }
        Ok(Err(_)) | Err(_) => {
            return refuse_unread(
                request,
                refusal(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "the token or session is unknown, expired, revoked or its user disabled",
                ),
            )
            .await;
        }
    };
    let Some((requirement, auditing)) = rule_for(&method, &route) else {
        return refuse_unread(
            request,
            refusal(
                StatusCode::FORBIDDEN,
                "forbidden",
                "no role may call this route",
            ),
        )
        .await;
    };
    if let Requirement::Permission(permission) = requirement {
        if !principal.allows(permission) {
            // Probing for what one may not do is itself worth knowing (misuse detection reads
            // these); a flood of it is counted, not written one by one.
            access
                .record_bounded(
                    AuditKey {
                        action: AuditAction::AccessRefused,
                        name: principal.name.clone(),
                        place: format!("{method} {route}"),
                    },
                    NewAuditEntry {
                        actor: Actor {
                            user_id: Some(principal.user_id.0.to_string()),
                            user_name: principal.name.clone(),
                        },
                        action: AuditAction::AccessRefused,
                        target: Target {
                            kind: "route".into(),
                            id: format!("{method} {route}"),
                        },
                        case_ref: header_text(request.headers(), CASE_HEADER),
                        reason: header_text(request.headers(), REASON_HEADER).unwrap_or_default(),
                        request: serde_json::json!({ "permission": format!("{permission:?}") }),
                        probe_image: None,
                        outcome: Outcome::refused(format!("roles lack {permission:?}")),
                    },
                )
                .await;
            return refuse_unread(
                request,
                refusal(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    &format!("your roles do not grant {permission:?}"),
                ),
            )
            .await;
        }
    }
    let case_ref = header_text(request.headers(), CASE_HEADER);
    let reason = header_text(request.headers(), REASON_HEADER);
    // Without `MonitorAllCameras`, sightings and alerts are seen through one's cases only.
    let mut request = request;
    if !principal.allows(Permission::MonitorAllCameras) {
        if let Some((_, _, action)) = CASE_SCOPED_ROUTES
            .iter()
            .find(|(m, r, _)| *m == method.as_str() && *r == route)
        {
            let refused = CaseRefusal {
                access: &access,
                principal: &principal,
                action: *action,
                route: &route,
                case_ref: case_ref.clone(),
                reason: reason.clone(),
            };
            let Some(reference) = &case_ref else {
                let answer = refused
                    .answer(
                        StatusCode::BAD_REQUEST,
                        "case_required",
                        "without a monitoring role, sightings and alerts are seen through a case: \
                         name it in X-Vigil-Case",
                    )
                    .await;
                return refuse_unread(request, answer).await;
            };
            if let Some(refusal) = refused.admit(reference).await {
                return refuse_unread(request, refusal).await;
            }
            request
                .extensions_mut()
                .insert(CaseScope(reference.clone()));
        }
        if MONITORING_ROUTES
            .iter()
            .any(|(m, r)| *m == method.as_str() && *r == route)
        {
            return refuse_unread(
                request,
                refusal(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "live streams are for monitoring roles (operator, reviewer); see sightings and \
                     alerts through your cases",
                ),
            )
            .await;
        }
    }
    let action = match auditing {
        Auditing::None => {
            let mut request = request;
            request.extensions_mut().insert(principal);
            return next.run(request).await;
        }
        Auditing::Entry(action) | Auditing::Transactional(action) => action,
        Auditing::ReasonBound(action) => {
            if reason.is_none() {
                return refuse_unread(
                    request,
                    refusal(
                        StatusCode::BAD_REQUEST,
                        "reason_required",
                        "say why in X-Vigil-Reason (e.g. the request's reference)",
                    ),
                )
                .await;
            }
            action
        }
        Auditing::CaseBound(action) | Auditing::CaseChecked(action) => {
            let refused = CaseRefusal {
                access: &access,
                principal: &principal,
                action,
                route: &route,
                case_ref: case_ref.clone(),
                reason: reason.clone(),
            };
            let has_reason = reason.is_some() || matches!(auditing, Auditing::CaseChecked(_));
            let (Some(reference), true) = (&case_ref, has_reason) else {
                let answer = refused
                    .answer(
                        StatusCode::BAD_REQUEST,
                        "case_required",
                        "a search names its case (X-Vigil-Case) and reason (X-Vigil-Reason)",
                    )
                    .await;
                return refuse_unread(request, answer).await;
            };
            // The case bounds who may search under it, and until when.
            if let Some(refusal) = refused.admit(reference).await {
                return refuse_unread(request, refusal).await;
            }
            match auditing {
                Auditing::CaseBound(action) => action,
                _ => {
                    let mut request = request;
                    request.extensions_mut().insert(principal);
                    return next.run(request).await;
                }
            }
        }
    };
    let content_type = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let target_id = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    // A search's probe is kept with its audit entry: buffer the body (already bounded by the
    // upload limit in front of this layer) and hand the same bytes on.
    let keeps_probe = matches!(auditing, Auditing::CaseBound(_) | Auditing::ReasonBound(_));
    let (request, probe) = if keeps_probe {
        let (parts, body) = request.into_parts();
        match to_bytes(body, state.max_upload_bytes()).await {
            Ok(bytes) => {
                let probe = bytes.to_vec();
                (Request::from_parts(parts, Body::from(bytes)), Some(probe))
            }
            Err(_) => {
                return ApiError::PayloadTooLarge {
                    limit_bytes: state.max_upload_bytes(),
                }
                .into_response()
            }
        }
    } else {
        (request, None)
    };
    // The probe kept is the photo itself (the first file part of a multipart upload), so it
    // can be looked at and compared later; a report asked for by subject id has none.
    let probe = match probe {
        Some(body) => first_file_part(&content_type, body).await,
        None => None,
    };
    let actor = Actor {
        user_id: Some(principal.user_id.0.to_string()),
        user_name: principal.name.clone(),
    };
    let mut request = request;
    request.extensions_mut().insert(principal);
    let response = next.run(request).await;
    let status = response.status();
    if status.is_success() && matches!(auditing, Auditing::Transactional(_)) {
        return response; // its entry was committed with the change
    }
    let outcome = if status.is_success() {
        Outcome::success(status.as_u16().to_string())
    } else if status.is_client_error() {
        Outcome::refused(status.as_u16().to_string())
    } else {
        Outcome::failed(status.as_u16().to_string())
    };
    let mut summary = serde_json::json!({
        "method": method.as_str(),
        "route": route,
        "status": status.as_u16(),
    });
    if !query.is_empty() {
        summary["query"] = serde_json::Value::String(query);
    }
    if let Some(findings) = response.extensions().get::<AuditFindings>() {
        summary["findings"] = serde_json::json!(findings);
    }
    if let Some(probe) = &probe {
        summary["probe_sha256"] = serde_json::Value::String(hex::encode(Sha256::digest(probe)));
        summary["probe_bytes"] = serde_json::json!(probe.len());
    }
    let entry = NewAuditEntry {
        actor,
        action,
        target: Target {
            kind: route
                .trim_start_matches("/v1/")
                .split('/')
                .next()
                .unwrap_or("")
                .to_string(),
            id: target_id,
        },
        case_ref,
        reason: reason.unwrap_or_default(),
        request: summary,
        probe_image: probe,
        outcome,
    };
    let store = access.store.clone();
    let written = tokio::task::spawn_blocking(move || store.audit(&entry)).await;
    match written {
        Ok(Ok(_)) => response,
        Ok(Err(error)) => {
            // An operation that cannot be accounted for is not answered.
            tracing::error!(%error, "cannot write the audit entry");
            audit_not_written(&error)
        }
        Err(error) => {
            tracing::error!(%error, "audit task failed");
            refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal server error",
            )
        }
    }
}

/// A case-bound call refused before it ran: still written to the log (who tried what, under
/// which case), since attempts outside one's cases are what misuse detection looks for.
struct CaseRefusal<'a> {
    access: &'a Access,
    principal: &'a Principal,
    action: AuditAction,
    route: &'a str,
    case_ref: Option<String>,
    reason: Option<String>,
}

impl CaseRefusal<'_> {
    /// `None` when `reference` is an open case that admits the principal; otherwise the
    /// (logged) refusal to send.
    async fn admit(self, reference: &str) -> Option<Response> {
        let store = self.access.store.clone();
        let lookup = reference.to_string();
        let case = match tokio::task::spawn_blocking(move || store.case(&lookup)).await {
            Ok(Ok(case)) => case,
            _ => {
                return Some(refusal(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal server error",
                ))
            }
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        match case {
            Some(case) if case.is_open(now) => {
                if case.admits(&self.principal.name) {
                    None
                } else {
                    Some(
                        self.answer(
                            StatusCode::FORBIDDEN,
                            "not_in_case",
                            &format!("you are neither the owner nor a member of case {reference}"),
                        )
                        .await,
                    )
                }
            }
            _ => Some(
                self.answer(
                    StatusCode::FORBIDDEN,
                    "case_not_open",
                    &format!("case {reference} does not exist, is closed or has expired"),
                )
                .await,
            ),
        }
    }

    async fn answer(self, status: StatusCode, code: &str, message: &str) -> Response {
        let entry = NewAuditEntry {
            actor: Actor {
                user_id: Some(self.principal.user_id.0.to_string()),
                user_name: self.principal.name.clone(),
            },
            action: self.action,
            target: Target {
                kind: "case".into(),
                id: self.case_ref.clone().unwrap_or_default(),
            },
            case_ref: self.case_ref,
            reason: self.reason.unwrap_or_default(),
            request: serde_json::json!({ "route": self.route, "status": status.as_u16() }),
            probe_image: None,
            outcome: Outcome::refused(code),
        };
        let store = self.access.store.clone();
        match tokio::task::spawn_blocking(move || store.audit(&entry)).await {
            Ok(Ok(_)) => refusal(status, code, message),
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot write the audit entry of a refused call");
                audit_not_written(&error)
            }
            Err(error) => {
                tracing::error!(%error, "cannot write the audit entry of a refused call");
                refusal(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal server error",
                )
            }
        }
    }
}

/// The first file part of a multipart body, or the body itself when it is not multipart; `None`
/// when there is nothing to keep.
async fn first_file_part(content_type: &str, body: Vec<u8>) -> Option<Vec<u8>> {
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return (!body.is_empty()).then_some(body);
    };
    let stream = futures_util::stream::once(async move {
        Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(body))
    });
    let mut multipart = multer::Multipart::new(stream, boundary);
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.file_name().is_some() {
            return field
                .bytes()
                .await
                .ok()
                .filter(|bytes| !bytes.is_empty())
                .map(|bytes| bytes.to_vec());
        }
    }
    None
}

/// Equality that takes the same time wherever the first difference is.
fn subtle_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
