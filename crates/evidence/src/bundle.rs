//! Building a case's bundle: read everything the case holds, write it into a tar archive while
//! hashing it, then the signed manifest.

use crate::key::EvidenceKey;
use crate::manifest::{
    AuditLine, Manifest, ManifestFile, SkippedFile, ALERTS, AUDIT, CASE, FORMAT, MANIFEST,
    PUBLIC_KEY, SIGNATURE,
};
use crate::EvidenceError;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;
use vigil_audit::{Actor, AuditAction, AuditFilter, AuditRecord, ChainHead, NewAuditEntry};
use vigil_store::{SightingId, SightingQuery, SightingRecord, SqliteStore, VideoStore};

/// A clip runs from this long before the sighting's start to this long after its end (the
/// default of `GET /v1/sightings/{id}/clip.mp4`).
pub const CLIP_MARGIN_MS: i64 = 5_000;

/// Who exports which case, and why.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub case: String,
    pub actor: Actor,
    pub reason: String,
    pub now_ms: i64,
}

/// Where clips are cut from: the recordings and the ffmpeg that cuts them.
#[derive(Debug, Clone)]
pub struct ClipSource {
    pub ffmpeg: PathBuf,
    pub recordings_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub manifest: Manifest,
    /// `ed25519:…`, the key that signed it.
    pub public_key: String,
}

/// Writes `request.case`'s evidence bundle to `out` as a tar archive, signed with `key`.
///
/// The export is audited first (action `export`, the case, the reason), so the bundle's audit
/// extract holds its own export entry and the head after it. An export that then fails leaves
/// that entry: the attempt is on record. Without `clips`, or where no recording covers a
/// sighting, the clip is listed under `skipped` with the reason.
pub fn export_case(
    store: &SqliteStore,
    key: &EvidenceKey,
    request: &ExportRequest,
    clips: Option<&ClipSource>,
    out: impl Write,
) -> Result<ExportSummary, EvidenceError> {
    let case = store
        .case(&request.case)?
        .ok_or_else(|| EvidenceError::UnknownCase(request.case.clone()))?;
    let export_entry = store.audit(&NewAuditEntry {
        actor: request.actor.clone(),
        action: AuditAction::Export,
        target: vigil_audit::Target {
            kind: "case".into(),
            id: case.reference.clone(),
        },
        case_ref: Some(case.reference.clone()),
        reason: request.reason.clone(),
        request: serde_json::json!({ "bundle": FORMAT, "public_key": key.public_key_text() }),
        probe_image: None,
        outcome: vigil_audit::Outcome::success(""),
    })?;
    let mut alerts = Vec::new();
    for id in store.case_alert_ids(&case.reference)? {
        // An alert deleted with its sighting by retention between the two reads is simply gone.
        if let Some(alert) = store.alert(id)? {
            alerts.push(alert);
        }
    }
    let sightings = case_sightings(store, &case.reference)?;
    let (audit_entries, audit_head) = audit_extract(store, &case.reference)?;

    let mut archive = Archive::new(out, request.now_ms);
    archive.add(CASE, &json(&case, CASE)?)?;
    archive.add(ALERTS, &json(&alerts, ALERTS)?)?;
    let workspace = tempfile::tempdir().map_err(EvidenceError::io("a folder for clips"))?;
    for sighting in &sightings {
        let id = sighting.id;
        archive.add(
            &format!("sightings/{id}.json"),
            &json(sighting, "a sighting")?,
        )?;
        let crop_path = format!("sightings/{id}.jpg");
        match store.sighting_crop(id)? {
            Some(crop) => archive.add(&crop_path, &crop)?,
            None => archive.skip(&crop_path, "no crop is stored for this sighting"),
        }
        let clip_path = format!("clips/{id}.mp4");
        match cut_clip(
            store,
            clips,
            sighting,
            &workspace.path().join(format!("{id}.mp4")),
        ) {
            Ok(clip) => archive.add(&clip_path, &clip)?,
            Err(reason) => archive.skip(&clip_path, &reason),
        }
    }
    let mut audit = Vec::new();
    for entry in audit_entries {
        audit_line(&mut audit, &AuditLine::Entry(Box::new(entry)))?;
    }
    audit_line(&mut audit, &AuditLine::Head(audit_head))?;
    archive.add(AUDIT, &audit)?;

    let Archive {
        mut builder,
        mut files,
        skipped,
        mtime_secs,
    } = archive;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = Manifest {
        format: FORMAT.into(),
        case: case.reference.clone(),
        exported_by: request.actor.user_name.clone(),
        exported_at_ms: request.now_ms,
        reason: request.reason.clone(),
        vigil_version: env!("CARGO_PKG_VERSION").into(),
        export_entry: export_entry.sequence,
        audit_head,
        files,
        skipped,
    };
    let manifest_bytes = json(&manifest, MANIFEST)?;
    let signature = key.sign(&manifest_bytes);
    append(&mut builder, mtime_secs, MANIFEST, &manifest_bytes)?;
    append(
        &mut builder,
        mtime_secs,
        SIGNATURE,
        format!("{}\n", hex::encode(signature.to_bytes())).as_bytes(),
    )?;
    let public_key = key.public_key_text();
    append(
        &mut builder,
        mtime_secs,
        PUBLIC_KEY,
        format!("{public_key}\n").as_bytes(),
    )?;
    builder
        .into_inner()
        .and_then(|mut out| out.flush())
        .map_err(EvidenceError::io("finishing the archive"))?;
    Ok(ExportSummary {
        manifest,
        public_key,
    })
}

/// Every sighting the case holds — behind its alerts, or returned by a search under it (design
/// 012's evidence) — oldest first, all pages.
fn case_sightings(store: &SqliteStore, case: &str) -> Result<Vec<SightingRecord>, EvidenceError> {
    const PAGE: u64 = 1000;
    let mut sightings = Vec::new();
    let mut before_id: Option<SightingId> = None;
    loop {
        let page = store.list_sightings(&SightingQuery {
            case: Some(case.to_string()),
            before_id,
            limit: PAGE,
            ..SightingQuery::default()
        })?;
        let full = page.len() as u64 == PAGE;
        before_id = page.last().map(|s| s.id);
        sightings.extend(page);
        if !full {
            break;
        }
    }
    sightings.sort_by_key(|s| s.id);
    Ok(sightings)
}

/// Every audit entry naming the case, and the chain's head, from one read snapshot.
fn audit_extract(
    store: &SqliteStore,
    case: &str,
) -> Result<(Vec<AuditRecord>, ChainHead), EvidenceError> {
    store.with_read_connection(|connection| {
        // One read transaction across the queries: entries and head of one moment, even while
        // the server appends.
        let snapshot = rusqlite::Transaction::new_unchecked(
            connection,
            rusqlite::TransactionBehavior::Deferred,
        )
        .map_err(vigil_store::StoreError::from)?;
        let mut entries = Vec::new();
        let mut after_sequence = None;
        loop {
            let page = vigil_audit::entries(
                connection,
                &AuditFilter {
                    case_ref: Some(case.to_string()),
                    after_sequence,
                    limit: Some(vigil_audit::MAX_LIMIT),
                    ..AuditFilter::default()
                },
            )?;
            let full = page.len() == vigil_audit::MAX_LIMIT;
            after_sequence = page.last().map(|e| e.sequence);
            entries.extend(page);
            if !full {
                break;
            }
        }
        let head = vigil_audit::head(connection)?;
        snapshot.commit().map_err(vigil_store::StoreError::from)?;
        Ok((entries, head))
    })
}

/// The clip around `sighting`, or why there is none.
fn cut_clip(
    store: &SqliteStore,
    clips: Option<&ClipSource>,
    sighting: &SightingRecord,
    out: &std::path::Path,
) -> Result<Vec<u8>, String> {
    let Some(clips) = clips else {
        return Err("this export had no access to recordings".into());
    };
    let from = sighting.started_at_ms - CLIP_MARGIN_MS;
    let to = sighting.ended_at_ms + CLIP_MARGIN_MS;
    let segments = store
        .segments_between(&sighting.camera, from, to)
        .map_err(|error| format!("reading the recordings' index failed: {error}"))?;
    if segments.is_empty() {
        return Err(format!(
            "no recording of camera {} covers {from}..{to} ms",
            sighting.camera.as_str()
        ));
    }
    vigil_ingest::export_clip(
        &clips.ffmpeg,
        &clips.recordings_dir,
        &segments,
        from,
        to,
        out,
    )
    .map_err(|error| format!("cutting the clip failed: {error}"))?;
    std::fs::read(out).map_err(|error| format!("reading the cut clip failed: {error}"))
}

fn json<T: serde::Serialize>(value: &T, what: &str) -> Result<Vec<u8>, EvidenceError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| EvidenceError::Json {
        what: what.into(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn audit_line(out: &mut Vec<u8>, line: &AuditLine) -> Result<(), EvidenceError> {
    serde_json::to_writer(&mut *out, line).map_err(|source| EvidenceError::Json {
        what: AUDIT.into(),
        source,
    })?;
    out.push(b'\n');
    Ok(())
}

/// The tar being written, with what the manifest will list.
struct Archive<W: Write> {
    builder: tar::Builder<W>,
    files: Vec<ManifestFile>,
    skipped: Vec<SkippedFile>,
    mtime_secs: u64,
}

impl<W: Write> Archive<W> {
    fn new(out: W, now_ms: i64) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Deterministic);
        Self {
            builder,
            files: Vec::new(),
            skipped: Vec::new(),
            mtime_secs: u64::try_from(now_ms / 1000).unwrap_or(0),
        }
    }

    fn add(&mut self, path: &str, bytes: &[u8]) -> Result<(), EvidenceError> {
        append(&mut self.builder, self.mtime_secs, path, bytes)?;
        self.files.push(ManifestFile {
            path: path.to_string(),
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        });
        Ok(())
    }

    fn skip(&mut self, path: &str, reason: &str) {
        self.skipped.push(SkippedFile {
            path: path.to_string(),
            reason: reason.to_string(),
        });
    }
}

fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    mtime_secs: u64,
    path: &str,
    bytes: &[u8],
) -> Result<(), EvidenceError> {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(mtime_secs);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, path, bytes)
        .map_err(EvidenceError::io(format!(
            "writing {path} into the archive"
        )))
}
