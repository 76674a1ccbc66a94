//! The one error type of this crate.

/// What went wrong with a webhook operation. A receiver that fails is not an error: its
/// attempt is logged and retried; errors are for requests that cannot be carried out.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A subscription or event is malformed (bad URL scheme, empty secret, payload not JSON …).
    #[error("invalid webhook request: {0}")]
    Invalid(String),
    #[error("webhook subscription {0} does not exist")]
    NoSuchSubscription(i64),
    #[error("webhook delivery {0} does not exist")]
    NoSuchDelivery(i64),
    /// The database failed, e.g. the schema is missing or the file is locked.
    #[error("webhook database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// The notify tables hold a row this code cannot read.
    #[error("webhook tables are unreadable: {0}")]
    Corrupt(String),
}
