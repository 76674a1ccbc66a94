use super::*;
use std::rc::Rc;
use vigil_base::ModelId;

const FRAME_MS: i64 = 100;

fn embedding(direction: usize) -> Embedding {
    let mut values = vec![0.05f32; 8];
    values[direction] = 1.0;
    Embedding::normalised(ModelId::new("test_model"), values).unwrap()
}

fn face<P>(cx: f32, cy: f32, person: Option<usize>, payload: P) -> FaceObservation<P> {
    FaceObservation {
        bbox: BoundingBox::from_centre(cx, cy, 60.0, 72.0),
        landmarks: [[cx, cy]; 5],
        detector_score: 0.9,
        quality_score: 0.5,
        usable: person.is_some(),
        embedding: person.map(embedding),
        payload,
    }
}

fn tracker<P>() -> Tracker<P> {
    Tracker::new(TrackerConfig::default()).unwrap()
}

/// Feeds one face per frame along `x(step)`, returning everything that finished.
fn walk(
    tracker: &mut Tracker<u32>,
    steps: std::ops::Range<i64>,
    x: impl Fn(i64) -> f32,
    person: Option<usize>,
) -> Vec<FinishedTrack<u32>> {
    steps
        .flat_map(|step| tracker.update(step * FRAME_MS, vec![face(x(step), 200.0, person, 0)]))
        .collect()
}

#[test]
fn a_walking_face_is_one_track_confirmed_after_min_hits() {
    let mut tracker = tracker();
    let mut states = Vec::new();
    for step in 0..20 {
        tracker.update(
            step * FRAME_MS,
            vec![face(100.0 + 12.0 * step as f32, 200.0, Some(0), 0)],
        );
        states.push(tracker.active_tracks()[0].state);
    }
    assert_eq!(
        &states[..3],
        &[
            TrackState::Tentative,
            TrackState::Tentative,
            TrackState::Confirmed
        ]
    );
    let finished = tracker.flush(20 * FRAME_MS);
    assert_eq!(finished.len(), 1);
    let track = &finished[0];
    assert_eq!(track.track_id, TrackId(1));
    assert_eq!(track.observations, 20);
    assert_eq!((track.first_seen_ms, track.last_seen_ms), (0, 1900));
    assert_eq!(track.end_reason, EndReason::Flush);
    assert_eq!(track.trajectory.len(), 20);
    assert!(!tracker.has_tracks());
}

#[test]
fn unconfirmed_blips_are_never_reported() {
    let mut tracker = tracker();
    tracker.update(0, vec![face(100.0, 100.0, Some(0), 0u32)]);
    tracker.update(100, vec![face(102.0, 100.0, Some(0), 0)]);
    assert!(tracker.update(200, Vec::new()).is_empty());
    assert!(!tracker.has_tracks(), "a missed tentative track is dropped");
    assert!(tracker.flush(300).is_empty());
}

#[test]
fn crossing_paths_keep_their_identities() {
    // Two faces of the same size on the same row walk through each other; at the crossing the
    // boxes coincide and only appearance tells them apart.
    let mut tracker = tracker();
    let mut finished = Vec::new();
    for step in 0..30 {
        let offset = 20.0 * step as f32;
        let left_to_right = face(100.0 + offset, 200.0, Some(0), 0u32);
        let right_to_left = face(680.0 - offset, 200.0, Some(1), 1u32);
        finished.extend(tracker.update(step * FRAME_MS, vec![left_to_right, right_to_left]));
    }
    finished.extend(tracker.flush(30 * FRAME_MS));
    assert_eq!(finished.len(), 2, "{finished:#?}");
    for track in &finished {
        let moving_right = track.best_shot.observation.payload == 0;
        let xs: Vec<f32> = track.trajectory.iter().map(|p| p.center[0]).collect();
        assert!(
            xs.windows(2).all(|w| (w[1] > w[0]) == moving_right),
            "track {} swapped identity: {xs:?}",
            track.track_id
        );
        assert_eq!(track.observations, 30);
    }
}

#[test]
fn appearance_veto_keeps_a_stranger_off_an_existing_track() {
    let mut tracker = tracker();
    walk(&mut tracker, 0..5, |_| 300.0, Some(0));
    // Someone else stands exactly where the first person was.
    tracker.update(500, vec![face(300.0, 200.0, Some(1), 0)]);
    let tracks = tracker.active_tracks();
    assert_eq!(tracks.len(), 2, "{tracks:#?}");
    assert_eq!(tracks[0].state, TrackState::Lost);
    assert_eq!(tracks[1].state, TrackState::Tentative);
}

#[test]
fn without_embeddings_overlap_alone_associates() {
    let mut tracker = tracker();
    let finished = walk(&mut tracker, 0..10, |step| 100.0 + 10.0 * step as f32, None);
    assert!(finished.is_empty());
    assert_eq!(tracker.flush(1000).len(), 1);
}

#[test]
fn a_short_occlusion_on_the_predicted_path_does_not_split_the_track() {
    let mut tracker = tracker();
    let x = |step: i64| 100.0 + 15.0 * step as f32;
    let mut finished = walk(&mut tracker, 0..10, x, None);
    // Hidden for a second: detection frames without the face.
    for step in 10..20 {
        finished.extend(tracker.update(step * FRAME_MS, Vec::new()));
    }
    assert_eq!(tracker.active_tracks()[0].state, TrackState::Lost);
    finished.extend(walk(&mut tracker, 20..30, x, None));
    finished.extend(tracker.flush(3000));
    assert_eq!(finished.len(), 1, "{finished:#?}");
    assert_eq!(finished[0].observations, 20);
}

#[test]
fn a_face_that_reappears_elsewhere_is_reidentified_by_appearance() {
    let mut tracker = tracker();
    let mut finished = walk(&mut tracker, 0..10, |_| 100.0, Some(0));
    for step in 10..18 {
        finished.extend(tracker.update(step * FRAME_MS, Vec::new()));
    }
    // Far from where it was lost: no overlap, only the face says who it is.
    finished.extend(walk(&mut tracker, 18..25, |_| 600.0, Some(0)));
    finished.extend(tracker.flush(2500));
    assert_eq!(finished.len(), 1, "{finished:#?}");
    assert_eq!(finished[0].observations, 17);
    assert!(
        finished[0].merged_track_ids.is_empty(),
        "matched directly, not merged"
    );
}

#[test]
fn a_new_track_that_turns_out_to_be_a_lost_person_is_merged_into_it() {
    let mut tracker = tracker();
    let mut finished = walk(&mut tracker, 0..10, |_| 100.0, Some(0));
    for step in 10..15 {
        finished.extend(tracker.update(step * FRAME_MS, Vec::new()));
    }
    // Back elsewhere, turned away (unusable, no appearance): a new track starts…
    finished.extend(walk(&mut tracker, 15..20, |_| 600.0, None));
    assert_eq!(tracker.active_tracks().len(), 2);
    // …and once the face is usable it proves to be the lost person.
    finished.extend(walk(&mut tracker, 20..25, |_| 600.0, Some(0)));
    assert_eq!(tracker.active_tracks().len(), 1);
    finished.extend(tracker.flush(2500));
    assert_eq!(finished.len(), 1, "{finished:#?}");
    let track = &finished[0];
    assert_eq!(track.track_id, TrackId(1));
    assert_eq!(track.merged_track_ids, vec![TrackId(2)]);
    assert_eq!(track.observations, 20);
    assert_eq!((track.first_seen_ms, track.last_seen_ms), (0, 2400));
}

#[test]
fn a_different_person_appearing_after_a_loss_is_not_merged() {
    let mut tracker = tracker();
    let mut finished = walk(&mut tracker, 0..10, |_| 100.0, Some(0));
    finished.extend(walk(&mut tracker, 10..20, |_| 600.0, Some(1)));
    finished.extend(tracker.flush(2000));
    assert_eq!(finished.len(), 2, "{finished:#?}");
}

#[test]
fn a_track_ends_after_max_age_of_missed_detection_frames() {
    let mut tracker = tracker();
    walk(&mut tracker, 0..3, |_| 100.0, None);
    let mut ended_at = None;
    for step in 3..40 {
        let finished = tracker.update(step * FRAME_MS, Vec::new());
        if !finished.is_empty() {
            assert_eq!(finished[0].end_reason, EndReason::Lost);
            assert_eq!(finished[0].last_seen_ms, 200);
            ended_at = Some(step * FRAME_MS);
            break;
        }
    }
    // Last seen at 200 ms; more than max_age_ms (2000) of detection time later.
    assert_eq!(ended_at, Some(2300));
}

#[test]
fn static_frames_do_not_age_tracks_but_detection_frames_do() {
    let mut tracker = tracker();
    walk(&mut tracker, 0..5, |_| 100.0, None);
    // Ten seconds of a static scene: detection skipped, the track must survive.
    for step in 5..105 {
        assert!(tracker.update_static(step * FRAME_MS).is_empty());
    }
    assert_eq!(tracker.active_tracks()[0].state, TrackState::Confirmed);
    // A keep-alive detection finds the face where it was.
    assert!(walk(&mut tracker, 105..106, |_| 100.0, None).is_empty());
    assert_eq!(tracker.active_tracks()[0].observations, 6);
    // Keep-alive detections that miss the face age it by the time since the previous
    // detection frame: after more than max_age_ms (2 s) of misses it ends, even though the
    // frames between were static (the person left and the scene went still).
    let mut finished = Vec::new();
    let mut ended_after = None;
    for second in 1..=5 {
        let base = 10_500 + second * 1000;
        for step in 1..10 {
            finished.extend(tracker.update_static(base - 1000 + step * FRAME_MS));
        }
        finished.extend(tracker.update(base, Vec::new()));
        if !finished.is_empty() && ended_after.is_none() {
            ended_after = Some(second);
        }
    }
    assert_eq!(
        ended_after,
        Some(3),
        "ends at the third missed keep-alive (3 s > 2 s)"
    );
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].end_reason, EndReason::Lost);
    assert!(tracker.active_tracks().is_empty());
}

#[test]
fn static_frames_stop_the_predicted_motion() {
    let mut tracker = tracker();
    walk(&mut tracker, 0..10, |step| 100.0 + 20.0 * step as f32, None);
    for step in 10..40 {
        tracker.update_static(step * FRAME_MS);
    }
    // The walker stopped where last seen; three seconds of velocity would have moved the
    // prediction 600 px away.
    let finished = walk(&mut tracker, 40..41, |_| 280.0, None);
    assert!(finished.is_empty());
    assert_eq!(tracker.active_tracks().len(), 1);
    assert_eq!(tracker.active_tracks()[0].observations, 11);
}

#[test]
fn long_tracks_are_cut_into_segments_under_one_id() {
    let config = TrackerConfig {
        max_duration_ms: 1000,
        ..TrackerConfig::default()
    };
    let mut tracker = Tracker::new(config).unwrap();
    let mut finished = walk(&mut tracker, 0..25, |_| 100.0, Some(0));
    finished.extend(tracker.flush(2500));
    let segments: Vec<(TrackId, u32, EndReason, i64, i64)> = finished
        .iter()
        .map(|t| {
            (
                t.track_id,
                t.segment,
                t.end_reason,
                t.first_seen_ms,
                t.last_seen_ms,
            )
        })
        .collect();
    assert_eq!(
        segments,
        vec![
            (TrackId(1), 0, EndReason::MaxDuration, 0, 1000),
            (TrackId(1), 1, EndReason::MaxDuration, 1100, 2100),
            (TrackId(1), 2, EndReason::Flush, 2200, 2400),
        ]
    );
}

#[test]
fn best_shot_is_the_best_usable_face_and_only_its_payload_is_kept() {
    let payload = Rc::new(());
    let mut tracker: Tracker<(usize, Rc<()>)> = tracker();
    let qualities = [0.3, 0.9, 0.2, 0.95, 0.7, 0.99];
    for (step, quality) in qualities.into_iter().enumerate() {
        let mut observation = face(100.0, 200.0, Some(0), (step, payload.clone()));
        observation.quality_score = quality;
        // The sharpest face failed the gate (e.g. turned too far): never the best shot.
        observation.usable = step != 5;
        tracker.update(step as i64 * FRAME_MS, vec![observation]);
    }
    assert_eq!(
        Rc::strong_count(&payload),
        2,
        "only the best shot's payload is held"
    );
    let finished = tracker.flush(1000);
    let track = &finished[0];
    assert_eq!(track.best_shot.observation.payload.0, 3);
    assert_eq!(track.best_shot.at_ms, 300);
    let top: Vec<(f32, bool)> = track
        .top_embeddings
        .iter()
        .map(|e| (e.quality_score, e.usable))
        .collect();
    assert_eq!(top, vec![(0.95, true), (0.9, true), (0.7, true)]);
}

#[test]
fn without_usable_faces_the_best_detector_score_is_the_best_shot() {
    let mut tracker = tracker();
    for (step, score) in [0.7f32, 0.95, 0.8].into_iter().enumerate() {
        let mut observation = face(100.0, 200.0, None, step as u32);
        observation.detector_score = score;
        tracker.update(step as i64 * FRAME_MS, vec![observation]);
    }
    let finished = tracker.flush(300);
    assert_eq!(finished[0].best_shot.observation.payload, 1);
    assert!(finished[0].top_embeddings.is_empty());
}

#[test]
fn low_score_detections_extend_recent_tracks_but_never_start_one() {
    let mut tracker = tracker();
    let mut weak = face(100.0, 200.0, None, 0u32);
    weak.detector_score = 0.4;
    tracker.update(0, vec![weak.clone()]);
    assert!(!tracker.has_tracks());
    walk(&mut tracker, 1..5, |_| 300.0, None);
    let mut weak_there = face(302.0, 200.0, None, 0);
    weak_there.detector_score = 0.4;
    tracker.update(500, vec![weak_there]);
    let tracks = tracker.active_tracks();
    assert_eq!(tracks.len(), 1);
    assert_eq!(
        (tracks[0].state, tracks[0].observations),
        (TrackState::Confirmed, 5)
    );
}

#[test]
fn a_clock_that_steps_back_does_not_move_tracker_time_backwards() {
    let mut tracker = tracker();
    walk(&mut tracker, 10..15, |_| 100.0, None);
    tracker.update(200, vec![face(100.0, 200.0, None, 0)]);
    let finished = tracker.flush(0);
    assert_eq!(finished[0].last_seen_ms, 1400);
    assert_eq!(finished[0].observations, 6);
}

#[test]
fn the_same_input_gives_the_same_tracks() {
    let run = || {
        let mut tracker = tracker();
        let mut finished = Vec::new();
        for step in 0..40i64 {
            let mut faces = Vec::new();
            if step % 7 != 3 {
                faces.push(face(50.0 + 11.0 * step as f32, 150.0, Some(0), step as u32));
            }
            if step > 5 {
                faces.push(face(
                    700.0 - 9.0 * step as f32,
                    160.0,
                    Some(1),
                    100 + step as u32,
                ));
            }
            if step % 5 == 0 {
                faces.push(face(400.0, 400.0, None, 999));
            }
            finished.extend(tracker.update(step * FRAME_MS, faces));
        }
        finished.extend(tracker.flush(4000));
        finished
    };
    let first = run();
    assert_eq!(first.len(), 2, "{first:#?}");
    assert_eq!(first, run());
}

fn candidate(observation: &FaceObservation<u32>) -> FaceCandidate {
    FaceCandidate {
        bbox: observation.bbox,
        detector_score: observation.detector_score,
        quality_score: observation.quality_score,
        usable: observation.usable,
    }
}

/// Runs the embed-on-demand loop the pipeline runs: ask, embed only what was asked for, update.
fn walk_on_demand(
    tracker: &mut Tracker<u32>,
    steps: std::ops::Range<i64>,
    faces: impl Fn(i64) -> Vec<(f32, f32, usize)>,
) -> (usize, usize, Vec<FinishedTrack<u32>>) {
    let (mut seen, mut embedded, mut finished) = (0, 0, Vec::new());
    for step in steps {
        let observations: Vec<FaceObservation<u32>> = faces(step)
            .into_iter()
            .map(|(x, y, person)| face(x, y, Some(person), 0))
            .collect();
        let candidates: Vec<FaceCandidate> = observations.iter().map(candidate).collect();
        let wanted = tracker.embeddings_wanted(step * FRAME_MS, &candidates);
        let observations = observations
            .into_iter()
            .zip(wanted)
            .map(|(mut observation, wanted)| {
                seen += 1;
                if wanted {
                    embedded += 1;
                } else {
                    observation.embedding = None;
                }
                observation
            })
            .collect();
        finished.extend(tracker.update(step * FRAME_MS, observations));
    }
    (seen, embedded, finished)
}

#[test]
fn a_face_followed_by_motion_alone_is_embedded_only_when_it_can_change_the_answer() {
    let mut tracker = tracker();
    let (seen, embedded, _) = walk_on_demand(&mut tracker, 0..30, |step| {
        vec![(100.0 + 10.0 * step as f32, 200.0, 0)]
    });
    // the same quality on every frame: the track fills its top embeddings, one per
    // interval, and then nothing can enter them
    let top = TrackerConfig::default().top_embeddings;
    assert_eq!(seen, 30);
    assert_eq!(embedded, top, "embedded {embedded} of {seen}");
    let finished = tracker.flush(30 * FRAME_MS);
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].top_embeddings.len(), top);
    assert!(finished[0].top_embeddings.iter().all(|r| r.usable));
}

#[test]
fn unusable_faces_are_never_embedded_and_new_or_ambiguous_faces_always_are() {
    let empty = tracker::<u32>();
    let mut unusable = candidate(&face(100.0, 200.0, None, 0));
    unusable.usable = false;
    let new_face = candidate(&face(400.0, 200.0, Some(0), 0));
    assert_eq!(
        empty.embeddings_wanted(0, &[unusable, new_face]),
        vec![false, true]
    );

    // two people walking towards each other: while their boxes overlap both tracks, each
    // face is embedded (the appearance veto keeps them apart)
    let mut tracker = tracker::<u32>();
    let (_, _, _) = walk_on_demand(&mut tracker, 0..10, |step| {
        vec![
            (100.0 + 10.0 * step as f32, 200.0, 0),
            (400.0 - 10.0 * step as f32, 200.0, 1),
        ]
    });
    let step = 14;
    let crossing: Vec<FaceCandidate> = [
        face(100.0 + 10.0 * step as f32, 200.0, Some(0), 0),
        face(400.0 - 10.0 * step as f32, 200.0, Some(1), 0),
    ]
    .iter()
    .map(candidate)
    .collect();
    assert_eq!(
        tracker.embeddings_wanted(step * FRAME_MS, &crossing),
        vec![true, true]
    );
}

#[test]
fn a_better_face_is_embedded_after_the_interval() {
    let mut tracker = tracker::<u32>();
    walk_on_demand(&mut tracker, 0..10, |step| {
        vec![(100.0 + 10.0 * step as f32, 200.0, 0)]
    });
    let mut sharper = face(200.0, 200.0, Some(0), 0);
    sharper.quality_score = 0.9;
    assert_eq!(
        tracker.embeddings_wanted(10 * FRAME_MS, &[candidate(&sharper)]),
        vec![true]
    );
    let config = TrackerConfig {
        embed_every_face: true,
        ..TrackerConfig::default()
    };
    let everything = Tracker::<u32>::new(config).unwrap();
    assert_eq!(
        everything.embeddings_wanted(0, &[candidate(&face(1.0, 1.0, None, 0))]),
        vec![true]
    );
}
