//! Motion gate and tracker together, without models: a person who walks in and then stands
//! still keeps one track while detection is mostly skipped.

use vigil_infer::{BoundingBox, RgbView};
use vigil_track::{EndReason, FaceObservation, MotionGate, TrackConfig, Tracker};

const WIDTH: usize = 320;
const HEIGHT: usize = 180;
const FRAME_MS: i64 = 100;

/// A grey frame with a bright 40×40 "face" whose top-left corner is at `x`.
fn frame_with_face_at(x: usize) -> Vec<u8> {
    let mut rgb = vec![90u8; WIDTH * HEIGHT * 3];
    for row in 60..100 {
        for column in x..x + 40 {
            let i = (row * WIDTH + column) * 3;
            rgb[i..i + 3].copy_from_slice(&[230, 200, 180]);
        }
    }
    rgb
}

/// What a detector would report for that frame.
fn detection_at(x: usize) -> FaceObservation<()> {
    FaceObservation {
        bbox: BoundingBox {
            x1: x as f32,
            y1: 60.0,
            x2: x as f32 + 40.0,
            y2: 100.0,
        },
        landmarks: [[x as f32 + 20.0, 80.0]; 5],
        detector_score: 0.9,
        quality_score: 0.5,
        usable: false,
        embedding: None,
        payload: (),
    }
}

#[test]
fn a_person_standing_still_keeps_one_track_while_detection_is_skipped() {
    let config = TrackConfig::default();
    let mut gate = MotionGate::new(config.motion.clone()).unwrap();
    let mut tracker = Tracker::new(config.tracker.clone()).unwrap();
    let mut finished = Vec::new();
    let mut detections = 0;
    // Two seconds of walking in, then thirty seconds standing still.
    for step in 0..320i64 {
        let x = 20 + 5 * step.min(20) as usize;
        let rgb = frame_with_face_at(x);
        let frame = RgbView {
            width: WIDTH as u32,
            height: HEIGHT as u32,
            rgb: &rgb,
        };
        let at_ms = step * FRAME_MS;
        let decision = gate.check(frame, at_ms, tracker.has_tracks()).unwrap();
        if decision.detect {
            detections += 1;
            finished.extend(tracker.update(at_ms, vec![detection_at(x)]));
        } else {
            finished.extend(tracker.update_static(at_ms));
        }
    }
    println!("{detections} of 320 frames detected");
    assert!(finished.is_empty(), "{finished:#?}");
    // Walking and settling into the background take a few seconds of every-frame detection;
    // after that only the keep-alive detections (one a second) run.
    assert!(detections < 80, "{detections} detections in 320 frames");
    finished.extend(tracker.flush(32_000));
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].end_reason, EndReason::Flush);
    assert_eq!(finished[0].observations, detections);
}
