use std::path::PathBuf;

/// What went wrong building a bundle or reading one, in the user's terms. A bundle that reads
/// but fails a check is not an error: it is a [`crate::VerifyReport`] with problems.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("no case {0}")]
    UnknownCase(String),
    #[error(transparent)]
    Store(#[from] vigil_store::StoreError),
    #[error(transparent)]
    Audit(#[from] vigil_audit::AuditError),
    #[error("the evidence signing key {path}: {detail}")]
    Key { path: PathBuf, detail: String },
    #[error("not a public key: {0} (expected ed25519: and 64 hex digits, as `vigil keys evidence-public` prints)")]
    PublicKey(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

impl EvidenceError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| EvidenceError::Io { what, source }
    }
}
