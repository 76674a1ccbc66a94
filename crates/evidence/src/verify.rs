//! Checking a bundle offline: every file against the signed manifest, the signature, and the
//! audit extract's entry hashes (with `vigil_audit`'s hashing). Needs only the archive.

use crate::key::{parse_public_key, public_key_text};
use crate::manifest::{
    AuditLine, Manifest, ALERTS, AUDIT, CASE, FORMAT, MANIFEST, PUBLIC_KEY, SIGNATURE,
};
use crate::EvidenceError;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

/// The small files read whole (manifest, signature, key, audit extract) are refused past this.
const MAX_HELD_BYTES: u64 = 256 * 1024 * 1024;

/// Whose key the signature was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTrust {
    /// A key the recipient pinned (`--public-key`): the bundle comes from that server.
    Pinned,
    /// Only the key inside the bundle: proves the files are as signed, not who signed them —
    /// anyone can make a key and sign a forged bundle with it.
    BundleKeyOnly,
}

/// One way a bundle fails, naming what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A required file of the bundle itself is absent.
    Missing(&'static str),
    Unreadable {
        path: String,
        detail: String,
    },
    /// The signature does not verify over `manifest.json` under the key checked.
    BadSignature {
        key: String,
    },
    /// The bundle's key is not the pinned one.
    UnpinnedKey {
        bundle: String,
        pinned: String,
    },
    ListedButAbsent(String),
    NotListed(String),
    Duplicate(String),
    NotARegularFile(String),
    SizeDiffers {
        path: String,
        listed: u64,
        actual: u64,
    },
    HashDiffers(String),
    ManifestOrder {
        earlier: String,
        later: String,
    },
    ManifestLacks(&'static str),
    /// An entry of `audit.jsonl` whose fields do not hash to its `entry_hash`.
    AuditEntryAltered {
        line: usize,
        sequence: u64,
    },
    AuditExtract(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing(path) => write!(f, "{path} is missing from the archive"),
            Problem::Unreadable { path, detail } => write!(f, "{path} is unreadable: {detail}"),
            Problem::BadSignature { key } => write!(
                f,
                "{SIGNATURE} is not a valid signature of {MANIFEST} by {key}: the manifest, its \
                 signature or the public key was altered"
            ),
            Problem::UnpinnedKey { bundle, pinned } => write!(
                f,
                "the bundle is signed by {bundle}, not by the pinned key {pinned}: it did not come \
                 from that server, or its key was replaced"
            ),
            Problem::ListedButAbsent(path) => {
                write!(
                    f,
                    "{path} is listed in the manifest but missing from the archive"
                )
            }
            Problem::NotListed(path) => {
                write!(f, "{path} is in the archive but not in the manifest")
            }
            Problem::Duplicate(path) => write!(f, "{path} appears more than once"),
            Problem::NotARegularFile(path) => write!(f, "{path} is not a regular file"),
            Problem::SizeDiffers {
                path,
                listed,
                actual,
            } => write!(
                f,
                "{path} is {actual} bytes, the manifest says {listed}: it was altered"
            ),
            Problem::HashDiffers(path) => write!(
                f,
                "{path}: its SHA-256 differs from the manifest's: it was altered"
            ),
            Problem::ManifestOrder { earlier, later } => write!(
                f,
                "the manifest lists {later} after {earlier}: not in path order, it was rearranged"
            ),
            Problem::ManifestLacks(path) => write!(f, "the manifest does not list {path}"),
            Problem::AuditEntryAltered { line, sequence } => write!(
                f,
                "{AUDIT} line {line}: audit entry {sequence}'s fields do not hash to its \
                 entry_hash: the entry was altered"
            ),
            Problem::AuditExtract(detail) => write!(f, "{AUDIT}: {detail}"),
        }
    }
}

/// What checking a bundle found. Intact only with no problems; even then, with
/// [`KeyTrust::BundleKeyOnly`] the origin is unproven.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub manifest: Option<Manifest>,
    /// The key the bundle carries (`public_key.txt`), when readable.
    pub bundle_key: Option<String>,
    pub trust: KeyTrust,
    pub files_checked: usize,
    pub audit_entries: usize,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A file of the archive as read: its size and hash, and the bytes of the few read whole.
struct ReadFile {
    bytes: u64,
    sha256: String,
    held: Option<Vec<u8>>,
}

/// Checks the bundle read from `archive`. `pinned`: the server's public key as the recipient
/// knows it; without it the signature is checked against the bundle's own key only
/// ([`KeyTrust::BundleKeyOnly`]). An archive that cannot be read at all is an error; everything
/// else is a problem in the report.
pub fn verify_bundle(
    archive: impl Read,
    pinned: Option<&VerifyingKey>,
) -> Result<VerifyReport, EvidenceError> {
    let mut report = VerifyReport {
        manifest: None,
        bundle_key: None,
        trust: if pinned.is_some() {
            KeyTrust::Pinned
        } else {
            KeyTrust::BundleKeyOnly
        },
        files_checked: 0,
        audit_entries: 0,
        problems: Vec::new(),
    };
    let files = read_archive(archive, &mut report.problems)?;
    let held = |path: &str| files.get(path).and_then(|file| file.held.as_deref());

    let Some(manifest_bytes) = held(MANIFEST) else {
        report.problems.push(Problem::Missing(MANIFEST));
        return Ok(report);
    };
    check_signature(
        manifest_bytes,
        held(SIGNATURE),
        held(PUBLIC_KEY),
        pinned,
        &mut report,
    );
    let manifest: Manifest = match serde_json::from_slice(manifest_bytes) {
        Ok(manifest) => manifest,
        Err(error) => {
            report.problems.push(Problem::Unreadable {
                path: MANIFEST.into(),
                detail: error.to_string(),
            });
            return Ok(report);
        }
    };
    if manifest.format != FORMAT {
        report.problems.push(Problem::Unreadable {
            path: MANIFEST.into(),
            detail: format!("format {:?}, this build reads {FORMAT}", manifest.format),
        });
    }
    check_files(&manifest, &files, &mut report);
    if let Some(audit) = held(AUDIT) {
        check_audit(audit, &manifest, &mut report);
    }
    report.manifest = Some(manifest);
    Ok(report)
}

fn read_archive(
    archive: impl Read,
    problems: &mut Vec<Problem>,
) -> Result<BTreeMap<String, ReadFile>, EvidenceError> {
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(archive);
    let entries = archive
        .entries()
        .map_err(EvidenceError::io("reading the archive"))?;
    for entry in entries {
        let mut entry = entry.map_err(EvidenceError::io("reading the archive"))?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if entry.header().entry_type() != tar::EntryType::Regular {
            problems.push(Problem::NotARegularFile(path));
            continue;
        }
        let keep = matches!(path.as_str(), MANIFEST | SIGNATURE | PUBLIC_KEY | AUDIT);
        let mut hasher = Sha256::new();
        let mut held = keep.then(Vec::new);
        let mut bytes = 0u64;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = entry
                .read(&mut buffer)
                .map_err(EvidenceError::io(format!("reading {path} in the archive")))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            bytes += read as u64;
            if let Some(kept) = held.as_mut() {
                if bytes > MAX_HELD_BYTES {
                    problems.push(Problem::Unreadable {
                        path: path.clone(),
                        detail: format!("larger than {MAX_HELD_BYTES} bytes"),
                    });
                    held = None;
                } else {
                    kept.extend_from_slice(&buffer[..read]);
                }
            }
        }
        let file = ReadFile {
            bytes,
            sha256: hex::encode(hasher.finalize()),
            held,
        };
        if files.insert(path.clone(), file).is_some() {
            problems.push(Problem::Duplicate(path));
        }
    }
    Ok(files)
}

fn check_signature(
    manifest: &[u8],
    signature: Option<&[u8]>,
    bundle_key: Option<&[u8]>,
    pinned: Option<&VerifyingKey>,
    report: &mut VerifyReport,
) {
    let bundle_key = match bundle_key {
        None => {
            report.problems.push(Problem::Missing(PUBLIC_KEY));
            None
        }
        Some(text) => match parse_public_key(&String::from_utf8_lossy(text)) {
            Ok(key) => {
                report.bundle_key = Some(public_key_text(&key));
                Some(key)
            }
            Err(error) => {
                report.problems.push(Problem::Unreadable {
                    path: PUBLIC_KEY.into(),
                    detail: error.to_string(),
                });
                None
            }
        },
    };
    if let (Some(pinned), Some(bundle)) = (pinned, &bundle_key) {
        if pinned != bundle {
            report.problems.push(Problem::UnpinnedKey {
                bundle: public_key_text(bundle),
                pinned: public_key_text(pinned),
            });
        }
    }
    let Some(signature) = signature else {
        report.problems.push(Problem::Missing(SIGNATURE));
        return;
    };
    let signature = match parse_signature(signature) {
        Ok(signature) => signature,
        Err(detail) => {
            report.problems.push(Problem::Unreadable {
                path: SIGNATURE.into(),
                detail,
            });
            return;
        }
    };
    // A pinned key is what counts; the bundle's own key only when none is pinned.
    let Some(key) = pinned.or(bundle_key.as_ref()) else {
        return;
    };
    if key.verify_strict(manifest, &signature).is_err() {
        report.problems.push(Problem::BadSignature {
            key: public_key_text(key),
        });
    }
}

fn parse_signature(text: &[u8]) -> Result<Signature, String> {
    let text = String::from_utf8_lossy(text);
    let mut bytes = [0u8; 64];
    hex::decode_to_slice(text.trim(), &mut bytes)
        .map_err(|_| "expected 128 hex digits (an Ed25519 signature)".to_string())?;
    Ok(Signature::from_bytes(&bytes))
}

fn check_files(manifest: &Manifest, files: &BTreeMap<String, ReadFile>, report: &mut VerifyReport) {
    for pair in manifest.files.windows(2) {
        if pair[0].path >= pair[1].path {
            report.problems.push(Problem::ManifestOrder {
                earlier: pair[0].path.clone(),
                later: pair[1].path.clone(),
            });
        }
    }
    for required in [CASE, ALERTS, AUDIT] {
        if !manifest.files.iter().any(|file| file.path == required) {
            report.problems.push(Problem::ManifestLacks(required));
        }
    }
    let mut listed = std::collections::BTreeSet::new();
    for file in &manifest.files {
        listed.insert(file.path.as_str());
        let Some(found) = files.get(&file.path) else {
            report
                .problems
                .push(Problem::ListedButAbsent(file.path.clone()));
            continue;
        };
        report.files_checked += 1;
        if found.bytes != file.bytes {
            report.problems.push(Problem::SizeDiffers {
                path: file.path.clone(),
                listed: file.bytes,
                actual: found.bytes,
            });
        } else if found.sha256 != file.sha256 {
            report
                .problems
                .push(Problem::HashDiffers(file.path.clone()));
        }
    }
    for path in files.keys() {
        let own = matches!(path.as_str(), MANIFEST | SIGNATURE | PUBLIC_KEY);
        if !own && !listed.contains(path.as_str()) {
            report.problems.push(Problem::NotListed(path.clone()));
        }
    }
}

/// Each entry hashes to its `entry_hash` (`AuditRecord::computed_hash`, the chain's own
/// hashing), names the case, comes in sequence order, and the head line agrees with the
/// manifest. Links between entries are not checked: the extract holds only the case's entries,
/// not the chain between them (design 017).
fn check_audit(audit: &[u8], manifest: &Manifest, report: &mut VerifyReport) {
    let problem = |detail: String| Problem::AuditExtract(detail);
    let mut head = None;
    let mut last_sequence = 0u64;
    let mut export_entry_seen = false;
    for (index, line) in audit.split(|byte| *byte == b'\n').enumerate() {
        let number = index + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if head.is_some() {
            report
                .problems
                .push(problem(format!("line {number} follows the head line")));
            continue;
        }
        match serde_json::from_slice::<AuditLine>(line) {
            Ok(AuditLine::Entry(entry)) => {
                report.audit_entries += 1;
                if entry.computed_hash() != entry.entry_hash {
                    report.problems.push(Problem::AuditEntryAltered {
                        line: number,
                        sequence: entry.sequence,
                    });
                }
                if entry.case_ref.as_deref() != Some(manifest.case.as_str()) {
                    report.problems.push(problem(format!(
                        "line {number}: entry {} names case {:?}, not {}",
                        entry.sequence, entry.case_ref, manifest.case
                    )));
                }
                if entry.sequence <= last_sequence {
                    report.problems.push(problem(format!(
                        "line {number}: entry {} comes after entry {last_sequence}",
                        entry.sequence
                    )));
                }
                last_sequence = entry.sequence;
                export_entry_seen |= entry.sequence == manifest.export_entry
                    && entry.action == vigil_audit::AuditAction::Export;
            }
            Ok(AuditLine::Head(line_head)) => head = Some(line_head),
            Err(error) => report.problems.push(problem(format!(
                "line {number} is not an audit entry: {error}"
            ))),
        }
    }
    match head {
        None => report.problems.push(problem(
            "the head line is missing: the extract was cut".into(),
        )),
        Some(head) if head != manifest.audit_head => report.problems.push(problem(format!(
            "its head (entry {}) differs from the manifest's (entry {})",
            head.sequence, manifest.audit_head.sequence
        ))),
        Some(head) if head.sequence < last_sequence => report.problems.push(problem(format!(
            "its head (entry {}) is before its last entry ({last_sequence})",
            head.sequence
        ))),
        Some(_) => {}
    }
    if !export_entry_seen {
        report.problems.push(problem(format!(
            "the export's own entry {} is missing",
            manifest.export_entry
        )));
    }
}
