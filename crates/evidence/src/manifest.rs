//! What a bundle holds, as the signed manifest lists it.

use serde::{Deserialize, Serialize};
use vigil_audit::{AuditRecord, ChainHead};

/// The manifest's `format`: a change to the layout or the checks is a new version.
pub const FORMAT: &str = "vigil-evidence-v1";
pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";
pub const PUBLIC_KEY: &str = "public_key.txt";
pub const CASE: &str = "case.json";
pub const ALERTS: &str = "alerts.json";
pub const AUDIT: &str = "audit.jsonl";

/// `manifest.json`. The signature in `manifest.sig` is over its exact bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    /// The case reference.
    pub case: String,
    /// Login name of the user who exported.
    pub exported_by: String,
    pub exported_at_ms: i64,
    /// Why, as given with the export (also in its audit entry).
    pub reason: String,
    pub vigil_version: String,
    /// The sequence number of the export's own audit entry (in `audit.jsonl`).
    pub export_entry: u64,
    /// The audit chain's head when the bundle was made (also the last line of `audit.jsonl`).
    pub audit_head: ChainHead,
    /// Every file of the archive but the manifest, its signature and the public key, in path
    /// order.
    pub files: Vec<ManifestFile>,
    /// Files the bundle would hold but does not, and why (a sighting no recording covers).
    pub skipped: Vec<SkippedFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    pub path: String,
    pub bytes: u64,
    /// 64 lowercase hex digits.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
}

/// One line of `audit.jsonl`: the entries naming the case, as the audit log stores them, then
/// the chain's head — the same line shapes as `vigil audit export`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum AuditLine {
    // Boxed: an entry is far larger than a head.
    Entry(Box<AuditRecord>),
    Head(ChainHead),
}
