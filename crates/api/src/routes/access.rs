//! Login and logout, the caller's identity, users and their tokens, and the audit log.

use crate::access::SESSION_COOKIE;
use crate::bounded_audit::AuditKey;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::AppState;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use vigil_auth::{AuthError, Principal, Role, UserId};

fn auth_error(error: AuthError) -> ApiError {
    ApiError::Auth(error)
}

async fn with_directory<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&vigil_auth::UserDirectory, &rusqlite::Connection) -> Result<T, AuthError>
        + Send
        + 'static,
) -> Result<T, ApiError> {
    let access = state.access().clone();
    tokio::task::spawn_blocking(move || {
        access
            .store
            .with_connection(|connection| work(&access.directory, connection))
    })
    .await?
    .map_err(auth_error)
}

/// As `with_directory`, in one transaction with `audit`: a user change and its entry commit
/// together (the route is `Transactional`: the guard logs only failures).
async fn with_directory_audited<T: Send + 'static>(
    state: &AppState,
    audit: vigil_audit::NewAuditEntry,
    work: impl FnOnce(&vigil_auth::UserDirectory, &rusqlite::Connection) -> Result<T, AuthError>
        + Send
        + 'static,
) -> Result<T, ApiError> {
    let access = state.access().clone();
    tokio::task::spawn_blocking(move || {
        access.store.audited_transaction(
            &audit,
            |connection| work(&access.directory, connection).map_err(auth_error),
            |_| None,
        )
    })
    .await?
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginBody {
    pub name: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginReply {
    /// The session secret (also set as the `vigil_session` cookie); send it as a bearer token.
    pub session: String,
    /// Send as `X-CSRF-Token` with every state-changing request authenticated by the cookie.
    pub csrf_token: String,
    pub user: String,
    pub roles: Vec<String>,
    pub expires_at_ms: i64,
}

/// Password login (web UI). Throttled per user name and per client address: repeated failures
/// get 429 with `Retry-After`, without the password being checked.
#[utoipa::path(
    post,
    path = "/v1/login",
    tag = "access",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = LoginReply),
        (status = 401, description = "unauthenticated", body = ErrorBody),
        (status = 429, description = "throttled", body = ErrorBody),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    parts: axum::http::request::Parts,
    body: Result<Json<LoginBody>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(body) = body?;
    let client = state.client_address(&parts.headers, &parts.extensions);
    let name = body.name.clone();
    let password = body.password;
    // Three steps so that argon2 (slow on purpose) runs without the store's connection: a
    // flood of logins cannot stall the other requests behind it.
    let attempt = with_directory(&state, {
        let name = name.clone();
        move |directory, connection| directory.begin_login(connection, &name, client)
    })
    .await;
    let result = match attempt {
        Ok(attempt) => {
            let directory = state.access().directory.clone();
            let (attempt, matches, password) = state
                .access()
                .check_password(move || {
                    let matches = attempt.password_matches(&directory, &password);
                    (attempt, matches, password)
                })
                .await
                .ok_or_else(|| ApiError::Task("the password-check threads are gone".into()))?;
            with_directory(&state, move |directory, connection| {
                directory.finish_login(connection, attempt, matches, &password)
            })
            .await
        }
        Err(refused) => Err(refused),
    };
    // The name as typed, bounded; a blank one is still an attempt worth recording.
    let shown_name: String = match name.trim() {
        "" => "(no name)".to_string(),
        typed => typed.chars().take(64).collect(),
    };
    let entry = |action, outcome| vigil_audit::NewAuditEntry {
        actor: vigil_audit::Actor {
            user_id: None,
            user_name: shown_name.clone(),
        },
        action,
        target: vigil_audit::Target {
            kind: "session".into(),
            id: client.to_string(),
        },
        case_ref: None,
        reason: String::new(),
        request: serde_json::json!({ "client": client.to_string() }),
        probe_image: None,
        outcome,
    };
    if result.is_ok() {
        let entry = entry(
            vigil_audit::AuditAction::Login,
            vigil_audit::Outcome::success(""),
        );
        let store = state.access().store.clone();
        tokio::task::spawn_blocking(move || store.audit(&entry)).await??;
    } else {
        // Anyone can fail a login: counted per name and address per window, not one entry each.
        let key = AuditKey {
            action: vigil_audit::AuditAction::LoginFailed,
            name: shown_name.to_lowercase(),
            place: client.to_string(),
        };
        let entry = entry(
            vigil_audit::AuditAction::LoginFailed,
            vigil_audit::Outcome::refused("login refused"),
        );
        state.access().record_bounded(key, entry).await;
    }
    let session = result?;
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; Secure; SameSite=Strict; Path=/",
        session.secret
    );
    Ok((
        [(SET_COOKIE, cookie)],
        Json(LoginReply {
            csrf_token: crate::access::csrf_token(&session.secret),
            session: session.secret,
            user: session.principal.name,
            roles: session
                .principal
                .roles
                .iter()
                .map(|r| r.as_str().to_string())
                .collect(),
            expires_at_ms: session.expires_at_ms,
        }),
    ))
}

/// Ends the session sent with the request.
#[utoipa::path(post, path = "/v1/logout", tag = "access", responses((status = 204, description = "Logged out")))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    // The session sent, whether as a bearer secret or as the web UI's cookie.
    if let Some(secret) =
        crate::access::credential(&headers).filter(|s| s.starts_with(vigil_auth::SESSION_PREFIX))
    {
        with_directory(&state, move |directory, connection| {
            directory.logout(connection, &secret)
        })
        .await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(SET_COOKIE, format!("{SESSION_COOKIE}=; Max-Age=0; Path=/"))],
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user_id: i64,
    pub name: String,
    pub roles: Vec<String>,
    /// What the roles allow (e.g. `ViewAlerts`): what a client may offer this user.
    pub permissions: Vec<String>,
    /// For a session: the token to send as `X-CSRF-Token` with state-changing requests.
    pub csrf_token: Option<String>,
}

/// Who the credentials belong to, and what they may do.
#[utoipa::path(get, path = "/v1/me", tag = "access", responses((status = 200, description = "The caller", body = Me)))]
pub async fn me(headers: HeaderMap, Extension(principal): Extension<Principal>) -> Json<Me> {
    let mut permissions: Vec<String> = principal
        .roles
        .iter()
        .flat_map(|role| role.permissions())
        .map(|permission| format!("{permission:?}"))
        .collect();
    permissions.sort();
    permissions.dedup();
    let csrf_token = crate::access::credential(&headers)
        .filter(|secret| secret.starts_with(vigil_auth::SESSION_PREFIX))
        .map(|secret| crate::access::csrf_token(&secret));
    Json(Me {
        user_id: principal.user_id.0,
        name: principal.name,
        roles: principal
            .roles
            .iter()
            .map(|r| r.as_str().to_string())
            .collect(),
        permissions,
        csrf_token,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUserBody {
    pub name: String,
    pub display_name: Option<String>,
    /// admin, operator, reviewer, investigator, auditor
    pub roles: Vec<String>,
    /// At least 12 characters; omit for a token-only user.
    pub password: Option<String>,
}

fn parse_roles(roles: &[String]) -> Result<Vec<Role>, ApiError> {
    roles
        .iter()
        .map(|r| r.parse::<Role>().map_err(auth_error))
        .collect()
}

/// Lists users (never their password hashes).
#[utoipa::path(get, path = "/v1/users", tag = "access", responses((status = 200, description = "Users", body = Vec<vigil_auth::UserView>)))]
pub async fn list_users(
    State(state): State<AppState>,
) -> Result<Json<Vec<vigil_auth::UserView>>, ApiError> {
    Ok(Json(
        with_directory(&state, |directory, connection| {
            directory.list_users(connection)
        })
        .await?,
    ))
}

/// Creates a user.
#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "access",
    request_body = NewUserBody,
    responses(
        (status = 201, description = "Created", body = vigil_auth::UserView),
        (status = 400, description = "invalid", body = ErrorBody),
        (status = 409, description = "conflict", body = ErrorBody),
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: Result<Json<NewUserBody>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(body) = body?;
    let roles = parse_roles(&body.roles)?;
    let audit = super::audit_entry(
        &principal,
        vigil_audit::AuditAction::UserCreate,
        ("user", body.name.clone()),
        None,
        "",
        serde_json::json!({ "roles": body.roles }),
    );
    let user = with_directory_audited(&state, audit, move |directory, connection| {
        let display = body
            .display_name
            .clone()
            .unwrap_or_else(|| body.name.clone());
        directory.create_user(
            connection,
            &body.name,
            &display,
            &roles,
            body.password.as_deref(),
        )
    })
    .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewTokenBody {
    pub name: String,
    /// Lifetime in seconds; omit for a token that lives until revoked.
    pub ttl_secs: Option<u64>,
}

/// Issues an API token to the caller (`id` must be the caller's own user id: no one mints a
/// token for someone else); the secret is shown once.
#[utoipa::path(
    post,
    path = "/v1/users/{id}/tokens",
    tag = "access",
    params(("id" = i64, Path, description = "User id")),
    request_body = NewTokenBody,
    responses((status = 201, description = "Issued; `secret` is shown only now", body = vigil_auth::IssuedToken), (status = 404, description = "not_found", body = ErrorBody))
)]
pub async fn issue_token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    body: Result<Json<NewTokenBody>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(body) = body?;
    // A token is a way to act as its user: whoever mints one for someone else can act as them.
    // Users mint their own (after a password login, or on the server's machine with
    // `vigil users token`); an admin cannot.
    if UserId(id) != principal.user_id {
        return Err(ApiError::Auth(vigil_auth::AuthError::Forbidden(
            "tokens are issued only to oneself: no one, admins included, may mint a token \
             for another user"
                .into(),
        )));
    }
    let audit = super::audit_entry(
        &principal,
        vigil_audit::AuditAction::UserChange,
        ("user", id.to_string()),
        None,
        "",
        serde_json::json!({ "token_name": body.name, "ttl_secs": body.ttl_secs }),
    );
    let issued = with_directory_audited(&state, audit, move |directory, connection| {
        directory.issue_token(
            connection,
            UserId(id),
            &body.name,
            body.ttl_secs.map(Duration::from_secs),
        )
    })
    .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub case: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub after_sequence: Option<u64>,
    pub limit: Option<usize>,
}

/// Audit entries, oldest first (auditors).
#[utoipa::path(get, path = "/v1/audit", tag = "access", params(AuditQuery), responses((status = 200, description = "Entries", body = Vec<vigil_audit::AuditRecord>)))]
pub async fn audit_entries(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<vigil_audit::AuditRecord>>, ApiError> {
    let action = query
        .action
        .as_deref()
        .map(|a| a.parse::<vigil_audit::AuditAction>())
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let filter = vigil_audit::AuditFilter {
        actor_name: query.actor,
        case_ref: query.case,
        action,
        from_ms: query.from_ms,
        to_ms: query.to_ms,
        after_sequence: query.after_sequence,
        limit: query.limit,
        ..Default::default()
    };
    let store = state.access().store.clone();
    let entries = tokio::task::spawn_blocking(move || {
        store.with_read_connection(|connection| vigil_audit::entries(connection, &filter))
    })
    .await?
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Json(entries))
}

/// Verifies the whole audit chain (edits, deletions, insertions, reordering).
#[utoipa::path(get, path = "/v1/audit/verify", tag = "access", responses((status = 200, description = "Verification report", body = vigil_audit::VerifyReport)))]
pub async fn audit_verify(
    State(state): State<AppState>,
) -> Result<Json<vigil_audit::VerifyReport>, ApiError> {
    let store = state.access().store.clone();
    let anchors = state.audit_anchors();
    let report = tokio::task::spawn_blocking(move || {
        // No heads published yet is not a fault: the report then says no anchor was checked.
        let anchors = match anchors.as_deref().filter(|path| path.exists()) {
            Some(path) => vigil_audit::read_anchors(path)?,
            None => Vec::new(),
        };
        store.with_read_connection(|connection| {
            vigil_audit::verify_sealed(connection, &anchors, store.sealer())
        })
    })
    .await?
    // Nothing in this request is the caller's: a failure here is the server's.
    .map_err(|e| ApiError::Task(format!("audit verification failed: {e}")))?;
    Ok(Json(report))
}
