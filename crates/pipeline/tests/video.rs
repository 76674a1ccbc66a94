//! Video analysis end to end on real clips: ffmpeg decoding, the motion gate, the real models,
//! the tracker, sightings in the store and on the event stream.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_base::camera::VideoConfig;
use vigil_base::config::{MatchingConfig, VigilConfig};
use vigil_base::{CameraConfig, CameraId};
use vigil_infer::{AnalyzerSettings, DecodeLimits, FaceAnalyzer};
use vigil_ingest::{CameraManager, CameraState};
use vigil_pipeline::calibrate::builtin_table;
use vigil_pipeline::video::{SearchFilter, VideoAnalysis};
use vigil_pipeline::FaceService;
use vigil_store::{SightingQuery, SqliteStore, VideoStore};
use vigil_track::TrackConfig;

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

#[test]
fn the_four_intel_clips_give_one_sighting_per_person() {
    let directory = tempfile::tempdir().unwrap();
    let config = VigilConfig {
        models_dir: shared().join("models"),
        threads: 1,
        ..VigilConfig::default()
    };
    let analyzers: Vec<_> = (0..2)
        .map(|_| Arc::new(FaceAnalyzer::new(AnalyzerSettings::from_config(&config)).unwrap()))
        .collect();
    let calibration = builtin_table(analyzers[0].recognizer_model().as_str()).unwrap();
    let store = Arc::new(SqliteStore::open(directory.path().join("vigil.db")).unwrap());
    let service = Arc::new(
        FaceService::with_analyzers(
            analyzers,
            store.clone(),
            calibration,
            MatchingConfig::default(),
            DecodeLimits::default(),
        )
        .unwrap(),
    );
    let analysis = VideoAnalysis::new(
        service,
        store.clone(),
        TrackConfig::default(),
        true,
        Some(&directory.path().join("index")),
    )
    .unwrap();
    let mut events = analysis.subscribe();
    let manager = CameraManager::new(
        VideoConfig {
            min_free_bytes: 0,
            // file cameras are read only under the media root (design 007)
            media_root: Some(shared().join("data/video").canonicalize().unwrap()),
            ..VideoConfig::default()
        },
        directory.path().join("recordings"),
        store.clone(),
        Arc::new(analysis.as_ref().clone()),
    )
    .unwrap();

    // people per clip, checked by eye
    let clips = [
        (
            "walking-and-pause",
            "face-demographics-walking-and-pause.mp4",
            3,
        ),
        ("walking", "face-demographics-walking.mp4", 2),
        (
            "female-and-male",
            "head-pose-face-detection-female-and-male.mp4",
            2,
        ),
        ("male", "head-pose-face-detection-male.mp4", 1),
    ];
    for (id, file, _) in clips {
        manager
            .add(CameraConfig {
                id: CameraId::parse(id).unwrap(),
                url: shared().join("data/video").join(file).display().to_string(),
                analysis_fps: 5.0,
                // every frame analysed, as fast as the models go
                realtime: false,
                ..CameraConfig::default()
            })
            .unwrap();
    }
    let started = Instant::now();
    while !manager
        .statuses()
        .iter()
        .all(|s| s.state == CameraState::Ended)
    {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "{:?}",
            manager.statuses()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The analysis threads flush their tracks once the decoder closes the mailbox.
    manager.shutdown();
    let expected: usize = clips.iter().map(|c| c.2).sum();
    let mut streamed = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while streamed < expected && Instant::now() < deadline {
        match events.try_recv() {
            Ok(_) => streamed += 1,
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    for (id, _, people) in clips {
        let sightings = store
            .list_sightings(&SightingQuery {
                camera: Some(CameraId::parse(id).unwrap()),
                limit: 100,
                ..SightingQuery::default()
            })
            .unwrap();
        eprintln!(
            "{id}: {:?}",
            sightings
                .iter()
                .map(|s| (s.started_at_ms, s.ended_at_ms, s.observations, s.quality))
                .collect::<Vec<_>>()
        );
        assert_eq!(sightings.len(), people, "{id}");
        for sighting in &sightings {
            let crop = store.sighting_crop(sighting.id).unwrap().unwrap();
            assert_eq!(&crop[..2], &[0xff, 0xd8], "best shot is a JPEG");
            assert!(!store.sighting_embeddings(sighting.id).unwrap().is_empty());
            assert!(!sighting.trajectory.is_empty());
        }
    }
    assert_eq!(streamed, expected, "every sighting is published");

    // Retrospective search: a sighting's own best shot finds it, filtered by camera inside the
    // scan; after retention deletes the sightings, nothing is found and the crops are gone.
    let male = store
        .list_sightings(&SightingQuery {
            camera: Some(CameraId::parse("male").unwrap()),
            limit: 1,
            ..SightingQuery::default()
        })
        .unwrap()
        .remove(0);
    let probe = store.sighting_crop(male.id).unwrap().unwrap();
    let everywhere = analysis
        .search(&probe, &SearchFilter::default(), 10, None)
        .unwrap();
    assert_eq!(
        everywhere.hits.first().map(|h| h.sighting.id),
        Some(male.id.0)
    );
    assert!(everywhere.hits[0].false_match_rate <= 1e-5);
    let elsewhere = analysis
        .search(
            &probe,
            &SearchFilter {
                cameras: vec![CameraId::parse("walking").unwrap()],
                ..SearchFilter::default()
            },
            10,
            None,
        )
        .unwrap();
    assert!(elsewhere
        .hits
        .iter()
        .all(|h| h.sighting.camera.as_str() == "walking"));
    assert!(!elsewhere.hits.iter().any(|h| h.sighting.id == male.id.0));

    let far_future = i64::MAX / 2;
    let purged = analysis
        .purge_sightings_before(far_future, None, far_future)
        .unwrap();
    assert_eq!(purged, expected);
    let after = analysis
        .search(&probe, &SearchFilter::default(), 10, None)
        .unwrap();
    assert!(after.hits.is_empty(), "{:?}", after.hits);
    assert_eq!(after.sightings_searched, 0);
    assert!(store.sighting_crop(male.id).unwrap().is_none());
    assert!(store.sighting_embeddings(male.id).unwrap().is_empty());
}
