//! Sightings that end while the disk is full are kept, not lost (issue 13 §3): the store
//! refuses them with `StorageFull`, the analysis keeps them in memory, and stores them, in
//! order and with their alerts, once space returns. The full disk is SQLite's own: the
//! database may not grow past `max_page_count`, and a write that needs a new page fails with
//! SQLITE_FULL, exactly as on a full file system.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use vigil_audit::{Actor, AuditAction, NewAuditEntry, Outcome, Target};
use vigil_base::config::{MatchingConfig, VigilConfig};
use vigil_base::{CameraId, SubjectId};
use vigil_infer::{AnalyzerSettings, DecodeLimits, FaceAnalyzer};
use vigil_pipeline::calibrate::builtin_table;
use vigil_pipeline::video::VideoAnalysis;
use vigil_pipeline::{FaceService, NamedImage, ServiceError};
use vigil_store::{
    NewCase, NewSighting, NewWatchEntry, SightingQuery, SqliteStore, StoreError, SubjectRef,
    VideoStore,
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

fn note(action: AuditAction) -> NewAuditEntry {
    NewAuditEntry {
        actor: Actor {
            user_id: None,
            user_name: "alice".into(),
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

/// Caps the database at its present size (`full`), or lifts the cap.
fn disk_full(store: &SqliteStore, full: bool) {
    store.with_connection(|connection| {
        let pages: i64 = if full {
            connection
                .query_row("PRAGMA page_count", [], |row| row.get(0))
                .unwrap()
        } else {
            1 << 30
        };
        connection
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
            .unwrap();
    });
}

#[test]
fn sightings_ending_while_the_disk_is_full_are_stored_with_their_alerts_when_space_returns() {
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
        None,
    )
    .unwrap();
    let now = 1_800_000_000_000;
    let hour = 3_600_000;
    let images: Vec<NamedImage> = (1..=3).map(|n| photo("Tony_Blair", n)).collect();
    let blair = SubjectId(
        service
            .enroll(SubjectRef::ByName("Tony Blair".into()), None, &images)
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
                expires_at_ms: now + 24 * hour,
                evidence_retention_days: None,
            },
            &note(AuditAction::CaseOpen),
            now,
        )
        .unwrap();
    let list = store
        .create_watchlist(
            "wanted",
            None,
            1e-5,
            "alice",
            &note(AuditAction::WatchlistAdd),
            now,
        )
        .unwrap();
    store
        .add_watch_entry(
            &NewWatchEntry {
                watchlist: list.id,
                subject: blair,
                subject_name: "Tony Blair".into(),
                legal_basis: "warrant 1".into(),
                case_ref: "CASE-1".into(),
                responsible: "alice".into(),
                expires_at_ms: now + hour,
                created_by: "alice".into(),
            },
            &note(AuditAction::WatchlistAdd),
            now,
        )
        .unwrap();
    let mut alerts = analysis.subscribe_alerts();
    let mut sightings = analysis.subscribe();

    let (_, embedding) = service
        .probe_embedding(&photo("Tony_Blair", 10).bytes)
        .unwrap();
    let sighting = |track: u64| NewSighting {
        camera: CameraId::parse("gate").unwrap(),
        track,
        started_at_ms: now - 2_000,
        ended_at_ms: now - 1_000,
        best_at_ms: now - 1_500,
        observations: 5,
        end_reason: "lost".into(),
        quality: 0.9,
        detector_score: 0.9,
        bbox: [0.0, 0.0, 100.0, 100.0],
        frame_width: 640,
        frame_height: 480,
        // Larger than a page: storing it needs pages the full database cannot have.
        crop_jpeg: vec![0xAB; 64 * 1024],
        embeddings: vec![(embedding.clone(), 0.9)],
        trajectory: Vec::new(),
        candidates: Vec::new(),
    };

    disk_full(&store, true);
    for track in [1, 2] {
        match analysis.record_sighting(&sighting(track), &[&embedding], now) {
            Err(ServiceError::Store(StoreError::StorageFull(_))) => {}
            other => panic!("expected storage_full, got {other:?}"),
        }
    }
    assert_eq!(analysis.unstored_sightings(), 2);
    // Still full: a retry stores nothing and keeps both.
    assert_eq!(analysis.retry_unstored(), 2);
    assert!(alerts.try_recv().is_err());
    disk_full(&store, false);

    // Space is back: the next retry (every few seconds from the camera threads, or before the
    // next sighting) stores both, in the order they ended, and raises their alerts.
    assert_eq!(analysis.retry_unstored(), 0);
    let stored = store
        .list_sightings(&SightingQuery {
            limit: 100,
            ..SightingQuery::default()
        })
        .unwrap();
    let mut tracks: Vec<(i64, u64)> = stored.iter().map(|s| (s.id.0, s.track)).collect();
    tracks.sort();
    assert_eq!(
        tracks.iter().map(|(_, track)| *track).collect::<Vec<_>>(),
        [1, 2]
    );
    for (id, _) in &tracks {
        let alert = alerts
            .try_recv()
            .expect("an alert for each stored sighting");
        assert_eq!((alert.sighting, alert.subject), (*id, blair));
        assert_eq!(sightings.try_recv().unwrap().id, *id);
    }
    // And a sighting after that is stored at once.
    let (third, raised) = analysis
        .record_sighting(&sighting(3), &[&embedding], now)
        .unwrap();
    assert_eq!(raised.len(), 1);
    assert!(store.sighting(third).unwrap().is_some());
    assert_eq!(analysis.unstored_sightings(), 0);
}
