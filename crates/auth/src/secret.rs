//! Random secrets (API tokens, session cookies, generated passwords) and how they are stored.

use crate::error::AuthError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// API tokens: `vgl_` followed by 32 random bytes in base64url (43 characters).
pub const TOKEN_PREFIX: &str = "vgl_";
/// Session secrets (the web UI's cookie): another prefix, so neither works where the other is
/// expected and a leaked one is recognisable in logs and secret scanners.
pub const SESSION_PREFIX: &str = "vgs_";

const SECRET_BYTES: usize = 32;
const SECRET_TEXT_CHARS: usize = 43; // base64url of 32 bytes, unpadded

pub(crate) fn fill_random(bytes: &mut [u8]) -> Result<(), AuthError> {
    // The operating system's CSPRNG; failing it is an environment fault, not bad input.
    getrandom::fill(bytes)
        .map_err(|error| AuthError::Database(format!("no randomness from the OS: {error}")))
}

/// A fresh secret with `prefix`, 256 bits from the OS CSPRNG.
pub(crate) fn new_secret(prefix: &str) -> Result<String, AuthError> {
    let mut bytes = [0u8; SECRET_BYTES];
    fill_random(&mut bytes)?;
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// Whether `secret` has the shape of one of ours with `prefix`, checked before any lookup so
/// garbage never reaches the database.
pub(crate) fn has_secret_shape(secret: &str, prefix: &str) -> bool {
    secret.strip_prefix(prefix).is_some_and(|body| {
        body.len() == SECRET_TEXT_CHARS
            && body
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    })
}

/// What the database keeps of a secret: lowercase hex SHA-256 of the whole string.
///
/// Lookups go by this hash, so no constant-time comparison is needed: the timing of an index
/// lookup can at most tell an attacker how much of the *hash* of their guess matches a stored
/// hash, and choosing a guess whose hash has a wanted prefix says nothing about the 256-bit
/// secret behind it. A plain hash (rather than argon2) suffices because the secret is random, not
/// chosen by a person: there is nothing to brute-force.
pub(crate) fn secret_sha256(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A password for a generated account (the first admin): 18 random bytes, 24 base64url
/// characters, well above the policy's minimum.
pub(crate) fn generated_password() -> Result<String, AuthError> {
    let mut bytes = [0u8; 18];
    fill_random(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_their_prefix_and_shape_and_differ() {
        let first = new_secret(TOKEN_PREFIX).unwrap();
        let second = new_secret(TOKEN_PREFIX).unwrap();
        assert_ne!(first, second);
        assert!(has_secret_shape(&first, TOKEN_PREFIX), "{first}");
        assert!(!has_secret_shape(&first, SESSION_PREFIX));
        assert!(!has_secret_shape("vgl_short", TOKEN_PREFIX));
        assert!(!has_secret_shape(&format!("{first}x"), TOKEN_PREFIX));
        assert_eq!(secret_sha256(&first).len(), 64);
        assert_eq!(generated_password().unwrap().len(), 24);
    }
}
