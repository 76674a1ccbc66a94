//! The face service end to end on real models, real LFW photos and a real SQLite file.

use std::path::PathBuf;
use std::sync::Arc;
use vigil_base::config::{MatchingConfig, VigilConfig};
use vigil_infer::{AnalyzerSettings, DecodeLimits, FaceAnalyzer};
use vigil_pipeline::calibrate::builtin_table;
use vigil_pipeline::{FaceService, NamedImage, ServiceError};
use vigil_store::{FaceStore, SqliteStore, SubjectRef};

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn lfw(name: &str, number: u32) -> NamedImage {
    let path = shared().join(format!(
        "data/lfw/lfw-deepfunneled/{name}/{name}_{number:04}.jpg"
    ));
    NamedImage {
        name: path.display().to_string(),
        bytes: std::fs::read(&path).unwrap(),
    }
}

/// A service over `analyzers` analyzers (one thread each) and a SQLite file in `directory`.
fn service_with(
    directory: &tempfile::TempDir,
    analyzers: usize,
) -> (FaceService, Arc<SqliteStore>) {
    let config = VigilConfig {
        models_dir: shared().join("models"),
        threads: 1,
        ..VigilConfig::default()
    };
    let analyzers: Vec<_> = (0..analyzers)
        .map(|_| Arc::new(FaceAnalyzer::new(AnalyzerSettings::from_config(&config)).unwrap()))
        .collect();
    let calibration = builtin_table(analyzers[0].recognizer_model().as_str()).unwrap();
    let store = Arc::new(SqliteStore::open(directory.path().join("vigil.db")).unwrap());
    let service = FaceService::with_analyzers(
        analyzers,
        store.clone(),
        calibration,
        // These tests read scores at a loose threshold (0.5), which the default ceiling refuses.
        MatchingConfig {
            max_false_match_rate: 0.5,
            ..MatchingConfig::default()
        },
        DecodeLimits::default(),
    )
    .unwrap();
    (service, store)
}

fn service(directory: &tempfile::TempDir) -> (FaceService, Arc<SqliteStore>) {
    service_with(directory, 1)
}

fn jpeg(image: &image::RgbImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 92)
        .encode_image(image)
        .unwrap();
    bytes
}

#[test]
fn enrolled_person_is_identified_from_an_unseen_photo_with_its_false_match_rate() {
    let directory = tempfile::tempdir().unwrap();
    let (service, _) = service(&directory);
    service
        .enroll(
            SubjectRef::ByName("Colin Powell".into()),
            None,
            &[lfw("Colin_Powell", 1), lfw("Colin_Powell", 2)],
        )
        .unwrap();
    service
        .enroll(
            SubjectRef::ByName("Tony Blair".into()),
            None,
            &[lfw("Tony_Blair", 1)],
        )
        .unwrap();
    let report = service
        .identify(&lfw("Colin_Powell", 10).bytes, None, None)
        .unwrap();
    let top = &report.faces[0].candidates[0];
    assert_eq!(top.subject_name, "Colin Powell");
    assert!(top.false_match_rate <= MatchingConfig::default().false_match_rate);
    assert!(top.expected_false_candidates <= top.false_match_rate * 3.0 + 1e-12);
    assert_eq!(report.gallery_templates, 3);
}

#[test]
fn candidates_above_the_false_match_rate_are_never_returned() {
    let directory = tempfile::tempdir().unwrap();
    let (service, _) = service(&directory);
    service
        .enroll(
            SubjectRef::ByName("Tony Blair".into()),
            None,
            &[lfw("Tony_Blair", 1)],
        )
        .unwrap();
    // a different person: any candidate returned would be a false match
    for (name, number) in [
        ("Colin_Powell", 1),
        ("George_W_Bush", 1),
        ("Serena_Williams", 1),
    ] {
        let report = service
            .identify(&lfw(name, number).bytes, Some(5), None)
            .unwrap();
        for face in &report.faces {
            for candidate in &face.candidates {
                assert!(candidate.false_match_rate <= report.false_match_rate_threshold);
                assert!(candidate.score >= report.score_threshold);
            }
        }
        let centre = &report.faces[0];
        assert!(centre.candidates.is_empty(), "{name} matched Tony Blair");
    }
    // with the loosest threshold the same search may return him, with his rate shown
    let loose = service
        .identify(&lfw("Colin_Powell", 1).bytes, Some(5), Some(0.5))
        .unwrap();
    for candidate in &loose.faces[0].candidates {
        assert!(candidate.false_match_rate <= 0.5);
    }
}

#[test]
fn verification_separates_same_and_different_people() {
    let directory = tempfile::tempdir().unwrap();
    let (service, _) = service(&directory);
    let same = service
        .verify(
            &lfw("Serena_Williams", 1).bytes,
            &lfw("Serena_Williams", 2).bytes,
        )
        .unwrap();
    assert!(same.same_person, "score {}", same.score);
    let different = service
        .verify(
            &lfw("Serena_Williams", 1).bytes,
            &lfw("Tony_Blair", 1).bytes,
        )
        .unwrap();
    assert!(!different.same_person);
    assert!(different.false_match_rate > same.false_match_rate);
}

#[test]
fn failed_enrolment_changes_nothing_stored() {
    let directory = tempfile::tempdir().unwrap();
    let (service, store) = service(&directory);
    service
        .enroll(
            SubjectRef::ByName("Tony Blair".into()),
            None,
            &[lfw("Tony_Blair", 1)],
        )
        .unwrap();
    let subjects_before = store.count_subjects().unwrap();
    let grey = image::RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128]));
    let cases = vec![
        NamedImage {
            name: "empty.jpg".into(),
            bytes: Vec::new(),
        },
        NamedImage {
            name: "no-face.jpg".into(),
            bytes: jpeg(&grey),
        },
        NamedImage {
            name: "truncated.jpg".into(),
            bytes: lfw("Tony_Blair", 2).bytes[..2000].to_vec(),
        },
    ];
    for bad in cases {
        let result = service.enroll(
            SubjectRef::ByName("Someone New".into()),
            None,
            &[lfw("Colin_Powell", 1), bad.clone()],
        );
        assert!(result.is_err(), "{} was accepted", bad.name);
        assert_eq!(store.count_subjects().unwrap(), subjects_before);
        assert!(store.subject_by_name("Someone New").unwrap().is_none());
        assert_eq!(service.gallery_templates(), 1);
    }
}

#[test]
fn a_face_too_small_to_trust_yields_no_name() {
    let directory = tempfile::tempdir().unwrap();
    let (service, _) = service(&directory);
    service
        .enroll(
            SubjectRef::ByName("Colin Powell".into()),
            None,
            &[lfw("Colin_Powell", 1)],
        )
        .unwrap();
    let photo = image::load_from_memory(&lfw("Colin_Powell", 2).bytes)
        .unwrap()
        .to_rgb8();
    // the face shrinks to about 20 pixels wide on a larger canvas
    let small = image::imageops::resize(&photo, 50, 50, image::imageops::FilterType::Triangle);
    let mut canvas = image::RgbImage::from_pixel(400, 400, image::Rgb([90, 90, 90]));
    image::imageops::overlay(&mut canvas, &small, 175, 175);
    match service.identify(&jpeg(&canvas), None, None) {
        Ok(report) => {
            for face in &report.faces {
                if !face.face.quality.usable {
                    assert!(face.candidates.is_empty());
                }
            }
            assert!(report
                .faces
                .iter()
                .all(|f| f.candidates.is_empty() || f.face.quality.usable));
        }
        Err(ServiceError::NoFace) => {}
        Err(other) => panic!("unexpected error {other}"),
    }
    let enrol = service.enroll(
        SubjectRef::ByName("Tiny".into()),
        None,
        &[NamedImage {
            name: "tiny.jpg".into(),
            bytes: jpeg(&canvas),
        }],
    );
    assert!(matches!(
        enrol,
        Err(ServiceError::NoUsableFace { .. }) | Err(ServiceError::NoFace)
    ));
}

#[test]
fn deleted_subject_is_gone_from_store_and_search() {
    let directory = tempfile::tempdir().unwrap();
    let (service, store) = service(&directory);
    let report = service
        .enroll(
            SubjectRef::ByName("Colin Powell".into()),
            None,
            &[lfw("Colin_Powell", 1)],
        )
        .unwrap();
    let id = vigil_base::SubjectId(report.subject.id);
    assert_eq!(service.delete_subject(id).unwrap(), 1);
    assert!(store.subject(id).unwrap().is_none());
    let after = service
        .identify(&lfw("Colin_Powell", 2).bytes, None, Some(0.5))
        .unwrap();
    assert!(after.faces.iter().all(|f| f.candidates.is_empty()));
    assert!(matches!(
        service.delete_subject(id),
        Err(ServiceError::NotFound(_))
    ));
}

#[test]
fn gallery_is_rebuilt_from_the_store_on_restart() {
    let directory = tempfile::tempdir().unwrap();
    {
        let (service, _) = service(&directory);
        service
            .enroll(
                SubjectRef::ByName("Colin Powell".into()),
                None,
                &[lfw("Colin_Powell", 1)],
            )
            .unwrap();
    }
    let (restarted, _) = service(&directory);
    assert_eq!(restarted.gallery_templates(), 1);
    let report = restarted
        .identify(&lfw("Colin_Powell", 3).bytes, None, None)
        .unwrap();
    assert_eq!(report.faces[0].candidates[0].subject_name, "Colin Powell");
}

#[test]
fn a_photo_of_fifty_faces_is_analysed_whole() {
    let directory = tempfile::tempdir().unwrap();
    let (service, _) = service(&directory);
    // a 10×5 grid of LFW faces, 200 px each
    let identities: Vec<String> = std::fs::read_dir(shared().join("data/lfw/lfw-deepfunneled"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .take(50)
        .collect();
    let mut canvas = image::RgbImage::from_pixel(2000, 1000, image::Rgb([100, 100, 100]));
    for (i, identity) in identities.iter().enumerate() {
        let path = shared().join(format!(
            "data/lfw/lfw-deepfunneled/{identity}/{identity}_0001.jpg"
        ));
        let face = image::open(path).unwrap().to_rgb8();
        let face = image::imageops::crop_imm(&face, 25, 25, 200, 200).to_image();
        image::imageops::overlay(
            &mut canvas,
            &face,
            (i % 10) as i64 * 200,
            (i / 10) as i64 * 200,
        );
    }
    let report = service.detect(&jpeg(&canvas)).unwrap();
    assert!(
        report.faces.len() >= 48,
        "found {} faces",
        report.faces.len()
    );
}

#[test]
fn concurrent_requests_on_several_analyzers_agree_with_one_at_a_time() {
    let directory = tempfile::tempdir().unwrap();
    let (service, _) = service_with(&directory, 2);
    assert_eq!(service.concurrent_analyses(), 2);
    service
        .enroll(
            SubjectRef::ByName("Colin Powell".into()),
            None,
            &[lfw("Colin_Powell", 1)],
        )
        .unwrap();
    let probes: Vec<NamedImage> = (2..8).map(|n| lfw("Colin_Powell", n)).collect();
    let sequential: Vec<f32> = probes
        .iter()
        .map(|p| service.identify(&p.bytes, None, Some(0.5)).unwrap().faces[0].candidates[0].score)
        .collect();
    let concurrent: Vec<f32> = std::thread::scope(|scope| {
        let handles: Vec<_> = probes
            .iter()
            .map(|p| {
                let service = &service;
                scope.spawn(move || {
                    service.identify(&p.bytes, None, Some(0.5)).unwrap().faces[0].candidates[0]
                        .score
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(sequential, concurrent);
}
