//! The video side of the store: cameras, sightings with their embeddings, segments and the
//! garbage list that makes segment deletion crash-safe.

use vigil_base::{CameraConfig, CameraId, Embedding, ModelId, SubjectId};
use vigil_store::{
    NewSegment, NewSighting, SightingCandidate, SightingId, SightingQuery, SqliteStore, StoreError,
    TrajectoryPoint, VideoStore,
};

fn camera(id: &str) -> CameraConfig {
    CameraConfig {
        id: CameraId::parse(id).unwrap(),
        url: "rtsp://127.0.0.1:8554/x".into(),
        ..CameraConfig::default()
    }
}

fn sighting(camera: &str, started: i64, ended: i64, subject: Option<i64>) -> NewSighting {
    let model = ModelId::new("m");
    NewSighting {
        camera: CameraId::parse(camera).unwrap(),
        track: 7,
        started_at_ms: started,
        ended_at_ms: ended,
        best_at_ms: started,
        observations: 12,
        end_reason: "lost".into(),
        quality: 0.8,
        detector_score: 0.9,
        bbox: [1.0, 2.0, 30.0, 40.0],
        frame_width: 640,
        frame_height: 360,
        crop_jpeg: vec![0xff, 0xd8, 0xff, 0xd9],
        embeddings: vec![
            (
                Embedding::normalised(model.clone(), vec![1.0, 0.0, 0.0]).unwrap(),
                0.8,
            ),
            (
                Embedding::normalised(model, vec![0.0, 1.0, 0.0]).unwrap(),
                0.7,
            ),
        ],
        trajectory: vec![TrajectoryPoint {
            at_ms: started,
            center_x: 10.0,
            center_y: 20.0,
            width: 29.0,
            height: 38.0,
        }],
        candidates: subject
            .map(|s| SightingCandidate {
                subject: SubjectId(s),
                subject_name: "someone".into(),
                score: 0.6,
                false_match_rate: 1e-7,
                extrapolated: false,
            })
            .into_iter()
            .collect(),
    }
}

#[test]
fn cameras_are_saved_replaced_and_deleted() {
    let store = SqliteStore::open_in_memory().unwrap();
    store.save_camera(&camera("b")).unwrap();
    let mut a = camera("a");
    store.save_camera(&a).unwrap();
    a.analysis_fps = 5.0;
    store.save_camera(&a).unwrap();
    let cameras = store.cameras().unwrap();
    assert_eq!(cameras.len(), 2);
    assert_eq!(cameras[0], a);
    store.delete_camera(&a.id).unwrap();
    assert!(matches!(
        store.delete_camera(&a.id),
        Err(StoreError::NotFound(_))
    ));
    let mut invalid = camera("c");
    invalid.analysis_fps = -1.0;
    assert!(matches!(
        store.save_camera(&invalid),
        Err(StoreError::Invalid(_))
    ));
}

#[test]
fn sightings_round_trip_and_filter() {
    let store = SqliteStore::open_in_memory().unwrap();
    let first = store
        .insert_sighting(&sighting("a", 1000, 2000, Some(3)))
        .unwrap();
    let second = store
        .insert_sighting(&sighting("b", 5000, 6000, None))
        .unwrap();
    let record = store.sighting(first).unwrap().unwrap();
    assert_eq!(record.camera.as_str(), "a");
    assert_eq!(record.candidates[0].subject, SubjectId(3));
    assert_eq!(record.trajectory.len(), 1);
    assert_eq!(store.sighting_crop(first).unwrap().unwrap().len(), 4);
    let embeddings = store.sighting_embeddings(first).unwrap();
    assert_eq!(embeddings.len(), 2);
    assert_eq!(embeddings[0].0.values(), &[1.0, 0.0, 0.0]);
    assert_eq!(
        store
            .sighting_embeddings_for_model(&ModelId::new("m"))
            .unwrap()
            .len(),
        4
    );

    let all = store
        .list_sightings(&SightingQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        all.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![second, first]
    );
    let by_camera = store
        .list_sightings(&SightingQuery {
            camera: Some(CameraId::parse("b").unwrap()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_camera.len(), 1);
    let by_time = store
        .list_sightings(&SightingQuery {
            from_ms: Some(1500),
            to_ms: Some(1600),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_time[0].id, first);
    let by_subject = store
        .list_sightings(&SightingQuery {
            subject: Some(SubjectId(3)),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_subject.len(), 1);
    let page = store
        .list_sightings(&SightingQuery {
            before_id: Some(second),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page[0].id, first);

    assert!(
        store
            .delete_sightings_ended_before(3000, Some(false), 3000)
            .unwrap()
            .is_empty(),
        "the early sighting is matched: kept by the unmatched rule"
    );
    let deleted = store
        .delete_sightings_ended_before(3000, Some(true), 3000)
        .unwrap();
    assert_eq!(deleted, vec![first]);
    assert!(store.sighting(first).unwrap().is_none());
    assert!(
        store.sighting_embeddings(first).unwrap().is_empty(),
        "embeddings cascade"
    );
    assert!(store.sighting(SightingId(999)).unwrap().is_none());
}

#[test]
fn retiring_segments_moves_them_to_garbage_in_one_step() {
    let store = SqliteStore::open_in_memory().unwrap();
    let cam = CameraId::parse("a").unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            store
                .add_segment(&NewSegment {
                    camera: cam.clone(),
                    path: format!("a/{i}.mp4"),
                    started_at_ms: i * 10_000,
                    ended_at_ms: i * 10_000 + 10_000,
                    bytes: 100,
                })
                .unwrap(),
        );
    }
    let duplicate = NewSegment {
        camera: cam.clone(),
        path: "a/0.mp4".into(),
        started_at_ms: 0,
        ended_at_ms: 1,
        bytes: 1,
    };
    assert!(matches!(
        store.add_segment(&duplicate),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.segments_between(&cam, 12_000, 13_000).unwrap().len(),
        1
    );
    let retired = store.retire_segments(&ids[..2]).unwrap();
    assert_eq!(retired, vec!["a/0.mp4".to_string(), "a/1.mp4".to_string()]);
    assert_eq!(store.segments(Some(&cam)).unwrap().len(), 1);
    assert_eq!(store.garbage().unwrap(), retired);
    store.forget_garbage(&retired).unwrap();
    assert!(store.garbage().unwrap().is_empty());
}
