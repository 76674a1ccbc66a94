//! The composed LFW video has the promised format and ground truth; damaged copies do not decode.

use vigil_testbed::lfw_video::{self, Scene, ENROLLED_PEOPLE, UNENROLLED_PEOPLE};
use vigil_testbed::{corrupt_copy, count_frames, lfw_dir, probe, video_dir, Corruption};

#[test]
fn composed_lfw_video_matches_its_ground_truth() {
    let lfw = lfw_dir().unwrap();
    let scene = Scene::standard(&lfw).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let truth = lfw_video::compose(&scene, &dir.path().join("lfw.mp4")).unwrap();

    let video = probe(&truth.video.display().to_string(), &[]).unwrap();
    assert_eq!(
        (video.codec.as_str(), video.width, video.height),
        ("h264", 1280, 720)
    );
    assert_eq!(video.frame_count, Some(186));
    let duration = video.duration_seconds.unwrap_or(0.0);
    assert!((duration - 15.5).abs() < 0.1, "duration {duration}");
    assert_eq!(
        count_frames(&truth.video.display().to_string(), &[], None).unwrap(),
        186
    );

    let mut people: Vec<&str> = ENROLLED_PEOPLE.to_vec();
    people.extend(UNENROLLED_PEOPLE);
    assert_eq!(scene.people(), people);
    assert!(scene.on_screen(0).is_empty());
    assert_eq!(scene.on_screen(12)[0].person, "George_W_Bush");
    assert_eq!(scene.on_screen(scene.frame_count - 12).len(), 2);

    for person in ENROLLED_PEOPLE {
        let photos = lfw_video::enrolment_photos(&lfw, &scene, person, 3).unwrap();
        assert_eq!(photos.len(), 3);
        for shown in scene.photos_of(person) {
            assert!(
                !photos.iter().any(|p| p == shown),
                "{person}: {}",
                shown.display()
            );
        }
    }
    assert!(truth.to_json().contains("Gerhard_Schroeder_0001.jpg"));

    // Deterministic: the same scene gives the same bytes.
    let again = lfw_video::compose(&scene, &dir.path().join("again.mp4")).unwrap();
    assert_eq!(
        std::fs::read(&truth.video).unwrap(),
        std::fs::read(&again.video).unwrap()
    );
}

#[test]
fn damaged_copies_fail_to_decode_fully() {
    let source = video_dir()
        .unwrap()
        .join("head-pose-face-detection-male.mp4");
    let dir = tempfile::tempdir().unwrap();
    let whole = count_frames(&source.display().to_string(), &[], None).unwrap();
    assert_eq!(whole, 62);

    let truncated = dir.path().join("truncated.mp4");
    corrupt_copy(
        &source,
        &truncated,
        Corruption::Truncate { keep_fraction: 0.5 },
    )
    .unwrap();
    assert_eq!(
        std::fs::metadata(&truncated).unwrap().len(),
        std::fs::metadata(&source).unwrap().len() / 2
    );
    assert!(count_frames(&truncated.display().to_string(), &[], None).is_err());

    let overwritten = dir.path().join("overwritten.mp4");
    let how = Corruption::Overwrite {
        ranges: 8,
        range_bytes: 512,
        seed: 7,
    };
    corrupt_copy(&source, &overwritten, how).unwrap();
    assert!(count_frames(&overwritten.display().to_string(), &[], None).is_err());
    let twice = dir.path().join("twice.mp4");
    corrupt_copy(&source, &twice, how).unwrap();
    assert_eq!(
        std::fs::read(&overwritten).unwrap(),
        std::fs::read(&twice).unwrap()
    );
}
