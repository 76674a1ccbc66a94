//! Evidence bundles from a real store (SQLite in a temporary folder): a case, an alert with two
//! reviews, the sightings behind it and a search hit, audit entries. The bundle verifies; each
//! alteration fails naming what was altered.

use ed25519_dalek::{Signer, SigningKey};
use std::io::Read;
use vigil_audit::{Actor, AuditAction, NewAuditEntry, Outcome, Target};
use vigil_base::{CameraId, SubjectId};
use vigil_evidence::{
    export_case, parse_public_key, verify_bundle, EvidenceKey, ExportRequest, KeyTrust, Manifest,
    Problem, VerifyReport,
};
use vigil_store::{
    FaceStore, NewAlert, NewCase, NewSighting, NewWatchEntry, ReviewDecision, SqliteStore,
    VideoStore,
};

const HOUR: i64 = 3_600_000;
const CROP: &[u8] = b"\xff\xd8\xff\xe0 a best-shot crop \xff\xd9";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn note(action: AuditAction, case: &str, who: &str) -> NewAuditEntry {
    NewAuditEntry {
        actor: Actor {
            user_id: None,
            user_name: who.into(),
        },
        action,
        target: Target {
            kind: "test".into(),
            id: String::new(),
        },
        case_ref: Some(case.into()),
        reason: "test".into(),
        request: serde_json::json!({}),
        probe_image: None,
        outcome: Outcome::success(""),
    }
}

fn sighting(camera: &str, at_ms: i64, crop: &[u8]) -> NewSighting {
    NewSighting {
        camera: CameraId::parse(camera).unwrap(),
        track: 1,
        started_at_ms: at_ms,
        ended_at_ms: at_ms + 2_000,
        best_at_ms: at_ms + 1_000,
        observations: 3,
        end_reason: "lost".into(),
        quality: 0.9,
        detector_score: 0.9,
        bbox: [0.0, 0.0, 10.0, 10.0],
        frame_width: 100,
        frame_height: 100,
        crop_jpeg: crop.to_vec(),
        embeddings: Vec::new(),
        trajectory: Vec::new(),
        candidates: Vec::new(),
    }
}

struct Fixture {
    _folder: tempfile::TempDir,
    data: std::path::PathBuf,
    store: SqliteStore,
    alerted: i64,
    searched: i64,
    unrelated: i64,
}

/// CASE-1 with an alert confirmed by bob and carol, on a sighting at the gate; a sighting a
/// search under the case returned; and a sighting and an audit entry of another case.
fn fixture() -> Fixture {
    let folder = tempfile::tempdir().unwrap();
    let data = folder.path().to_path_buf();
    let store = SqliteStore::open(data.join("vigil.db")).unwrap();
    let now = now_ms();
    for reference in ["CASE-1", "CASE-2"] {
        store
            .open_case(
                &NewCase {
                    reference: reference.into(),
                    purpose: "test".into(),
                    legal_basis: "warrant 1".into(),
                    owner: "alice".into(),
                    members: vec![],
                    expires_at_ms: now + 24 * HOUR,
                    evidence_retention_days: None,
                },
                &note(AuditAction::CaseOpen, reference, "alice"),
                now,
            )
            .unwrap();
    }
    let subject = store.create_subject("Jane Roe", None).unwrap();
    let list = store
        .create_watchlist(
            "wanted",
            None,
            1e-5,
            "alice",
            &note(AuditAction::WatchlistAdd, "CASE-1", "alice"),
            now,
        )
        .unwrap();
    let entry = store
        .add_watch_entry(
            &NewWatchEntry {
                watchlist: list.id,
                subject: subject.id,
                subject_name: "Jane Roe".into(),
                legal_basis: "warrant 1".into(),
                case_ref: "CASE-1".into(),
                responsible: "alice".into(),
                expires_at_ms: now + HOUR,
                created_by: "alice".into(),
            },
            &note(AuditAction::WatchlistAdd, "CASE-1", "alice"),
            now,
        )
        .unwrap();
    let alerted = store
        .insert_sighting(&sighting("gate", now - 60_000, CROP))
        .unwrap()
        .0;
    let searched = store
        .insert_sighting(&sighting(
            "door",
            now - 50_000,
            b"\xff\xd8 search hit \xff\xd9",
        ))
        .unwrap()
        .0;
    let unrelated = store
        .insert_sighting(&sighting(
            "door",
            now - 40_000,
            b"\xff\xd8 someone else \xff\xd9",
        ))
        .unwrap()
        .0;
    store
        .link_sightings_to_case("CASE-1", &[searched], now)
        .unwrap();
    let alert = store
        .insert_alert(
            &NewAlert {
                sighting: alerted,
                watchlist_entry: entry.id,
                subject: SubjectId(subject.id.0),
                best_template: 1,
                score: 0.7,
                false_match_rate: 1e-7,
                extrapolated: false,
                expected_false_candidates: 1e-6,
                gallery_templates: 1,
            },
            now,
        )
        .unwrap();
    for (reviewer, remark) in [("bob", "same scar on the chin"), ("carol", "agree")] {
        store
            .review_alert(
                alert.id,
                reviewer,
                ReviewDecision::Confirm,
                Some(remark.into()),
                &note(AuditAction::ReviewAlert, "CASE-1", reviewer),
                now,
            )
            .unwrap();
    }
    store
        .audit(&note(AuditAction::Search, "CASE-2", "dave"))
        .unwrap();
    Fixture {
        _folder: folder,
        data,
        store,
        alerted,
        searched,
        unrelated,
    }
}

fn export(fixture: &Fixture) -> (Vec<u8>, EvidenceKey) {
    let key = EvidenceKey::load_or_create(&fixture.data, None).unwrap();
    let mut bundle = Vec::new();
    export_case(
        &fixture.store,
        &key,
        &ExportRequest {
            case: "CASE-1".into(),
            actor: Actor {
                user_id: Some("7".into()),
                user_name: "alice".into(),
            },
            reason: "handover to the prosecutor, ref 2024/17".into(),
            now_ms: now_ms(),
        },
        None,
        &mut bundle,
    )
    .unwrap();
    (bundle, key)
}

/// The archive's files, in order.
fn files(bundle: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(bundle);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            (path, bytes)
        })
        .collect()
}

fn file(bundle: &[u8], path: &str) -> Vec<u8> {
    files(bundle)
        .into_iter()
        .find(|(p, _)| p == path)
        .unwrap_or_else(|| panic!("{path} not in the bundle"))
        .1
}

/// The bundle with `change` applied to its files.
fn altered(bundle: &[u8], change: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> Vec<u8> {
    let mut contents = files(bundle);
    change(&mut contents);
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in contents {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, path, bytes.as_slice())
            .unwrap();
    }
    builder.into_inner().unwrap()
}

fn replace(contents: &mut [(String, Vec<u8>)], path: &str, bytes: Vec<u8>) {
    let slot = contents.iter_mut().find(|(p, _)| p == path).unwrap();
    slot.1 = bytes;
}

fn verify(bundle: &[u8], key: &EvidenceKey) -> VerifyReport {
    verify_bundle(bundle, Some(&key.verifying_key())).unwrap()
}

fn messages(report: &VerifyReport) -> Vec<String> {
    report.problems.iter().map(ToString::to_string).collect()
}

#[test]
fn a_case_bundle_holds_its_evidence_and_verifies_against_the_pinned_key() {
    let fixture = fixture();
    let (bundle, key) = export(&fixture);
    let report = verify(&bundle, &key);
    assert!(report.is_intact(), "{:?}", messages(&report));
    assert_eq!(report.trust, KeyTrust::Pinned);

    let manifest: Manifest = serde_json::from_slice(&file(&bundle, "manifest.json")).unwrap();
    assert_eq!(manifest.case, "CASE-1");
    assert_eq!(manifest.exported_by, "alice");
    assert_eq!(manifest.reason, "handover to the prosecutor, ref 2024/17");
    let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    // The alert's sighting and the search hit, each record and crop; not the other case's.
    for id in [fixture.alerted, fixture.searched] {
        assert!(
            paths.contains(&format!("sightings/{id}.json").as_str()),
            "{paths:?}"
        );
        assert!(
            paths.contains(&format!("sightings/{id}.jpg").as_str()),
            "{paths:?}"
        );
        assert!(manifest
            .skipped
            .iter()
            .any(|s| s.path == format!("clips/{id}.mp4") && s.reason.contains("recordings")));
    }
    assert!(!paths
        .iter()
        .any(|p| p.contains(&format!("/{}.", fixture.unrelated))));
    assert_eq!(
        file(&bundle, &format!("sightings/{}.jpg", fixture.alerted)),
        CROP
    );
    assert_eq!(report.files_checked, manifest.files.len());

    // Every review with its reviewer, decision, note and time.
    let alerts: serde_json::Value = serde_json::from_slice(&file(&bundle, "alerts.json")).unwrap();
    let reviews = alerts[0]["reviews"].as_array().unwrap();
    assert_eq!(reviews.len(), 2);
    assert_eq!(reviews[0]["reviewer"], "bob");
    assert_eq!(reviews[0]["decision"], "confirm");
    assert_eq!(reviews[0]["note"], "same scar on the chin");
    assert!(reviews[1]["at_ms"].as_i64().unwrap() > 0);
    assert_eq!(alerts[0]["state"], "confirmed");

    // The audit extract: the case's entries only, the export's own entry with its reason, and
    // the chain head, which is the log's real head.
    let audit = String::from_utf8(file(&bundle, "audit.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let entries = &lines[..lines.len() - 1];
    assert!(entries.iter().all(|e| e["case_ref"] == "CASE-1"));
    assert!(entries.iter().any(|e| e["action"] == "review_alert"));
    let export = entries.last().unwrap();
    assert_eq!(export["action"], "export");
    assert_eq!(export["reason"], "handover to the prosecutor, ref 2024/17");
    let head = fixture
        .store
        .with_read_connection(vigil_audit::head)
        .unwrap();
    assert_eq!(lines.last().unwrap()["type"], "head");
    assert_eq!(manifest.audit_head, head);
    assert_eq!(report.audit_entries, entries.len());
    assert!(
        !audit.contains("dave"),
        "another case's entry leaked into the extract"
    );
}

#[test]
fn one_flipped_byte_of_a_crop_fails_naming_the_crop() {
    let fixture = fixture();
    let (bundle, key) = export(&fixture);
    let crop = format!("sightings/{}.jpg", fixture.alerted);
    let tampered = altered(&bundle, |files| {
        let mut bytes = file(&bundle, &crop);
        bytes[5] ^= 0x01;
        replace(files, &crop, bytes);
    });
    let report = verify(&tampered, &key);
    assert_eq!(report.problems, [Problem::HashDiffers(crop.clone())]);
    assert!(messages(&report)[0].contains(&crop));
}

#[test]
fn a_review_removed_from_alerts_json_fails_naming_alerts_json() {
    let fixture = fixture();
    let (bundle, key) = export(&fixture);
    let tampered = altered(&bundle, |files| {
        let mut alerts: serde_json::Value =
            serde_json::from_slice(&file(&bundle, "alerts.json")).unwrap();
        alerts[0]["reviews"].as_array_mut().unwrap().remove(1);
        replace(
            files,
            "alerts.json",
            serde_json::to_vec_pretty(&alerts).unwrap(),
        );
    });
    let report = verify(&tampered, &key);
    assert!(!report.is_intact());
    assert!(
        matches!(&report.problems[..], [Problem::SizeDiffers { path, .. }] if path == "alerts.json"),
        "{:?}",
        messages(&report)
    );
}

#[test]
fn a_replaced_public_key_fails_and_a_re_signed_bundle_fails_only_against_the_pinned_key() {
    let fixture = fixture();
    let (bundle, key) = export(&fixture);
    let forger = SigningKey::from_bytes(&[7u8; 32]);
    let forger_text = vigil_evidence::public_key_text(&forger.verifying_key());

    // The key swapped, the signature left: fails even without a pinned key.
    let swapped = altered(&bundle, |files| {
        replace(
            files,
            "public_key.txt",
            format!("{forger_text}\n").into_bytes(),
        );
    });
    let report = verify_bundle(swapped.as_slice(), None).unwrap();
    assert_eq!(report.trust, KeyTrust::BundleKeyOnly);
    assert!(
        matches!(&report.problems[..], [Problem::BadSignature { key }] if *key == forger_text),
        "{:?}",
        messages(&report)
    );

    // A crop swapped, the manifest re-hashed and re-signed with the forger's key: consistent on
    // its own, so only the pinned key tells.
    let crop = format!("sightings/{}.jpg", fixture.alerted);
    let forged = altered(&bundle, |files| {
        let other = b"\xff\xd8 a different face \xff\xd9".to_vec();
        let mut manifest: Manifest =
            serde_json::from_slice(&file(&bundle, "manifest.json")).unwrap();
        let listed = manifest.files.iter_mut().find(|f| f.path == crop).unwrap();
        listed.bytes = other.len() as u64;
        listed.sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&other));
        let manifest = serde_json::to_vec_pretty(&manifest).unwrap();
        let signature = hex::encode(forger.sign(&manifest).to_bytes());
        replace(files, &crop, other);
        replace(files, "manifest.json", manifest);
        replace(files, "manifest.sig", signature.into_bytes());
        replace(files, "public_key.txt", forger_text.clone().into_bytes());
    });
    let unpinned = verify_bundle(forged.as_slice(), None).unwrap();
    assert!(unpinned.is_intact(), "{:?}", messages(&unpinned));
    assert_eq!(unpinned.trust, KeyTrust::BundleKeyOnly);
    let pinned = verify(&forged, &key);
    let problems = messages(&pinned);
    assert!(
        problems.iter().any(|p| p.contains("not by the pinned key")),
        "{problems:?}"
    );
    assert!(
        pinned
            .problems
            .iter()
            .any(|p| matches!(p, Problem::BadSignature { .. })),
        "{problems:?}"
    );
}

#[test]
fn a_reordered_manifest_an_extra_file_and_an_altered_audit_entry_are_each_named() {
    let fixture = fixture();
    let (bundle, key) = export(&fixture);

    let reordered = altered(&bundle, |files| {
        let mut manifest: Manifest =
            serde_json::from_slice(&file(&bundle, "manifest.json")).unwrap();
        manifest.files.swap(0, 1);
        replace(
            files,
            "manifest.json",
            serde_json::to_vec_pretty(&manifest).unwrap(),
        );
    });
    let report = verify(&reordered, &key);
    assert!(report
        .problems
        .iter()
        .any(|p| matches!(p, Problem::BadSignature { .. })));
    assert!(report
        .problems
        .iter()
        .any(|p| matches!(p, Problem::ManifestOrder { .. })));

    let extra = altered(&bundle, |files| {
        files.push(("sightings/999.jpg".into(), b"planted".to_vec()));
        files.retain(|(path, _)| path != "case.json");
    });
    let problems = messages(&verify(&extra, &key));
    assert!(
        problems.contains(&"sightings/999.jpg is in the archive but not in the manifest".into())
    );
    assert!(problems
        .contains(&"case.json is listed in the manifest but missing from the archive".into()));

    // An entry's reason rewritten: the file's hash fails, and the entry no longer hashes to its
    // entry_hash (vigil_audit's hashing), naming its line and sequence.
    let audit = String::from_utf8(file(&bundle, "audit.jsonl")).unwrap();
    let rewritten = audit.replacen("\"reason\":\"test\"", "\"reason\":\"routine patrol\"", 1);
    assert_ne!(audit, rewritten);
    let tampered = altered(&bundle, |files| {
        replace(files, "audit.jsonl", rewritten.into_bytes());
    });
    let report = verify(&tampered, &key);
    assert!(report
        .problems
        .iter()
        .any(|p| matches!(p, Problem::AuditEntryAltered { line: 1, .. })));
}

#[test]
fn the_signing_key_is_made_once_private_to_its_owner_and_sealed_with_encryption_at_rest() {
    use std::os::unix::fs::PermissionsExt;
    let folder = tempfile::tempdir().unwrap();
    let first = EvidenceKey::load_or_create(folder.path(), None).unwrap();
    let again = EvidenceKey::load_or_create(folder.path(), None).unwrap();
    assert_eq!(first.public_key_text(), again.public_key_text());
    let metadata = std::fs::metadata(first.path()).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        parse_public_key(&first.public_key_text()).unwrap(),
        first.verifying_key()
    );

    // With keys for encryption at rest the plaintext seed is sealed in place, and the key no
    // longer opens without them.
    let sealer =
        vigil_seal::Sealer::from_keyring_text(&vigil_seal::Sealer::generate_key().unwrap(), "test")
            .unwrap();
    let plain = std::fs::read(first.path()).unwrap();
    let sealed = EvidenceKey::load_or_create(folder.path(), Some(&sealer)).unwrap();
    assert_eq!(sealed.public_key_text(), first.public_key_text());
    let stored = std::fs::read(first.path()).unwrap();
    assert!(vigil_seal::is_sealed(&stored));
    assert!(!stored.windows(plain.len()).any(|w| w == plain.as_slice()));
    let refused = EvidenceKey::load_or_create(folder.path(), None).unwrap_err();
    assert!(refused.to_string().contains("sealed"), "{refused}");
}
