//! Keys, their ids, and the keyring text format.

use crate::error::SealError;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of a key in bytes (XChaCha20-Poly1305 takes 256-bit keys).
pub const KEY_BYTES: usize = 32;
/// Length of a key id in bytes.
pub const KEY_ID_BYTES: usize = 8;

/// A key's id: the first 8 bytes of SHA-256("vigil-seal-key-id-v1" ‖ key). Derived rather than
/// assigned, so a key carries its id wherever it is copied and two keys never share one by
/// mistake. Written into every sealed blob; reveals nothing usable about the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; KEY_ID_BYTES]);

impl fmt::Display for KeyId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "KeyId({self})")
    }
}

/// A 256-bit key, wiped from memory when dropped. `Debug` shows only its id.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SealKey {
    bytes: [u8; KEY_BYTES],
}

impl SealKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, SealError> {
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::getrandom(&mut bytes).map_err(|error| SealError::Random(error.to_string()))?;
        Ok(SealKey { bytes })
    }

    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        SealKey { bytes }
    }

    /// Parses a key written as standard base64 (44 characters, padding optional) or as 64 hex
    /// digits. The error names the problem, never the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let decoded = Zeroizing::new(if text.len() == 2 * KEY_BYTES {
            hex::decode(text).map_err(|_| "not a hex key (64 hex digits)".to_owned())?
        } else {
            STANDARD
                .decode(text)
                .or_else(|_| STANDARD_NO_PAD.decode(text))
                .map_err(|_| "not a base64 or hex key".to_owned())?
        });
        let bytes: [u8; KEY_BYTES] = decoded.as_slice().try_into().map_err(|_| {
            format!(
                "a key must be {KEY_BYTES} bytes, this one is {}",
                decoded.len()
            )
        })?;
        Ok(SealKey { bytes })
    }

    /// The key as standard base64, the form `vigil keys generate` prints.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.bytes))
    }

    pub fn id(&self) -> KeyId {
        let digest = Sha256::new()
            .chain_update(b"vigil-seal-key-id-v1")
            .chain_update(self.bytes)
            .finalize();
        let mut id = [0u8; KEY_ID_BYTES];
        id.copy_from_slice(&digest[..KEY_ID_BYTES]);
        KeyId(id)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.bytes
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "SealKey({})", self.id())
    }
}

/// Parses a keyring: one key per line (base64 or hex), `#` starts a comment, blank lines are
/// skipped. Keys are returned in file order; the caller makes the *last* one active, so
/// appending a new key (`vigil keys generate >> keys`) rotates. `origin` names the source in
/// errors. In an environment variable, commas may separate keys instead of newlines.
pub fn parse_keyring(text: &str, origin: &str) -> Result<Vec<SealKey>, SealError> {
    let mut keys: Vec<SealKey> = Vec::new();
    for (index, raw_line) in text.lines().enumerate() {
        let line = index + 1;
        let refuse = |reason: String| SealError::Keyring {
            origin: origin.to_owned(),
            line,
            reason,
        };
        let without_comment = raw_line.split('#').next().unwrap_or("");
        for item in without_comment.split(',').map(str::trim) {
            if item.is_empty() {
                continue;
            }
            if item.split_whitespace().nth(1).is_some() {
                return Err(refuse(
                    "expected one key per line (a comment starts with #)".to_owned(),
                ));
            }
            let key = SealKey::parse(item).map_err(refuse)?;
            if let Some(previous) = keys.iter().find(|previous| previous.id() == key.id()) {
                return Err(refuse(format!("key {} is listed twice", previous.id())));
            }
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err(SealError::NoKeys {
            origin: origin.to_owned(),
        });
    }
    Ok(keys)
}
