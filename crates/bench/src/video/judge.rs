//! Who each sighting was: sightings judged against the scene's ground truth.

use std::collections::HashMap;
use vigil_pipeline::video::SightingView;
use vigil_testbed::lfw_video::{self, Scene};

/// A person who comes back within the tracker's `max_age_ms` of leaving is re-identified into
/// the same track, so one sighting is due for the whole chain of such crossings (the busy
/// scene's loop ends with George W Bush leaving 1 s before he starts the next loop). A chain is
/// named by its first crossing, `(repeat, index)` on the camera's session timeline.
struct Chains<'s> {
    scene: &'s Scene,
    loop_ms: i64,
    max_age_ms: i64,
}

impl Chains<'_> {
    fn at_ms(&self, repeat: i64, frame: u32) -> i64 {
        repeat * self.loop_ms + (frame as f64 * 1000.0 / self.scene.fps as f64).round() as i64
    }

    /// `later` starts within max_age of `earlier`'s end, and it is the same person.
    fn linked(&self, earlier: (i64, usize), later: (i64, usize)) -> bool {
        let (a, b) = (
            &self.scene.appearances[earlier.1],
            &self.scene.appearances[later.1],
        );
        let gap = self.at_ms(later.0, b.start_frame) - self.at_ms(earlier.0, a.end_frame);
        earlier != later && a.person == b.person && (0..=self.max_age_ms).contains(&gap)
    }

    fn neighbours(&self, repeat: i64) -> impl Iterator<Item = (i64, usize)> + '_ {
        (repeat - 1..=repeat + 1)
            .filter(|r| *r >= 0)
            .flat_map(|r| (0..self.scene.appearances.len()).map(move |i| (r, i)))
    }

    fn next(&self, repeat: i64, index: usize) -> Option<(i64, usize)> {
        self.neighbours(repeat)
            .find(|&later| self.linked((repeat, index), later))
    }

    fn first(&self, mut repeat: i64, mut index: usize) -> (i64, usize) {
        // a chain is short (a scene's loop holds each person a few times at most)
        for _ in 0..self.scene.appearances.len() * 3 {
            match self
                .neighbours(repeat)
                .find(|&earlier| self.linked(earlier, (repeat, index)))
            {
                Some((r, i)) => (repeat, index) = (r, i),
                None => break,
            }
        }
        (repeat, index)
    }
}

/// A crossing is expected in a window when its sighting is due this far inside it.
const DUE_MARGIN_MS: i64 = 1000;

/// Sightings judged against the scene's ground truth.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Judgement {
    /// Crossings whose track ends (last frame plus the tracker's max_age) more than
    /// `DUE_MARGIN_MS` inside the measured window: sightings the window must publish.
    pub(super) expected: usize,
    /// Crossings that yielded a sighting (each counted once).
    pub(super) found: usize,
    /// Expected crossings with no sighting.
    pub(super) missed: usize,
    /// The top candidate is the person who crossed; for the unenrolled person, no candidate.
    pub(super) named: usize,
    /// Another person named (or anyone, for the unenrolled person).
    pub(super) wrong: usize,
    /// An enrolled person with no candidate.
    pub(super) unnamed: usize,
    /// Further sightings of a crossing already found (a track split in two).
    pub(super) duplicates: usize,
    /// Sightings that match no crossing in time and place.
    pub(super) unexplained: usize,
}

/// Places each sighting in the scene: its best shot's time on the camera's session timeline
/// (modulo the scene's loop) and its box centre pick the crossing, so a sighting is judged
/// by who really was there, not by whether it names someone.
pub(super) fn judge<'v>(
    scene: &Scene,
    origins: &HashMap<String, i64>,
    window_ms: std::ops::Range<i64>,
    max_age_ms: i64,
    sightings: impl Iterator<Item = &'v SightingView>,
) -> Judgement {
    let loop_ms = (scene.duration_seconds() * 1000.0).round().max(1.0) as i64;
    let fps = scene.fps as f64;
    let tolerance_frames = (0.5 * fps).round() as i64;
    let mut judgement = Judgement::default();
    let chains = Chains {
        scene,
        loop_ms,
        max_age_ms,
    };
    // every crossing whose track may end inside the window, per camera
    let mut expected = std::collections::HashSet::new();
    for (camera, origin) in origins {
        let first = (window_ms.start - origin - loop_ms)
            .div_euclid(loop_ms)
            .max(0);
        let last = (window_ms.end - origin).div_euclid(loop_ms) + 1;
        for repeat in first..=last {
            for (index, appearance) in scene.appearances.iter().enumerate() {
                if chains.next(repeat, index).is_some() {
                    continue; // the chain's sighting is due when its last crossing ends
                }
                let ends = origin
                    + repeat * loop_ms
                    + (appearance.end_frame as f64 * 1000.0 / fps).round() as i64
                    + max_age_ms;
                // due well inside the window (a sighting follows its track's end within
                // about a second), so neither edge of the window decides
                if (window_ms.start + DUE_MARGIN_MS..window_ms.end - DUE_MARGIN_MS).contains(&ends)
                {
                    let (first_repeat, first_index) = chains.first(repeat, index);
                    expected.insert((camera.clone(), first_repeat, first_index));
                }
            }
        }
    }
    judgement.expected = expected.len();
    let mut seen = std::collections::HashSet::new();
    for sighting in sightings {
        let Some(origin) = origins.get(sighting.camera.as_str()) else {
            judgement.unexplained += 1;
            continue;
        };
        let since = sighting.best_at_ms - origin;
        let (repeat, scene_ms) = (since.div_euclid(loop_ms), since.rem_euclid(loop_ms));
        let frame = (scene_ms as f64 * fps / 1000.0).round() as i64;
        let to_scene = scene.width as f32 / sighting.frame_width.max(1) as f32;
        let [x1, y1, x2, y2] = sighting.bbox;
        let centre = ((x1 + x2) * 0.5 * to_scene, (y1 + y2) * 0.5 * to_scene);
        let nearest = scene
            .appearances
            .iter()
            .enumerate()
            .filter_map(|(index, appearance)| {
                let (start, end) = (
                    appearance.start_frame as i64,
                    appearance.end_frame as i64 - 1,
                );
                let clamped = frame.clamp(start, end.max(start));
                if (clamped - frame).abs() > tolerance_frames {
                    return None;
                }
                let [bx1, by1, bx2, by2] = appearance.face_box(clamped as u32)?;
                let (dx, dy) = ((bx1 + bx2) * 0.5 - centre.0, (by1 + by2) * 0.5 - centre.1);
                let distance = (dx * dx + dy * dy).sqrt();
                (distance < appearance.size_px as f32).then_some((distance, index))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let Some((_, index)) = nearest else {
            judgement.unexplained += 1;
            continue;
        };
        let (first_repeat, first_index) = chains.first(repeat, index);
        let chain = (
            sighting.camera.as_str().to_string(),
            first_repeat,
            first_index,
        );
        if !seen.insert(chain.clone()) {
            judgement.duplicates += 1;
            continue;
        }
        judgement.found += 1;
        expected.remove(&chain);
        let person = &scene.appearances[index].person;
        let top = sighting.candidates.first();
        if lfw_video::UNENROLLED_PEOPLE.contains(&person.as_str()) {
            if top.is_none() {
                judgement.named += 1;
            } else {
                judgement.wrong += 1;
            }
        } else {
            match top {
                Some(candidate) if candidate.subject_name == person.replace('_', " ") => {
                    judgement.named += 1
                }
                Some(_) => judgement.wrong += 1,
                None => judgement.unnamed += 1,
            }
        }
    }
    judgement.missed = expected.len();
    judgement
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use vigil_base::CameraId;
    use vigil_pipeline::video::SightingCandidateView;
    use vigil_testbed::lfw_video::{Appearance, Background};

    /// 10 fps, 12 s loop: Ann crosses at 1–3 s, Bob at 4–6 s, Ann again at 7–9 s (4 s after
    /// her first crossing: not a chain), then Ann at 9.5–9.9 s (back 0.5 s after leaving: one
    /// chain with the 7–9 s crossing).
    fn scene() -> Scene {
        let crossing = |person: &str, start: u32, end: u32, x: f32| Appearance {
            person: person.into(),
            photo: PathBuf::new(),
            start_frame: start,
            end_frame: end,
            from: (x, 300.0),
            to: (x, 300.0),
            size_px: 200,
        };
        Scene {
            width: 1280,
            height: 720,
            fps: 10,
            // 12 s: the next loop's Ann comes 3.1 s after the last one left, no chain
            frame_count: 120,
            background: Background::Gradient,
            appearances: vec![
                crossing("Ann_A", 10, 30, 300.0),
                crossing("Bob_B", 40, 60, 900.0),
                crossing("Ann_A", 70, 90, 300.0),
                crossing("Ann_A", 95, 99, 600.0),
            ],
        }
    }

    fn sighting(best_at_ms: i64, x: f32, name: Option<&str>) -> SightingView {
        SightingView {
            id: 1,
            camera: CameraId::parse("cam").unwrap(),
            track: 1,
            started_at_ms: best_at_ms,
            ended_at_ms: best_at_ms,
            best_at_ms,
            observations: 1,
            end_reason: "lost".into(),
            quality: 0.9,
            detector_score: 0.9,
            bbox: [x - 50.0, 250.0, x + 50.0, 350.0],
            frame_width: 1280,
            frame_height: 720,
            trajectory: Vec::new(),
            candidates: name
                .map(|n| SightingCandidateView {
                    subject_id: 1,
                    subject_name: n.into(),
                    score: 0.6,
                    false_match_rate: 1e-6,
                    false_match_rate_extrapolated: false,
                })
                .into_iter()
                .collect(),
            crop_url: String::new(),
        }
    }

    #[test]
    fn sightings_are_judged_by_where_and_when_and_a_returning_person_is_one_chain() {
        let scene = scene();
        let origins = HashMap::from([("cam".to_string(), 0i64)]);
        // the first loop's three due sightings: Ann, Bob, and the Ann chain (due at 9.9 + 2 s)
        let window = 0..13_000;
        let sightings = [
            sighting(2_000, 300.0, Some("Ann A")),
            sighting(5_000, 900.0, Some("Ann A")),
            // the chain's best shot is in its second crossing: still the chain's sighting
            sighting(9_700, 600.0, Some("Ann A")),
        ];
        let judgement = judge(&scene, &origins, window.clone(), 2_000, sightings.iter());
        assert_eq!(judgement.expected, 3, "{judgement:?}");
        assert_eq!(judgement.found, 3, "{judgement:?}");
        assert_eq!(judgement.missed, 0, "{judgement:?}");
        assert_eq!((judgement.named, judgement.wrong), (2, 1), "{judgement:?}");

        // nothing for Bob, two sightings of one chain, one where no one was
        let sightings = [
            sighting(2_000, 300.0, Some("Ann A")),
            sighting(8_000, 300.0, Some("Ann A")),
            sighting(9_700, 600.0, Some("Ann A")),
            sighting(5_000, 100.0, None),
        ];
        let judgement = judge(&scene, &origins, window, 2_000, sightings.iter());
        assert_eq!(judgement.missed, 1, "{judgement:?}");
        assert_eq!(judgement.duplicates, 1, "{judgement:?}");
        assert_eq!(judgement.unexplained, 1, "{judgement:?}");
    }
}
