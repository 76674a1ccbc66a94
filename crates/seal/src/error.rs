//! The one error type of this crate.

use crate::key::KeyId;
use std::path::PathBuf;

/// What went wrong loading keys or sealing/opening a blob. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// A keyring (file or environment variable) holds a line that is not a key.
    #[error("keyring {origin}, line {line}: {reason}")]
    Keyring {
        /// The file path or the environment variable's name.
        origin: String,
        line: usize,
        reason: String,
    },
    /// A keyring with no key in it.
    #[error("keyring {origin} holds no key")]
    NoKeys { origin: String },
    #[error("key {0} is listed twice")]
    DuplicateKey(KeyId),
    /// Two sources of keys configured at once, so which one is meant is unclear.
    #[error("keys are configured both in {file} and in ${variable}; configure one")]
    AmbiguousKeys { file: PathBuf, variable: String },
    #[error("cannot read key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The bytes do not start with the sealed-blob header: a plaintext (legacy) blob.
    #[error("the data is not sealed (no VGS1 header)")]
    NotSealed,
    /// The header is there but the blob is shorter than a header, nonce and tag.
    #[error("the sealed data is truncated ({length} bytes)")]
    Truncated { length: usize },
    /// Sealed with a key this keyring does not hold (removed too early, or another server's).
    #[error("the data is sealed with key {0}, which is not in the keyring")]
    UnknownKey(KeyId),
    /// Authentication failed: the data was altered, or the associated data names another row.
    #[error("the sealed data failed authentication (altered, or bound to another row)")]
    Unauthentic,
    #[error("the plaintext is too large to seal")]
    TooLarge,
    /// The operating system's random number generator failed.
    #[error("the OS random number generator failed: {0}")]
    Random(String),
}
