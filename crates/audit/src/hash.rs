//! The chain's hash: SHA-256 over a length-prefixed encoding of every field.
//!
//! Encoding, version 1 (docs/design/008-audit-chain.md):
//!
//! ```text
//! "vigil-audit-entry-v1"                   domain tag, as text(..)
//! sequence                                 u64, big-endian
//! at_ms                                    i64, big-endian (two's complement)
//! opt(actor.user_id) text(actor.user_name)
//! text(action)
//! text(target.kind) text(target.id)
//! opt(case_ref)
//! text(reason)
//! text(canonical_json(request))
//! opt(probe_sha256)                        the 64 hex characters
//! text(outcome.kind) text(outcome.detail)
//! previous_hash                            32 raw bytes
//!
//! text(s) = u64 big-endian byte length of s (UTF-8) ‖ the bytes
//! opt(None) = 0x00, opt(Some(s)) = 0x01 ‖ text(s)
//! ```
//!
//! Every variable-length field carries its length, so no two different entries encode to the
//! same bytes (moving a character from one field to the next changes a length).

use crate::entry::{Actor, AuditRecord, EntryHash, Outcome, Target};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

const DOMAIN_TAG: &str = "vigil-audit-entry-v1";

/// An entry as stored, with the action kept as text: verification and export must work on
/// entries whose action this build does not know. Serialises exactly like `AuditRecord`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEntry {
    pub sequence: u64,
    pub at_ms: i64,
    pub actor: Actor,
    pub action: String,
    pub target: Target,
    pub case_ref: Option<String>,
    pub reason: String,
    pub request: serde_json::Value,
    pub probe_sha256: Option<String>,
    pub outcome: Outcome,
    pub previous_hash: EntryHash,
    pub entry_hash: EntryHash,
}

impl RawEntry {
    /// The hash this entry should carry, from its fields (never from `entry_hash`).
    pub fn computed_hash(&self) -> EntryHash {
        let mut encoder = Encoder(Sha256::new());
        encoder.text(DOMAIN_TAG);
        encoder.0.update(self.sequence.to_be_bytes());
        encoder.0.update(self.at_ms.to_be_bytes());
        encoder.optional(self.actor.user_id.as_deref());
        encoder.text(&self.actor.user_name);
        encoder.text(&self.action);
        encoder.text(&self.target.kind);
        encoder.text(&self.target.id);
        encoder.optional(self.case_ref.as_deref());
        encoder.text(&self.reason);
        encoder.text(&canonical_json(&self.request));
        encoder.optional(self.probe_sha256.as_deref());
        encoder.text(self.outcome.kind.as_str());
        encoder.text(&self.outcome.detail);
        encoder.0.update(self.previous_hash.0);
        EntryHash(encoder.0.finalize().into())
    }

    pub fn head(&self) -> crate::ChainHead {
        crate::ChainHead {
            sequence: self.sequence,
            hash: self.entry_hash,
        }
    }
}

impl From<&AuditRecord> for RawEntry {
    fn from(record: &AuditRecord) -> Self {
        RawEntry {
            sequence: record.sequence,
            at_ms: record.at_ms,
            actor: record.actor.clone(),
            action: record.action.as_str().to_owned(),
            target: record.target.clone(),
            case_ref: record.case_ref.clone(),
            reason: record.reason.clone(),
            request: record.request.clone(),
            probe_sha256: record.probe_sha256.clone(),
            outcome: record.outcome.clone(),
            previous_hash: record.previous_hash,
            entry_hash: record.entry_hash,
        }
    }
}

impl TryFrom<RawEntry> for AuditRecord {
    type Error = crate::AuditError;

    fn try_from(raw: RawEntry) -> Result<Self, Self::Error> {
        Ok(AuditRecord {
            sequence: raw.sequence,
            at_ms: raw.at_ms,
            actor: raw.actor,
            action: raw.action.parse()?,
            target: raw.target,
            case_ref: raw.case_ref,
            reason: raw.reason,
            request: raw.request,
            probe_sha256: raw.probe_sha256,
            outcome: raw.outcome,
            previous_hash: raw.previous_hash,
            entry_hash: raw.entry_hash,
        })
    }
}

impl AuditRecord {
    /// The hash the record's fields imply; equal to `entry_hash` unless the record was altered.
    pub fn computed_hash(&self) -> EntryHash {
        RawEntry::from(self).computed_hash()
    }
}

struct Encoder(Sha256);

impl Encoder {
    fn text(&mut self, text: &str) {
        // usize → u64 never loses bits on the platforms Rust supports.
        self.0.update((text.len() as u64).to_be_bytes());
        self.0.update(text.as_bytes());
    }

    fn optional(&mut self, text: Option<&str>) {
        match text {
            None => self.0.update([0]),
            Some(text) => {
                self.0.update([1]);
                self.text(text);
            }
        }
    }
}

/// JSON with object keys sorted by their UTF-8 bytes at every depth and no whitespace; strings
/// and numbers as serde_json writes them. Sorting here rather than trusting `serde_json::Map`
/// keeps the hash stable even if some crate in the build enables `preserve_order`.
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            // Serialising a scalar Value cannot fail; writing into a String cannot either.
            let _ = write!(out, "{value}");
        }
        Value::Array(items) => {
            out.push('[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (position, key) in keys.into_iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}", Value::String(key.clone()));
                out.push(':');
                if let Some(item) = map.get(key) {
                    write_canonical(item, out);
                }
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::OutcomeKind;
    use serde_json::json;

    fn sample() -> RawEntry {
        RawEntry {
            sequence: 1,
            at_ms: 1_700_000_000_000,
            actor: Actor {
                user_id: Some("7".into()),
                user_name: "alice".into(),
            },
            action: "search".into(),
            target: Target {
                kind: "gallery".into(),
                id: "all".into(),
            },
            case_ref: Some("CASE-1".into()),
            reason: "burglary".into(),
            request: json!({"threshold": 0.001, "top_k": 10}),
            probe_sha256: None,
            outcome: Outcome {
                kind: OutcomeKind::Success,
                detail: "2 candidates".into(),
            },
            previous_hash: EntryHash::GENESIS,
            entry_hash: EntryHash::GENESIS,
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_and_drops_whitespace() {
        let value: serde_json::Value =
            serde_json::from_str(r#"{ "b": [ {"z": 1, "a": "x\n"} ], "a": 2.5, "é": null }"#)
                .unwrap();
        assert_eq!(
            canonical_json(&value),
            r#"{"a":2.5,"b":[{"a":"x\n","z":1}],"é":null}"#
        );
    }

    #[test]
    fn canonical_json_is_stable_through_a_parse() {
        let value = json!({"f": 0.1, "big": 1e300, "neg": -12, "u": u64::MAX, "s": "\u{1}\"" });
        let text = canonical_json(&value);
        let reparsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(canonical_json(&reparsed), text);
    }

    #[test]
    fn moving_text_between_fields_changes_the_hash() {
        let mut first = sample();
        first.target.kind = "gallery".into();
        first.target.id = "all".into();
        let mut second = sample();
        second.target.kind = "galleryall".into();
        second.target.id = String::new();
        assert_ne!(first.computed_hash(), second.computed_hash());

        let mut absent = sample();
        absent.case_ref = None;
        let mut empty = sample();
        empty.case_ref = Some(String::new());
        assert_ne!(absent.computed_hash(), empty.computed_hash());
    }

    #[test]
    fn key_order_of_the_request_does_not_change_the_hash() {
        let mut first = sample();
        first.request = serde_json::from_str(r#"{"top_k":10,"threshold":0.001}"#).unwrap();
        assert_eq!(first.computed_hash(), sample().computed_hash());
    }

    /// Pins encoding version 1: if this changes, every stored chain stops verifying.
    #[test]
    fn encoding_version_1_is_pinned() {
        let mut expected = Sha256::new();
        let text = |hasher: &mut Sha256, s: &str| {
            hasher.update((s.len() as u64).to_be_bytes());
            hasher.update(s.as_bytes());
        };
        text(&mut expected, "vigil-audit-entry-v1");
        expected.update(1u64.to_be_bytes());
        expected.update(1_700_000_000_000i64.to_be_bytes());
        expected.update([1]);
        text(&mut expected, "7");
        text(&mut expected, "alice");
        text(&mut expected, "search");
        text(&mut expected, "gallery");
        text(&mut expected, "all");
        expected.update([1]);
        text(&mut expected, "CASE-1");
        text(&mut expected, "burglary");
        text(&mut expected, r#"{"threshold":0.001,"top_k":10}"#);
        expected.update([0]);
        text(&mut expected, "success");
        text(&mut expected, "2 candidates");
        expected.update([0u8; 32]);
        let expected = EntryHash(expected.finalize().into());
        assert_eq!(sample().computed_hash(), expected);
        // Computed independently (Python hashlib) from the layout in the module comment.
        assert_eq!(
            expected.to_hex(),
            "3ae4c24208fe18a4ec9fa99ea310bdcc6a4dc904eed63328736316e0cfd0a5a2"
        );
    }
}
