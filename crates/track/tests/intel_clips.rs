//! The four Intel sample clips through the whole analysis loop (motion gate, the default
//! detector and recognizer, the tracker with its default configuration): one finished track
//! per person, none split.

mod common;

use common::{FaceCrop, RunOptions};
use std::time::Instant;
use vigil_infer::FaceAnalyzer;
use vigil_track::{EndReason, FinishedTrack, TrackConfig};

/// Clip and number of people in it (counted by eye on the frames: the three standing in
/// "walking-and-pause", the two walking towards the camera in "walking").
const CLIPS: [(&str, usize); 4] = [
    ("face-demographics-walking-and-pause.mp4", 3),
    ("face-demographics-walking.mp4", 2),
    ("head-pose-face-detection-female-and-male.mp4", 2),
    ("head-pose-face-detection-male.mp4", 1),
];

/// Frames analysed per second: a realistic sampling rate for face analytics that keeps the
/// test short (the clips are 12.5 fps).
const ANALYSIS_FPS: u32 = 5;

/// Everyone is in view from the first frame to the last, so an unsplit track spans the clip
/// up to a couple of sampled frames at either end.
const SPAN_SLACK_MS: i64 = 2 * 1000 / ANALYSIS_FPS as i64;

fn run(
    analyzer: &FaceAnalyzer,
    clip: &str,
    people: usize,
    options: &RunOptions,
) -> (Vec<FinishedTrack<FaceCrop>>, i64) {
    let path = common::shared().join("data/video").join(clip);
    let started = Instant::now();
    let mut last_frame_ms = 0;
    let (finished, stats) = common::track_video(
        analyzer,
        &TrackConfig::default(),
        &path,
        options,
        |at_ms, _, _| last_frame_ms = at_ms,
    )
    .unwrap_or_else(|e| panic!("{clip}: {e}"));
    println!(
        "{clip} (blackout {:?}): {} tracks for {people} people; {} frames, {} detected, {} faces, \
         {:.1} s",
        options.blackout_ms,
        finished.len(),
        stats.frames,
        stats.detected_frames,
        stats.faces,
        started.elapsed().as_secs_f64()
    );
    for track in &finished {
        println!("  {}", common::describe(track));
    }
    (finished, last_frame_ms)
}

fn assert_one_unsplit_track_per_person(
    clip: &str,
    people: usize,
    finished: &[FinishedTrack<FaceCrop>],
    last_frame_ms: i64,
) {
    assert_eq!(
        finished.len(),
        people,
        "{clip}: {} tracks for {people} people",
        finished.len()
    );
    for track in finished {
        // The clips are far shorter than max_duration_ms and everyone stays: one segment each,
        // ended by the flush at the end of the clip.
        assert_eq!(
            (track.segment, track.end_reason),
            (0, EndReason::Flush),
            "{clip}"
        );
        assert!(
            track.first_seen_ms <= SPAN_SLACK_MS
                && track.last_seen_ms >= last_frame_ms - SPAN_SLACK_MS,
            "{clip}: track {} covers only {}–{} ms",
            track.track_id,
            track.first_seen_ms,
            track.last_seen_ms
        );
        assert!(
            !track.top_embeddings.is_empty(),
            "{clip}: no embedding kept"
        );
        assert!(track.trajectory.len() >= 2);
    }
}

#[test]
fn each_person_in_the_intel_clips_is_one_unsplit_track() {
    let analyzer = common::analyzer(2).expect("models and onnxruntime (see scripts/dev env)");
    let options = RunOptions {
        fps: ANALYSIS_FPS,
        max_width: None,
        blackout_ms: None,
    };
    let runs: Vec<_> = CLIPS
        .iter()
        .map(|&(clip, people)| (clip, people, run(&analyzer, clip, people, &options)))
        .collect();
    for (clip, people, (finished, last_frame_ms)) in runs {
        assert_one_unsplit_track_per_person(clip, people, &finished, last_frame_ms);
    }

    // Walkers hidden for a second (no face found on five detection frames) come back on
    // their predicted paths: their faces are too small to be usable, so motion alone must
    // carry them across the gap.
    let (clip, people) = CLIPS[1];
    let hidden = RunOptions {
        blackout_ms: Some(1000..2000),
        ..options
    };
    let (finished, last_frame_ms) = run(&analyzer, clip, people, &hidden);
    assert_one_unsplit_track_per_person(clip, people, &finished, last_frame_ms);
}
