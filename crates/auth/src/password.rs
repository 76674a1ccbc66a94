//! Password policy and argon2id hashing.

use crate::error::AuthError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shorter passwords are refused; length is what makes a password hard to guess (NIST 800-63B).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longer ones are refused too: hashing cost grows with length, and nobody types more.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Argon2id cost parameters. Verification reads the parameters from the stored PHC string, so
/// changing these affects new hashes only (and old ones are re-hashed at the next login).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordHashing {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl PasswordHashing {
    /// OWASP's first recommendation for argon2id: 19 MiB, 2 passes, 1 lane (≈ 20–40 ms per check
    /// on a server core). Login is rare; an offline attacker with the database pays this per
    /// guess.
    pub const OWASP: PasswordHashing = PasswordHashing {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    /// The cheapest argon2id allows; only for test suites, where hundreds of hashes must stay fast.
    pub const INSECURE_FAST_FOR_TESTS: PasswordHashing = PasswordHashing {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };

    fn argon2(&self) -> Result<Argon2<'static>, AuthError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|error| AuthError::Invalid(format!("argon2 parameters: {error}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Hashes `password` with a fresh 16-byte salt into a PHC string.
    pub(crate) fn hash(&self, password: &str) -> Result<String, AuthError> {
        let mut salt = [0u8; 16];
        crate::secret::fill_random(&mut salt)?;
        let salt = SaltString::encode_b64(&salt)
            .map_err(|error| AuthError::Database(format!("encoding salt: {error}")))?;
        let hash = self
            .argon2()?
            .hash_password(password.as_bytes(), &salt)
            .map_err(|error| AuthError::Database(format!("hashing password: {error}")))?;
        Ok(hash.to_string())
    }

    /// Whether `password` matches the PHC string `stored`. A stored string that does not parse
    /// is a damaged row: it fails the check rather than the request.
    pub(crate) fn verify(&self, password: &str, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        // The parameters come from `stored`; `self` only supplies the algorithm implementation.
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    }

    /// Whether `stored` was made with other parameters than these, and so should be re-hashed.
    pub(crate) fn is_outdated(&self, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return true;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm.as_str() != "argon2id"
            || params.m_cost() != self.memory_kib
            || params.t_cost() != self.iterations
            || params.p_cost() != self.parallelism
    }
}

impl Default for PasswordHashing {
    fn default() -> Self {
        Self::OWASP
    }
}

/// Refuses passwords that are too short or too long, or equal to the user name.
pub fn check_password_policy(user_name: &str, password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::Invalid(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::Invalid(format!(
            "a password may have at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if password.trim().eq_ignore_ascii_case(user_name.trim()) {
        return Err(AuthError::Invalid(
            "a password must not be the user name".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_round_trips_and_a_wrong_password_fails() {
        let hashing = PasswordHashing::INSECURE_FAST_FOR_TESTS;
        let stored = hashing.hash("correct horse battery").unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=8,t=1,p=1$"),
            "{stored}"
        );
        assert!(hashing.verify("correct horse battery", &stored));
        assert!(!hashing.verify("correct horse batterY", &stored));
        assert!(!hashing.verify("correct horse battery", "not a phc string"));
        // two hashes of one password differ (fresh salt)
        assert_ne!(stored, hashing.hash("correct horse battery").unwrap());
    }

    #[test]
    fn the_production_default_is_owasp_argon2id() {
        let hashing = PasswordHashing::default();
        assert_eq!(hashing, PasswordHashing::OWASP);
        assert!(hashing.argon2().is_ok());
        let cheap = PasswordHashing::INSECURE_FAST_FOR_TESTS
            .hash("correct horse battery")
            .unwrap();
        assert!(hashing.is_outdated(&cheap));
        assert!(!PasswordHashing::INSECURE_FAST_FOR_TESTS.is_outdated(&cheap));
    }

    #[test]
    fn weak_passwords_are_refused() {
        assert!(check_password_policy("alice", "short").is_err());
        assert!(check_password_policy("alice", "elevenchars").is_err());
        assert!(check_password_policy("alice", "twelve chars").is_ok());
        assert!(check_password_policy("longusername", "LongUserName").is_err());
        assert!(check_password_policy("alice", &"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        // characters, not bytes: twelve accented letters pass, six of them do not
        assert!(check_password_policy("alice", &"é".repeat(12)).is_ok());
        assert!(check_password_policy("alice", &"é".repeat(6)).is_err());
    }
}
