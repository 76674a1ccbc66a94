//! Watchlists and alerts on real faces: an entry needs its legal basis, open case, responsible
//! person and expiry; expired or removed entries never match; no alert above the list's
//! false-match rate; an alert is a candidate until two distinct reviewers, neither the entry's
//! creator, confirm it, and one rejection closes it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use vigil_audit::{Actor, AuditAction, NewAuditEntry, Outcome, Target};
use vigil_base::config::{MatchingConfig, VigilConfig};
use vigil_base::{CameraId, SubjectId};
use vigil_infer::{AnalyzerSettings, DecodeLimits, FaceAnalyzer};
use vigil_pipeline::calibrate::builtin_table;
use vigil_pipeline::video::VideoAnalysis;
use vigil_pipeline::{FaceService, NamedImage, PreparedTemplate};
use vigil_store::{
    AlertState, NewCase, NewSighting, NewWatchEntry, ReviewDecision, SightingId, SqliteStore,
    StoreError, SubjectRef, VideoStore,
};
use vigil_track::TrackConfig;

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn photo(person: &str, number: u32) -> NamedImage {
    let path = shared().join(format!(
        "data/lfw/lfw-deepfunneled/{person}/{person}_{number:04}.jpg"
    ));
    NamedImage {
        name: path.display().to_string(),
        bytes: std::fs::read(&path).unwrap(),
    }
}

fn note(actor: &str, action: AuditAction) -> NewAuditEntry {
    NewAuditEntry {
        actor: Actor {
            user_id: None,
            user_name: actor.into(),
        },
        action,
        target: Target {
            kind: "test".into(),
            id: String::new(),
        },
        case_ref: Some("CASE-1".into()),
        reason: "test".into(),
        request: serde_json::json!({}),
        probe_image: None,
        outcome: Outcome::success(""),
    }
}

const HOUR: i64 = 3_600_000;

fn sighting(store: &SqliteStore, at_ms: i64) -> SightingId {
    store
        .insert_sighting(&NewSighting {
            camera: CameraId::parse("gate").unwrap(),
            track: 1,
            started_at_ms: at_ms,
            ended_at_ms: at_ms,
            best_at_ms: at_ms,
            observations: 3,
            end_reason: "lost".into(),
            quality: 0.9,
            detector_score: 0.9,
            bbox: [0.0, 0.0, 10.0, 10.0],
            frame_width: 100,
            frame_height: 100,
            crop_jpeg: vec![0xff, 0xd8, 0xff, 0xd9],
            embeddings: Vec::new(),
            trajectory: Vec::new(),
            candidates: Vec::new(),
        })
        .unwrap()
}

/// A store in a temporary folder, the service over it with the shipped calibration, and the
/// video analysis with its sightings index. The folder lives as long as the returned guard.
fn fixture() -> (
    tempfile::TempDir,
    Arc<SqliteStore>,
    Arc<FaceService>,
    Arc<VideoAnalysis>,
) {
    let directory = tempfile::tempdir().unwrap();
    let config = VigilConfig {
        models_dir: shared().join("models"),
        threads: 2,
        ..VigilConfig::default()
    };
    let analyzer = Arc::new(FaceAnalyzer::new(AnalyzerSettings::from_config(&config)).unwrap());
    let calibration = builtin_table(analyzer.recognizer_model().as_str()).unwrap();
    let store = Arc::new(SqliteStore::open(directory.path().join("vigil.db")).unwrap());
    let service = Arc::new(
        FaceService::new(
            analyzer,
            store.clone(),
            calibration,
            MatchingConfig::default(),
            DecodeLimits::default(),
        )
        .unwrap(),
    );
    let analysis = VideoAnalysis::new(
        service.clone(),
        store.clone(),
        TrackConfig::default(),
        true,
        Some(&directory.path().join("index")),
    )
    .unwrap();
    (directory, store, service, analysis)
}

#[test]
fn watchlist_entries_alerts_and_the_two_reviewer_rule() {
    let (_directory, store, service, analysis) = fixture();
    let now = 1_800_000_000_000;

    let enrol = |name: &str, person: &str| {
        let images: Vec<NamedImage> = (1..=3).map(|n| photo(person, n)).collect();
        SubjectId(
            service
                .enroll(SubjectRef::ByName(name.into()), None, &images)
                .unwrap()
                .subject
                .id,
        )
    };
    let blair = enrol("watch: Tony Blair", "Tony_Blair");
    let powell = enrol("watch: Colin Powell", "Colin_Powell");

    store
        .open_case(
            &NewCase {
                reference: "CASE-1".into(),
                purpose: "test".into(),
                legal_basis: "warrant 1".into(),
                owner: "alice".into(),
                members: vec![],
                expires_at_ms: now + 24 * HOUR,
                evidence_retention_days: None,
            },
            &note("alice", AuditAction::CaseOpen),
            now,
        )
        .unwrap();
    let list = store
        .create_watchlist(
            "wanted",
            None,
            1e-5,
            "alice",
            &note("alice", AuditAction::WatchlistAdd),
            now,
        )
        .unwrap();
    let entry = |subject: SubjectId, name: &str| NewWatchEntry {
        watchlist: list.id,
        subject,
        subject_name: name.into(),
        legal_basis: "warrant 1".into(),
        case_ref: "CASE-1".into(),
        responsible: "alice".into(),
        expires_at_ms: now + HOUR,
        created_by: "alice".into(),
    };

    // Refused without legal basis, responsible person, open case or future expiry.
    for broken in [
        NewWatchEntry {
            legal_basis: " ".into(),
            ..entry(blair, "Blair")
        },
        NewWatchEntry {
            responsible: String::new(),
            ..entry(blair, "Blair")
        },
        NewWatchEntry {
            case_ref: "NO-CASE".into(),
            ..entry(blair, "Blair")
        },
        NewWatchEntry {
            expires_at_ms: now - 1,
            ..entry(blair, "Blair")
        },
        NewWatchEntry {
            expires_at_ms: now + 48 * HOUR,
            ..entry(blair, "Blair")
        },
    ] {
        let refused =
            store.add_watch_entry(&broken, &note("alice", AuditAction::WatchlistAdd), now);
        assert!(
            matches!(refused, Err(StoreError::Invalid(_))),
            "{broken:?}: {refused:?}"
        );
    }
    let blair_entry = store
        .add_watch_entry(
            &entry(blair, "Blair"),
            &note("alice", AuditAction::WatchlistAdd),
            now,
        )
        .unwrap();
    store
        .add_watch_entry(
            &entry(powell, "Powell"),
            &note("alice", AuditAction::WatchlistAdd),
            now,
        )
        .unwrap();

    // An unseen photo of Blair alerts on Blair only: Powell scores above the list's rate.
    let (_, probe) = service
        .probe_embedding(&photo("Tony_Blair", 10).bytes)
        .unwrap();
    let alerts = analysis
        .raise_alerts(sighting(&store, now), &[&probe], now + 1)
        .unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert.subject, blair);
    assert!(alert.false_match_rate <= 1e-5);
    assert_eq!(alert.state, AlertState::Candidate);
    assert!(alert.expected_false_candidates <= 1e-5 * service.gallery_templates() as f64);

    // Someone on no list raises nothing.
    let (_, stranger) = service
        .probe_embedding(&photo("Gerhard_Schroeder", 1).bytes)
        .unwrap();
    assert!(analysis
        .raise_alerts(sighting(&store, now), &[&stranger], now + 1)
        .unwrap()
        .is_empty());

    // Watchlist matching searches only the watched subjects' templates (the filter runs inside
    // the scan): unwatched enrolments that outrank Blair cannot push him out of the top-k.
    let lookalike = service.prepare_template(&photo("Tony_Blair", 10)).unwrap();
    let outranking = MatchingConfig::default().top_k + 4;
    for n in 0..outranking {
        service
            .commit_enrolment(
                SubjectRef::ByName(format!("unwatched {n}")),
                None,
                vec![PreparedTemplate {
                    source_name: lookalike.source_name.clone(),
                    template: lookalike.template.clone(),
                }],
            )
            .unwrap();
    }
    let everyone = service
        .match_embeddings(&[&probe], outranking, 1e-5)
        .unwrap();
    assert!(
        everyone.iter().all(|c| c.subject_id != blair.0),
        "the unwatched copies outrank Blair: {everyone:#?}"
    );
    let alerts = analysis
        .raise_alerts(sighting(&store, now), &[&probe], now + 1)
        .unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].subject, blair);
    // (rejected, so that it holds no evidence in the retention checks below)
    store
        .review_alert(
            alerts[0].id,
            "dave",
            ReviewDecision::Reject,
            Some("duplicate of the first".into()),
            &note("dave", AuditAction::ReviewAlert),
            now + 1,
        )
        .unwrap();

    // After the entry's expiry (injected clock) it never matches.
    assert!(analysis
        .raise_alerts(sighting(&store, now), &[&probe], now + 2 * HOUR)
        .unwrap()
        .is_empty());

    // Review: the entry's creator may not review; one reviewer cannot confirm alone.
    let review = |who: &str, decision| {
        store.review_alert(
            alert.id,
            who,
            decision,
            None,
            &note(who, AuditAction::ReviewAlert),
            now + 2,
        )
    };
    assert!(matches!(
        review("alice", ReviewDecision::Confirm),
        Err(StoreError::Conflict(_))
    ));
    let once = review("bob", ReviewDecision::Confirm).unwrap();
    assert_eq!(
        once.state,
        AlertState::Candidate,
        "one confirmation is not enough"
    );
    assert!(matches!(
        review("bob", ReviewDecision::Confirm),
        Err(StoreError::Conflict(_))
    ));
    let twice = review("carol", ReviewDecision::Confirm).unwrap();
    assert_eq!(twice.state, AlertState::Confirmed);
    assert_eq!(twice.reviews.len(), 2);
    assert!(matches!(
        review("dave", ReviewDecision::Reject),
        Err(StoreError::Conflict(_))
    ));

    // One rejection closes a candidate.
    let second = analysis
        .raise_alerts(sighting(&store, now), &[&probe], now + 3)
        .unwrap()
        .remove(0);
    let rejected = store
        .review_alert(
            second.id,
            "dave",
            ReviewDecision::Reject,
            Some("not him".into()),
            &note("dave", AuditAction::ReviewAlert),
            now + 4,
        )
        .unwrap();
    assert_eq!(rejected.state, AlertState::Rejected);

    // Removing the entry removes its templates: nothing matches any more.
    let subject = store
        .remove_watch_entry(
            blair_entry.id,
            &note("alice", AuditAction::WatchlistRemove),
            now + 5,
        )
        .unwrap()
        .unwrap();
    service.delete_subject(subject).unwrap();
    assert!(analysis
        .raise_alerts(sighting(&store, now), &[&probe], now + 6)
        .unwrap()
        .is_empty());
    let gone = service
        .probe_embedding(&photo("Tony_Blair", 10).bytes)
        .unwrap()
        .1;
    assert!(service
        .match_embeddings(&[&gone], 5, 1e-5)
        .unwrap()
        .iter()
        .all(|c| c.subject_id != blair.0));

    // Retention: a sighting behind a confirmed alert is the case's evidence and outlives the
    // ordinary limits while the case is open and for its evidence period after; a rejected
    // alert holds nothing.
    let day = 24 * HOUR;
    let after_all = now + 1000 * day;
    let purged = analysis
        .purge_sightings_before(after_all, None, now + 10)
        .unwrap();
    assert!(
        purged >= 2,
        "the plain and the rejected sightings go: {purged}"
    );
    let sighting_of = |alert: i64| {
        store
            .sighting(SightingId(alert))
            .unwrap()
            .map(|record| record.id)
    };
    assert!(
        sighting_of(alert.sighting).is_some(),
        "the confirmed alert's sighting is held by its open case"
    );
    assert!(sighting_of(rejected.sighting).is_none());
    // The case expired after a day and keeps evidence 30 days more.
    assert_eq!(
        analysis
            .purge_sightings_before(after_all, None, now + day + 29 * day)
            .unwrap(),
        0
    );
    assert_eq!(
        analysis
            .purge_sightings_before(after_all, None, now + day + 31 * day)
            .unwrap(),
        1
    );
    assert!(sighting_of(alert.sighting).is_none());

    // Every change is in the audit log, which verifies.
    let report = store
        .with_connection(|c| vigil_audit::verify(c, &[]))
        .unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert!(report.entries_checked >= 8);
}

/// A sighting holding `embeddings` (usable), as the camera analysis stores it.
fn sighting_of(
    store: &SqliteStore,
    at_ms: i64,
    embeddings: &[&vigil_base::Embedding],
) -> SightingId {
    store
        .insert_sighting(&NewSighting {
            camera: CameraId::parse("gate").unwrap(),
            track: 1,
            started_at_ms: at_ms,
            ended_at_ms: at_ms,
            best_at_ms: at_ms,
            observations: 3,
            end_reason: "lost".into(),
            quality: 0.9,
            detector_score: 0.9,
            bbox: [0.0, 0.0, 10.0, 10.0],
            frame_width: 100,
            frame_height: 100,
            crop_jpeg: vec![0xff, 0xd8, 0xff, 0xd9],
            embeddings: embeddings.iter().map(|e| ((*e).clone(), 0.9)).collect(),
            trajectory: Vec::new(),
            candidates: Vec::new(),
        })
        .unwrap()
}

#[test]
fn a_rejection_is_remembered_the_same_person_does_not_alert_again_for_that_subject() {
    let (_directory, store, service, analysis) = fixture();
    let now = 1_800_000_000_000;
    let images: Vec<NamedImage> = (1..=3).map(|n| photo("Tony_Blair", n)).collect();
    let blair = SubjectId(
        service
            .enroll(
                SubjectRef::ByName("watch: Tony Blair".into()),
                None,
                &images,
            )
            .unwrap()
            .subject
            .id,
    );
    store
        .open_case(
            &NewCase {
                reference: "CASE-1".into(),
                purpose: "test".into(),
                legal_basis: "warrant 1".into(),
                owner: "alice".into(),
                members: vec![],
                expires_at_ms: now + 24 * HOUR,
                evidence_retention_days: None,
            },
            &note("alice", AuditAction::CaseOpen),
            now,
        )
        .unwrap();
    let list = store
        .create_watchlist(
            "wanted",
            None,
            1e-3,
            "alice",
            &note("alice", AuditAction::WatchlistAdd),
            now,
        )
        .unwrap();
    store
        .add_watch_entry(
            &NewWatchEntry {
                watchlist: list.id,
                subject: blair,
                subject_name: "Blair".into(),
                legal_basis: "warrant 1".into(),
                case_ref: "CASE-1".into(),
                responsible: "alice".into(),
                expires_at_ms: now + HOUR,
                created_by: "alice".into(),
            },
            &note("alice", AuditAction::WatchlistAdd),
            now,
        )
        .unwrap();
    let embedding =
        |person: &str, n: u32| service.probe_embedding(&photo(person, n).bytes).unwrap().1;

    // A camera sees someone the reviewers judge is not Blair, and they reject the alert.
    let first = embedding("Tony_Blair", 10);
    let raised = analysis
        .raise_alerts(sighting_of(&store, now, &[&first]), &[&first], now + 1)
        .unwrap();
    assert_eq!(raised.len(), 1);
    store
        .review_alert(
            raised[0].id,
            "dave",
            ReviewDecision::Reject,
            Some("not this person".into()),
            &note("dave", AuditAction::ReviewAlert),
            now + 2,
        )
        .unwrap();

    // The same person seen again (another photo of them) raises no alert for Blair: the
    // rejection stands, and the decision is in the audit log with what it rests on.
    let again = embedding("Tony_Blair", 11);
    let later = sighting_of(&store, now + 10, &[&again]);
    let suppressed = analysis.raise_alerts(later, &[&again], now + 11).unwrap();
    assert!(suppressed.is_empty(), "{suppressed:#?}");
    let entries = store.with_connection(|connection| {
        vigil_audit::entries(
            connection,
            &vigil_audit::AuditFilter {
                action: Some(AuditAction::AlertSuppressed),
                ..Default::default()
            },
        )
        .unwrap()
    });
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].target.id, later.0.to_string());
    assert_eq!(entries[0].request["rejected_alert"], raised[0].id);
    assert!(entries[0].reason.contains("dave"));

    // A rejection about Blair never silences another subject: Powell, seen, alerts.
    let images: Vec<NamedImage> = (1..=3).map(|n| photo("Colin_Powell", n)).collect();
    let powell = SubjectId(
        service
            .enroll(
                SubjectRef::ByName("watch: Colin Powell".into()),
                None,
                &images,
            )
            .unwrap()
            .subject
            .id,
    );
    store
        .add_watch_entry(
            &NewWatchEntry {
                watchlist: list.id,
                subject: powell,
                subject_name: "Powell".into(),
                legal_basis: "warrant 1".into(),
                case_ref: "CASE-1".into(),
                responsible: "alice".into(),
                expires_at_ms: now + HOUR,
                created_by: "alice".into(),
            },
            &note("alice", AuditAction::WatchlistAdd),
            now,
        )
        .unwrap();
    let powell_seen = embedding("Colin_Powell", 10);
    let alerted = analysis
        .raise_alerts(
            sighting_of(&store, now + 20, &[&powell_seen]),
            &[&powell_seen],
            now + 21,
        )
        .unwrap();
    assert_eq!(alerted.len(), 1);
    assert_eq!(alerted[0].subject, powell);
}
