//! The one error type of this crate, in the terms a caller (and the HTTP layer) acts on.

/// What went wrong with a store operation. `api` maps each variant to a status code once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The subject or template named in the request does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request collides with existing data, e.g. a subject name already in use.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request itself is malformed (empty name, no templates, dimension mismatch, ...).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The database failed or holds data this code cannot read.
    #[error("database error: {0}")]
    Database(String),
    /// Upgrading the schema failed; the database is left at the last version that succeeded.
    #[error("schema migration failed: {0}")]
    Migration(String),
    /// The database was written by a newer vigil; opening it with this one could corrupt it.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    NewerSchema { found: u32, supported: u32 },
    /// The database holds data sealed with a key that was not given (encryption at rest): the
    /// store refuses to open rather than fail on every read.
    #[error(
        "{place} holds data sealed with key {key_id}, which is not configured \
         (encryption.key_file or $VIGIL_SEAL_KEYS)"
    )]
    MissingKey { key_id: String, place: String },
    /// A sealed blob failed to open: altered, copied from another row, or sealing failed.
    #[error("sealed data: {0}")]
    Seal(String),
    /// The disk holding the database is full: the write was rolled back, nothing stored is
    /// damaged, and writes succeed again once space is freed.
    #[error("storage full: {0}")]
    StorageFull(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::StorageFull(error.to_string()),
            _ => StoreError::Database(error.to_string()),
        }
    }
}
