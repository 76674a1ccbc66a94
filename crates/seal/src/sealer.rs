//! Sealing and opening blobs with a keyring.

use crate::error::SealError;
use crate::key::{parse_keyring, KeyId, SealKey, KEY_ID_BYTES};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::fmt;
use std::path::Path;

/// The first bytes of every sealed blob (format version 1).
pub const MAGIC: &[u8; 4] = b"VGS1";
/// Nonce length of XChaCha20-Poly1305: 24 bytes, so random nonces never collide in practice.
pub const NONCE_BYTES: usize = 24;
/// Poly1305 tag length.
pub const TAG_BYTES: usize = 16;
/// Bytes a sealed blob adds to its plaintext: magic, key id, nonce, tag.
pub const OVERHEAD: usize = HEADER_BYTES + NONCE_BYTES + TAG_BYTES;
/// The environment variable `Sealer::load` reads keys from when no key file is configured.
pub const KEYS_ENV_VAR: &str = "VIGIL_SEAL_KEYS";

const HEADER_BYTES: usize = MAGIC.len() + KEY_ID_BYTES;

/// Whether `bytes` look like a sealed blob (header present and long enough), as opposed to a
/// plaintext blob written before encryption was turned on. Plaintext that happens to start with
/// "VGS1" would be misread; embeddings (little-endian f32) and JPEG/PNG crops never do in
/// practice, and opening such a blob fails authentication rather than returning garbage.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.len() >= OVERHEAD && bytes.starts_with(MAGIC)
}

/// The id of the key a sealed blob was sealed with; `None` for a plaintext blob.
pub fn sealed_key_id(bytes: &[u8]) -> Option<KeyId> {
    if !is_sealed(bytes) {
        return None;
    }
    let mut id = [0u8; KEY_ID_BYTES];
    id.copy_from_slice(&bytes[MAGIC.len()..HEADER_BYTES]);
    Some(KeyId(id))
}

/// Associated data that binds a blob to one column of one row, e.g. `sighting:123:crop`, so a
/// blob copied into another row or column fails to open.
pub fn row_binding(kind: &str, id: i64, column: &str) -> Vec<u8> {
    format!("{kind}:{id}:{column}").into_bytes()
}

struct KeyEntry {
    id: KeyId,
    cipher: XChaCha20Poly1305,
}

impl KeyEntry {
    fn new(key: &SealKey) -> Self {
        KeyEntry {
            id: key.id(),
            cipher: XChaCha20Poly1305::new(key.bytes().into()),
        }
    }
}

/// Seals and opens blobs. Holds one active key, used for every new seal, and older keys kept
/// only to open what they sealed until a reseal job has moved it to the active key. The
/// ciphers wipe their key copies when dropped.
pub struct Sealer {
    active: KeyEntry,
    older: Vec<KeyEntry>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Sealer")
            .field("active", &self.active.id)
            .field(
                "older",
                &self.older.iter().map(|entry| entry.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Sealer {
    /// A sealer that seals with `active` and also opens what `older` keys sealed.
    pub fn new(
        active: SealKey,
        older: impl IntoIterator<Item = SealKey>,
    ) -> Result<Self, SealError> {
        let active = KeyEntry::new(&active);
        let mut entries: Vec<KeyEntry> = Vec::new();
        for key in older {
            let entry = KeyEntry::new(&key);
            if entry.id == active.id || entries.iter().any(|other| other.id == entry.id) {
                return Err(SealError::DuplicateKey(entry.id));
            }
            entries.push(entry);
        }
        Ok(Sealer {
            active,
            older: entries,
        })
    }

    /// Parses keyring text (see [`parse_keyring`]): the last key is active. `origin` names the
    /// source in errors.
    pub fn from_keyring_text(text: &str, origin: &str) -> Result<Self, SealError> {
        let mut keys = parse_keyring(text, origin)?;
        let active = keys.pop().ok_or_else(|| SealError::NoKeys {
            origin: origin.to_owned(),
        })?;
        keys.reverse();
        Self::new(active, keys)
    }

    /// Reads a key file: one key per line, the last one active.
    pub fn from_key_file(path: &Path) -> Result<Self, SealError> {
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            SealError::KeyFile {
                path: path.to_owned(),
                source,
            }
        })?);
        Self::from_keyring_text(&text, &path.display().to_string())
    }

    /// The keys configured for this server: the key file when one is given, else the keys in
    /// `$VIGIL_SEAL_KEYS`, else none (`Ok(None)`: encryption at rest is off). Both at once is
    /// refused, since silently preferring one could seal with a key the operator did not mean.
    pub fn load(key_file: Option<&Path>) -> Result<Option<Self>, SealError> {
        let from_environment = std::env::var(KEYS_ENV_VAR)
            .ok()
            .map(zeroize::Zeroizing::new)
            .filter(|text| !text.trim().is_empty());
        match (key_file, from_environment) {
            (Some(file), Some(_)) => Err(SealError::AmbiguousKeys {
                file: file.to_owned(),
                variable: KEYS_ENV_VAR.to_owned(),
            }),
            (Some(file), None) => Self::from_key_file(file).map(Some),
            (None, Some(text)) => {
                Self::from_keyring_text(&text, &format!("${KEYS_ENV_VAR}")).map(Some)
            }
            (None, None) => Ok(None),
        }
    }

    /// A fresh key as one keyring line (standard base64), for `vigil keys generate`.
    pub fn generate_key() -> Result<String, SealError> {
        Ok(SealKey::generate()?.to_base64().as_str().to_owned())
    }

    pub fn active_key_id(&self) -> KeyId {
        self.active.id
    }

    /// Every key's id, the active one first.
    pub fn key_ids(&self) -> Vec<KeyId> {
        std::iter::once(self.active.id)
            .chain(self.older.iter().map(|entry| entry.id))
            .collect()
    }

    /// Encrypts `plaintext` with the active key:
    /// `"VGS1" ‖ key id (8 B) ‖ nonce (24 B, OS RNG) ‖ ciphertext ‖ tag (16 B)`.
    /// The header and `associated_data` are authenticated, not stored: opening needs the same
    /// associated data (use [`row_binding`]).
    pub fn seal(&self, plaintext: &[u8], associated_data: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::getrandom(&mut nonce).map_err(|error| SealError::Random(error.to_string()))?;
        let mut sealed = Vec::with_capacity(plaintext.len() + OVERHEAD);
        sealed.extend_from_slice(MAGIC);
        sealed.extend_from_slice(&self.active.id.0);
        let aad = authenticated_data(&sealed, associated_data);
        let ciphertext = self
            .active
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::TooLarge)?;
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Decrypts a blob sealed with any key of the keyring, checking it was sealed with the same
    /// `associated_data`.
    pub fn open(&self, sealed: &[u8], associated_data: &[u8]) -> Result<Vec<u8>, SealError> {
        if !sealed.starts_with(MAGIC) {
            return Err(SealError::NotSealed);
        }
        let key_id = sealed_key_id(sealed).ok_or(SealError::Truncated {
            length: sealed.len(),
        })?;
        let entry = std::iter::once(&self.active)
            .chain(&self.older)
            .find(|entry| entry.id == key_id)
            .ok_or(SealError::UnknownKey(key_id))?;
        let (header, rest) = sealed.split_at(HEADER_BYTES);
        let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
        let aad = authenticated_data(header, associated_data);
        entry
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Unauthentic)
    }

    /// Opens a blob with whichever key sealed it and seals it again with the active key (with a
    /// fresh nonce): one step of the rotation job.
    pub fn reseal(&self, sealed: &[u8], associated_data: &[u8]) -> Result<Vec<u8>, SealError> {
        let plaintext = zeroize::Zeroizing::new(self.open(sealed, associated_data)?);
        self.seal(&plaintext, associated_data)
    }

    /// Whether a rotation job should rewrite `bytes`: plaintext, or sealed with an older key.
    pub fn needs_reseal(&self, bytes: &[u8]) -> bool {
        sealed_key_id(bytes) != Some(self.active.id)
    }
}

/// The header (magic and key id) is authenticated together with the caller's associated data;
/// the header has a fixed length, so the concatenation is unambiguous.
fn authenticated_data(header: &[u8], associated_data: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + associated_data.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(associated_data);
    aad
}
