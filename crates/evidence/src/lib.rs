//! Case evidence bundles (issue 14 §5): one archive holding a case, its alerts with every
//! review, the sightings behind them (record, best-shot crop, clip where recorded) and the audit
//! entries naming the case, with a manifest of SHA-256 hashes signed by the server's Ed25519
//! key; and the offline check of such a bundle. What a bundle proves, and what it does not:
//! docs/design/017-evidence-export.md.

mod bundle;
mod error;
mod key;
mod manifest;
mod verify;

pub use bundle::{export_case, ClipSource, ExportRequest, ExportSummary, CLIP_MARGIN_MS};
pub use error::EvidenceError;
pub use key::{parse_public_key, public_key_text, EvidenceKey, KEY_FILE};
pub use manifest::{Manifest, ManifestFile, SkippedFile, FORMAT};
pub use verify::{verify_bundle, KeyTrust, Problem, VerifyReport};

/// The bundle's content type (a POSIX tar archive).
pub const CONTENT_TYPE: &str = "application/x-tar";
