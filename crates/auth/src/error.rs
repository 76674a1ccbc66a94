//! The one error type of this crate. `api` maps each variant to a status code once:
//! Unauthenticated → 401, Forbidden → 403, Throttled → 429 (with Retry-After), Conflict → 409,
//! Invalid → 400, NotFound → 404, Database → 500.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credential, or one that is unknown, expired, revoked, or belongs to a disabled user; a
    /// wrong password or an unknown user name. Deliberately one variant: the caller must not
    /// learn which of these it was.
    #[error("authentication required")]
    Unauthenticated,
    /// Authenticated, but none of the user's roles grants what was asked.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Too many failed logins for this user name or client address; the password was not
    /// checked.
    #[error("too many failed logins; retry after {} s", retry_after.as_secs_f64().ceil())]
    Throttled { retry_after: Duration },
    /// The request collides with existing data (a user name in use, the last admin removed).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request itself is malformed (weak password, bad user name, zero token lifetime, ...).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The user or token named in the request does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The database failed or holds data this code cannot read.
    #[error("database error: {0}")]
    Database(String),
}

impl From<rusqlite::Error> for AuthError {
    fn from(error: rusqlite::Error) -> Self {
        AuthError::Database(error.to_string())
    }
}

pub(crate) fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}
