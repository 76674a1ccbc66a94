//! The one error type of this crate.

/// What went wrong with an audit operation. A tampered chain is *not* an error: `verify` reports
/// it in a `VerifyReport`; errors are for requests that cannot be carried out at all.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The entry to append is malformed (empty actor name, request not an object, too long, ...).
    #[error("invalid audit entry: {0}")]
    Invalid(String),
    /// An action name that is not one of `AuditAction`'s.
    #[error("unknown audit action {0:?}")]
    UnknownAction(String),
    /// The database failed, e.g. a trigger refused a write or the schema is missing.
    #[error("audit database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// The audit tables hold a row this code cannot read.
    #[error("audit log is unreadable: {0}")]
    Corrupt(String),
    /// Reading or writing an export or anchor file failed.
    #[error("audit file error: {0}")]
    Io(#[from] std::io::Error),
    /// An export or anchor file holds a line that is not what this code writes.
    #[error("malformed audit file, line {line}: {reason}")]
    Malformed { line: u64, reason: String },
    /// A sealed probe image could not be opened (no or wrong key, altered, another row's).
    #[error("sealed probe image: {0}")]
    Seal(#[from] vigil_seal::SealError),
}
