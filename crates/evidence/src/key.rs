//! The server's evidence signing key: an Ed25519 key in the data directory, made on first use.

use crate::EvidenceError;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use std::io::Write;
use std::path::{Path, PathBuf};
use vigil_seal::Sealer;
use zeroize::Zeroizing;

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "evidence-signing.key";
/// Associated data of the sealed key: a sealed blob copied from elsewhere does not open as it.
const SEAL_BINDING: &[u8] = b"vigil-evidence-signing-key-v1";
const SEED_BYTES: usize = 32;
/// How a public key is written: in `public_key.txt`, by `vigil keys evidence-public`, and
/// where `--public-key` pins one.
const PUBLIC_KEY_PREFIX: &str = "ed25519:";

/// The signing key, with the file it came from.
pub struct EvidenceKey {
    signing: SigningKey,
    path: PathBuf,
}

impl std::fmt::Debug for EvidenceKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "EvidenceKey({})", self.public_key_text())
    }
}

impl EvidenceKey {
    /// Reads `data_dir/evidence-signing.key`, creating it (mode 0600) on first use. With
    /// `sealer` (encryption at rest) the seed is stored sealed with the active key, and a key
    /// written in plaintext before encryption was turned on is sealed in place.
    pub fn load_or_create(data_dir: &Path, sealer: Option<&Sealer>) -> Result<Self, EvidenceError> {
        let path = data_dir.join(KEY_FILE);
        let problem = |detail: String| EvidenceError::Key {
            path: path.clone(),
            detail,
        };
        match std::fs::read(&path) {
            Ok(stored) => {
                let stored = Zeroizing::new(stored);
                let seed = open_seed(&stored, sealer).map_err(problem)?;
                if sealer.is_some() && stored.len() == SEED_BYTES {
                    write_key_file(&path, &store_form(&seed, sealer).map_err(problem)?, true)?;
                }
                Ok(Self::from_seed(&seed, path))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = Zeroizing::new([0u8; SEED_BYTES]);
                getrandom::getrandom(seed.as_mut())
                    .map_err(|error| problem(format!("no randomness for a new key: {error}")))?;
                std::fs::create_dir_all(data_dir).map_err(EvidenceError::io(format!(
                    "creating {}",
                    data_dir.display()
                )))?;
                let written = store_form(&seed, sealer).map_err(problem)?;
                if !write_key_file(&path, &written, false)? {
                    // Another process made it first: use theirs, so there is one key.
                    return Self::load_or_create(data_dir, sealer);
                }
                Ok(Self::from_seed(&seed, path))
            }
            Err(error) => Err(problem(error.to_string())),
        }
    }

    fn from_seed(seed: &[u8; SEED_BYTES], path: PathBuf) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
            path,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// `ed25519:` and the public key in hex: what a recipient pins.
    pub fn public_key_text(&self) -> String {
        public_key_text(&self.verifying_key())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.signing.sign(message)
    }
}

/// `ed25519:` and 64 hex digits.
pub fn public_key_text(key: &VerifyingKey) -> String {
    format!("{PUBLIC_KEY_PREFIX}{}", hex::encode(key.as_bytes()))
}

/// Parses what [`public_key_text`] writes (the prefix may be left out; surrounding space is
/// ignored).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, EvidenceError> {
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix(PUBLIC_KEY_PREFIX).unwrap_or(trimmed);
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(digits, &mut bytes)
        .map_err(|_| EvidenceError::PublicKey(shorten(trimmed)))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| EvidenceError::PublicKey(shorten(trimmed)))
}

fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(80).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    format!("{short:?}")
}

/// The seed from the file's bytes: 32 raw bytes, or a sealed blob of them.
fn open_seed(
    stored: &[u8],
    sealer: Option<&Sealer>,
) -> Result<Zeroizing<[u8; SEED_BYTES]>, String> {
    let plain = if stored.len() == SEED_BYTES {
        Zeroizing::new(stored.to_vec())
    } else if let Some(key) = vigil_seal::sealed_key_id(stored) {
        let sealer = sealer.ok_or_else(|| {
            format!("it is sealed with key {key}; configure the keys for encryption at rest")
        })?;
        Zeroizing::new(
            sealer
                .open(stored, SEAL_BINDING)
                .map_err(|error| error.to_string())?,
        )
    } else {
        return Err(format!(
            "{} bytes, neither a 32-byte seed nor a sealed one",
            stored.len()
        ));
    };
    let mut seed = Zeroizing::new([0u8; SEED_BYTES]);
    if plain.len() != SEED_BYTES {
        return Err("the sealed seed is not 32 bytes".into());
    }
    seed.copy_from_slice(&plain);
    Ok(seed)
}

fn store_form(
    seed: &[u8; SEED_BYTES],
    sealer: Option<&Sealer>,
) -> Result<Zeroizing<Vec<u8>>, String> {
    match sealer {
        Some(sealer) => sealer
            .seal(seed, SEAL_BINDING)
            .map(Zeroizing::new)
            .map_err(|error| error.to_string()),
        None => Ok(Zeroizing::new(seed.to_vec())),
    }
}

/// Writes the key file whole, mode 0600: a temporary file in the same folder, synced, then
/// linked into place (`replace` false: only if absent, returning false when it already exists)
/// or renamed over it (`replace` true). A reader never sees half a key.
fn write_key_file(path: &Path, bytes: &[u8], replace: bool) -> Result<bool, EvidenceError> {
    let folder = path.parent().unwrap_or(Path::new("."));
    let failed = EvidenceError::io(format!("writing {}", path.display()));
    let mut temporary = tempfile::Builder::new()
        .prefix(".evidence-signing")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(folder)
        .map_err(EvidenceError::io(format!("writing {}", path.display())))?;
    temporary
        .write_all(bytes)
        .and_then(|()| temporary.as_file().sync_all())
        .map_err(EvidenceError::io(format!("writing {}", path.display())))?;
    if replace {
        temporary.persist(path).map_err(|error| {
            EvidenceError::io(format!("writing {}", path.display()))(error.error)
        })?;
        return Ok(true);
    }
    match temporary.persist_noclobber(path) {
        Ok(_) => Ok(true),
        Err(error) if error.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(failed(error.error)),
    }
}
