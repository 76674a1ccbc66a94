//! `vigil cases export` and `vigil verify-export` driven as a user would: the bundle of a case
//! with a reviewed alert verifies offline against the pinned key, with no data folder; an altered
//! bundle fails naming the file; an export needs a reason and a place in the case, and is
//! audited.

use std::path::Path;
use std::process::{Command, Output};

fn vigil(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
    command
        .env("VIGIL_DATA_DIR", data)
        .env_remove("VIGIL_CONFIG")
        .env_remove("VIGIL_SEAL_KEYS")
        .env_remove("VIGIL_USER")
        .env_remove("VIGIL_CASE")
        .env_remove("VIGIL_REASON");
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    output
}

fn note(action: vigil_audit::AuditAction, who: &str) -> vigil_audit::NewAuditEntry {
    vigil_audit::NewAuditEntry {
        actor: vigil_audit::Actor {
            user_id: None,
            user_name: who.into(),
        },
        action,
        target: vigil_audit::Target {
            kind: "test".into(),
            id: "test".into(),
        },
        case_ref: Some("CASE-E".into()),
        reason: "tests".into(),
        request: serde_json::json!({}),
        probe_image: None,
        outcome: vigil_audit::Outcome::success(""),
    }
}

/// An alert under CASE-E on a sighting with a crop, confirmed by two reviewers, as the camera
/// pipeline and `POST /v1/alerts/{id}/review` store them.
fn seed_alert(data: &Path) -> i64 {
    use vigil_store::{FaceStore, VideoStore};
    let store = vigil_store::SqliteStore::open(data.join("vigil.db")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let subject = store.create_subject("Jane Roe", None).unwrap();
    let list = store
        .create_watchlist(
            "wanted",
            None,
            1e-5,
            "ivy",
            &note(vigil_audit::AuditAction::WatchlistAdd, "ivy"),
            now,
        )
        .unwrap();
    let entry = store
        .add_watch_entry(
            &vigil_store::NewWatchEntry {
                watchlist: list.id,
                subject: subject.id,
                subject_name: "Jane Roe".into(),
                legal_basis: "warrant".into(),
                case_ref: "CASE-E".into(),
                responsible: "ivy".into(),
                expires_at_ms: now + 3_600_000,
                created_by: "ivy".into(),
            },
            &note(vigil_audit::AuditAction::WatchlistAdd, "ivy"),
            now,
        )
        .unwrap();
    let sighting = store
        .insert_sighting(&vigil_store::NewSighting {
            camera: vigil_base::CameraId::parse("gate").unwrap(),
            track: 1,
            started_at_ms: now - 10_000,
            ended_at_ms: now - 8_000,
            best_at_ms: now - 9_000,
            observations: 3,
            end_reason: "lost".into(),
            quality: 0.9,
            detector_score: 0.9,
            bbox: [0.0, 0.0, 10.0, 10.0],
            frame_width: 100,
            frame_height: 100,
            crop_jpeg: b"\xff\xd8 the best shot \xff\xd9".to_vec(),
            embeddings: Vec::new(),
            trajectory: Vec::new(),
            candidates: Vec::new(),
        })
        .unwrap();
    let alert = store
        .insert_alert(
            &vigil_store::NewAlert {
                sighting: sighting.0,
                watchlist_entry: entry.id,
                subject: subject.id,
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
    for reviewer in ["rita", "ravi"] {
        store
            .review_alert(
                alert.id,
                reviewer,
                vigil_store::ReviewDecision::Confirm,
                Some(format!("{reviewer}: same person")),
                &note(vigil_audit::AuditAction::ReviewAlert, reviewer),
                now,
            )
            .unwrap();
    }
    sighting.0
}

#[test]
fn a_case_exported_on_the_command_line_verifies_offline_and_an_altered_copy_fails() {
    let folder = tempfile::tempdir().unwrap();
    let data = folder.path().join("data");
    for (user, role) in [("ivy", "investigator"), ("olaf", "investigator")] {
        run(vigil(&data).args(["users", "add", user, "--role", role, "--as", "root"]));
    }
    run(vigil(&data).args([
        "cases",
        "open",
        "CASE-E",
        "--purpose",
        "tests",
        "--legal-basis",
        "warrant",
        "--expires-days",
        "1",
        "--as",
        "ivy",
    ]));
    let sighting = seed_alert(&data);
    let bundle = folder.path().join("case-e.tar");

    // No reason, or not in the case: refused, and the refusal of the outsider is logged.
    let unreasoned = vigil(&data)
        .args(["cases", "export", "CASE-E", "--as", "ivy", "--out"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(!unreasoned.status.success());
    assert!(
        text(&unreasoned).contains("--reason"),
        "{}",
        text(&unreasoned)
    );
    let outsider = vigil(&data)
        .args([
            "cases", "export", "CASE-E", "--as", "olaf", "--reason", "curious", "--out",
        ])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(!outsider.status.success());
    assert!(
        text(&outsider).contains("neither owner nor member"),
        "{}",
        text(&outsider)
    );
    assert!(!bundle.exists());

    let exported = run(vigil(&data)
        .args([
            "cases",
            "export",
            "CASE-E",
            "--as",
            "ivy",
            "--reason",
            "court order 17",
            "--out",
        ])
        .arg(&bundle));
    assert!(
        text(&exported).contains("skipped clips/"),
        "{}",
        text(&exported)
    );
    let public_key = String::from_utf8(run(vigil(&data).args(["keys", "evidence-public"])).stdout)
        .unwrap()
        .trim()
        .to_string();
    assert!(public_key.starts_with("ed25519:"), "{public_key}");

    // The export is in the log, with its reason; the outsider's attempt as refused.
    {
        let store = vigil_store::SqliteStore::open(data.join("vigil.db")).unwrap();
        let exports = store
            .with_read_connection(|c| {
                vigil_audit::entries(
                    c,
                    &vigil_audit::AuditFilter {
                        action: Some(vigil_audit::AuditAction::Export),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        let outcome = |who: &str| {
            exports.iter().find(|e| e.actor.user_name == who).map(|e| {
                (
                    e.outcome.kind.as_str(),
                    e.reason.clone(),
                    e.case_ref.clone(),
                )
            })
        };
        assert_eq!(outcome("olaf").unwrap().0, "refused");
        assert_eq!(
            outcome("ivy"),
            Some((
                "success",
                "court order 17".to_string(),
                Some("CASE-E".to_string())
            ))
        );
    }

    // Offline: no data folder (it does not exist for this run), no models.
    let nowhere = folder.path().join("no-data-here");
    let verified = run(vigil(&nowhere)
        .args(["verify-export", "--public-key", &public_key])
        .arg(&bundle));
    assert!(
        text(&verified).contains("signed by the pinned key"),
        "{}",
        text(&verified)
    );
    assert!(!nowhere.exists(), "verify-export created a data folder");
    let unpinned = run(vigil(&nowhere).arg("verify-export").arg(&bundle));
    assert!(
        String::from_utf8_lossy(&unpinned.stderr).contains("not who signed them"),
        "{}",
        text(&unpinned)
    );

    // One byte of the crop flipped: fails, naming the crop.
    let crop = format!("sightings/{sighting}.jpg");
    let tampered = folder.path().join("tampered.tar");
    std::fs::write(
        &tampered,
        flip_a_byte_of(&std::fs::read(&bundle).unwrap(), &crop),
    )
    .unwrap();
    let failed = vigil(&nowhere)
        .args(["verify-export", "--public-key", &public_key])
        .arg(&tampered)
        .output()
        .unwrap();
    assert!(!failed.status.success());
    assert!(
        text(&failed).contains(&format!("FAILED: {crop}")),
        "{}",
        text(&failed)
    );

    // Another server's key pinned: fails, naming the key.
    let another_server = folder.path().join("another-server");
    let other =
        String::from_utf8(run(vigil(&another_server).args(["keys", "evidence-public"])).stdout)
            .unwrap()
            .trim()
            .to_string();
    assert_ne!(other, public_key);
    let wrong_key = vigil(&nowhere)
        .args(["verify-export", "--public-key", &other])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(!wrong_key.status.success());
    assert!(
        text(&wrong_key).contains("not by the pinned key"),
        "{}",
        text(&wrong_key)
    );
}

/// The archive with the first byte of `path`'s contents flipped, in place (tar stores a file's
/// bytes right after its 512-byte header).
fn flip_a_byte_of(archive: &[u8], path: &str) -> Vec<u8> {
    let mut bytes = archive.to_vec();
    let mut offset = 0;
    while offset + 512 <= bytes.len() {
        let header = &bytes[offset..offset + 512];
        let name_end = header[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let name = String::from_utf8_lossy(&header[..name_end]).to_string();
        let size_text = String::from_utf8_lossy(&header[124..136])
            .trim_matches(|c: char| c == '\0' || c == ' ')
            .to_string();
        let size = usize::from_str_radix(&size_text, 8).unwrap_or(0);
        if name == path {
            bytes[offset + 512] ^= 0x01;
            return bytes;
        }
        offset += 512 + size.div_ceil(512) * 512;
    }
    panic!("{path} not in the archive");
}
