//! The signature receivers check: `X-Vigil-Signature: sha256=<hex>` where the hex is
//! HMAC-SHA256 keyed with the subscription's secret over `timestamp ‖ "." ‖ body`, and the
//! timestamp is the `X-Vigil-Timestamp` header (unix seconds, decimal). Signing the timestamp
//! lets receivers refuse replays older than a few minutes.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The prefix of the signature header's value, naming the hash.
pub const SIGNATURE_PREFIX: &str = "sha256=";

/// How old a timestamp receivers should still accept, in seconds (our recommendation).
pub const RECOMMENDED_TOLERANCE_SECONDS: i64 = 300;

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Vigil-Signature` header value for `body` sent at `timestamp`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "{SIGNATURE_PREFIX}{}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Whether `signature_header` is the signature of `body` at `timestamp` under `secret`, in
/// constant time. Receivers should also refuse a timestamp far from their clock
/// (see [`RECOMMENDED_TOLERANCE_SECONDS`]) and deduplicate by `X-Vigil-Delivery`.
pub fn verify_signature(
    secret: &str,
    timestamp: &str,
    body: &[u8],
    signature_header: &str,
) -> bool {
    let Some(hex_digest) = signature_header.trim().strip_prefix(SIGNATURE_PREFIX) else {
        return false;
    };
    let Ok(digest) = hex::decode(hex_digest) else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&digest).is_ok()
}

/// A fresh random secret (32 bytes as 64 hex digits) for a new subscription.
pub fn generate_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_an_independent_hmac_computation() {
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        let header = sign("secret", "1700000000", br#"{"a":1}"#);
        assert_eq!(
            header,
            "sha256=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }

    #[test]
    fn verification_refuses_other_secrets_bodies_times_and_formats() {
        let header = sign("secret", "1700000000", b"{}");
        assert!(verify_signature("secret", "1700000000", b"{}", &header));
        assert!(!verify_signature("other", "1700000000", b"{}", &header));
        assert!(!verify_signature("secret", "1700000001", b"{}", &header));
        assert!(!verify_signature("secret", "1700000000", b"{ }", &header));
        assert!(!verify_signature(
            "secret",
            "1700000000",
            b"{}",
            &header[7..]
        ));
        assert!(!verify_signature(
            "secret",
            "1700000000",
            b"{}",
            "sha256=zz"
        ));
    }
}
