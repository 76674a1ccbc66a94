//! A sighting whose index write fails still raises its alert (stored, queued for webhooks,
//! published), and is indexed once the disk takes writes again (issue 13 §3). The failing disk
//! is real: the index's write-ahead log descriptor is pointed at /dev/full, which refuses every
//! write with ENOSPC, and pointed back afterwards.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vigil_audit::{Actor, AuditAction, NewAuditEntry, Outcome, Target};
use vigil_base::config::{MatchingConfig, VigilConfig};
use vigil_base::{CameraId, SubjectId};
use vigil_infer::{AnalyzerSettings, DecodeLimits, FaceAnalyzer};
use vigil_pipeline::calibrate::builtin_table;
use vigil_pipeline::video::{SearchFilter, VideoAnalysis};
use vigil_pipeline::{FaceService, NamedImage};
use vigil_store::{NewCase, NewSighting, NewWatchEntry, SqliteStore, SubjectRef};
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

/// The open descriptor of the index's write-ahead log, found through /proc/self/fd.
fn index_log_descriptor(index_dir: &Path) -> i32 {
    let index_dir = index_dir.canonicalize().unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(Result::ok)
        .find_map(|link| {
            let target = std::fs::read_link(link.path()).ok()?;
            let name = target.file_name()?.to_str()?;
            (target.starts_with(&index_dir) && name.starts_with("wal-"))
                .then(|| link.file_name().to_str()?.parse().ok())
                .flatten()
        })
        .expect("the index keeps its write-ahead log open")
}

/// While alive, writes to `descriptor` go to /dev/full (ENOSPC); dropping it restores them.
struct FullDisk {
    descriptor: i32,
    saved: i32,
    _full: std::fs::File,
}

impl FullDisk {
    fn on(descriptor: i32) -> Self {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        // SAFETY: plain descriptor calls on descriptors this process owns; `saved` keeps the
        // log's file open so it can be put back.
        let saved = unsafe { libc::dup(descriptor) };
        assert!(saved >= 0);
        assert!(unsafe { libc::dup2(full.as_raw_fd(), descriptor) } >= 0);
        FullDisk {
            descriptor,
            saved,
            _full: full,
        }
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        // SAFETY: as in `on`.
        unsafe {
            libc::dup2(self.saved, self.descriptor);
            libc::close(self.saved);
        }
    }
}

#[test]
fn an_alert_is_raised_when_the_index_write_fails_and_the_sighting_is_indexed_later() {
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
    let index_dir = directory.path().join("index");
    let analysis = VideoAnalysis::new(
        service.clone(),
        store.clone(),
        TrackConfig::default(),
        true,
        Some(&index_dir),
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
    // A subscriber, so the alert queues a webhook delivery in its transaction (never sent here).
    store
        .create_webhook(
            &vigil_notify::NewSubscription {
                url: "https://receiver.example/hooks".into(),
                secret: "s3cret".into(),
                event_kinds: vec!["alert.raised".into()],
                enabled: true,
                description: String::new(),
            },
            &note(AuditAction::ConfigChange),
            now,
        )
        .unwrap();
    let mut alerts = analysis.subscribe_alerts();

    // Another photo of the watched person, as a camera would have seen him.
    let probe = photo("Tony_Blair", 10).bytes;
    let (_, embedding) = service.probe_embedding(&probe).unwrap();
    let sighting = NewSighting {
        camera: CameraId::parse("gate").unwrap(),
        track: 1,
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
        crop_jpeg: vec![0xff, 0xd8, 0xff, 0xd9],
        embeddings: vec![(embedding.clone(), 0.9)],
        trajectory: Vec::new(),
        candidates: Vec::new(),
    };

    let (sighting_id, raised) = {
        let _full = FullDisk::on(index_log_descriptor(&index_dir));
        let recorded = analysis
            .record_sighting(&sighting, &[&embedding], now)
            .expect("a failed index write does not fail the sighting");
        // The index could not take it: it waits for a retry, and a search meanwhile (which
        // retries first, and fails again) answers without it rather than failing.
        assert_eq!(analysis.unindexed_entries(), 1);
        let report = analysis
            .search(&probe, &SearchFilter::default(), 10, None)
            .unwrap();
        assert!(report.hits.is_empty(), "{:?}", report.hits);
        recorded
    };

    // The alert was raised all the same: stored, published, queued for the webhook.
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].sighting, sighting_id.0);
    assert_eq!(raised[0].subject, blair);
    assert_eq!(alerts.try_recv().unwrap().id, raised[0].id);
    assert!(store.alert(raised[0].id).unwrap().is_some());
    let deliveries = store.webhook_deliveries(None, 10).unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].event_kind, "alert.raised");

    // The disk takes writes again: the next search retries first and finds the sighting.
    let report = analysis
        .search(&probe, &SearchFilter::default(), 10, None)
        .unwrap();
    assert_eq!(analysis.unindexed_entries(), 0);
    assert_eq!(
        report
            .hits
            .iter()
            .map(|hit| hit.sighting.id)
            .collect::<Vec<_>>(),
        [sighting_id.0]
    );

    // And it is in the index on disk: a restart opens it without a rebuild and finds it.
    drop(analysis);
    let reopened = VideoAnalysis::new(
        service.clone(),
        store.clone(),
        TrackConfig::default(),
        true,
        Some(&index_dir),
    )
    .unwrap();
    let report = reopened
        .search(&probe, &SearchFilter::default(), 10, None)
        .unwrap();
    assert_eq!(report.hits.len(), 1);
}
