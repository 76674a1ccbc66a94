//! What a track remembers for its sighting: the best shot (with its payload), the best few
//! embeddings, and a short trajectory; and the finished track handed to the caller.

use crate::tracker::{FaceObservation, TrackId};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use vigil_base::Embedding;

/// Why a track segment was handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Not matched for `max_age_ms` of detection time: the person left or is hidden.
    Lost,
    /// The segment reached `max_duration_ms`; the track goes on as the next segment.
    MaxDuration,
    /// The stream ended ([`crate::Tracker::flush`]).
    Flush,
}

impl EndReason {
    /// The snake_case name, as serialised: `lost`, `max_duration`, `flush`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EndReason::Lost => "lost",
            EndReason::MaxDuration => "max_duration",
            EndReason::Flush => "flush",
        }
    }
}

/// The observation chosen as the face of a track segment, with the time it was seen.
#[derive(Debug, Clone, PartialEq)]
pub struct BestShot<P> {
    pub at_ms: i64,
    pub observation: FaceObservation<P>,
}

/// An embedding kept for fusion, with the quality of the face it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedEmbedding {
    pub at_ms: i64,
    pub embedding: Embedding,
    pub quality_score: f32,
    /// The face passed the quality gate (unusable ones are kept only when no usable one was seen).
    pub usable: bool,
}

/// One point of a trajectory: the observed box centre and size, source pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryPoint {
    pub at_ms: i64,
    pub center: [f32; 2],
    pub width: f32,
    pub height: f32,
}

/// A confirmed track segment that ended: what the pipeline turns into a sighting.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedTrack<P> {
    pub track_id: TrackId,
    /// 0 for a track's first segment; a track cut at `max_duration_ms` continues as segment
    /// 1, 2, … under the same id.
    pub segment: u32,
    /// Time of the segment's first and last matched observations.
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// Observations matched to this segment (merged tracks included).
    pub observations: usize,
    pub best_shot: BestShot<P>,
    /// Up to `top_embeddings`, usable faces first, then by quality score, best first.
    pub top_embeddings: Vec<RankedEmbedding>,
    /// At most `trajectory_points`, in time order, first and last observation included.
    pub trajectory: Vec<TrajectoryPoint>,
    pub end_reason: EndReason,
    /// Tracks merged into this one by appearance re-identification (their ids are not
    /// reported otherwise).
    pub merged_track_ids: Vec<TrackId>,
}

/// Running summary of one track segment.
#[derive(Debug, Clone)]
pub(crate) struct SegmentSummary<P> {
    pub(crate) first_seen_ms: i64,
    pub(crate) last_seen_ms: i64,
    pub(crate) observations: usize,
    best_shot: Option<BestShot<P>>,
    top_embeddings: Vec<RankedEmbedding>,
    /// Bounded buffer: halved (every other point dropped) whenever it reaches twice the
    /// requested size, so memory stays bounded on long tracks.
    trajectory: Vec<TrajectoryPoint>,
    pub(crate) merged_track_ids: Vec<TrackId>,
}

impl<P> SegmentSummary<P> {
    pub(crate) fn new() -> Self {
        Self {
            first_seen_ms: 0,
            last_seen_ms: 0,
            observations: 0,
            best_shot: None,
            top_embeddings: Vec::new(),
            trajectory: Vec::new(),
            merged_track_ids: Vec::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.observations == 0
    }

    pub(crate) fn add(
        &mut self,
        at_ms: i64,
        observation: FaceObservation<P>,
        top_embeddings: usize,
        trajectory_points: usize,
    ) {
        if self.observations == 0 {
            self.first_seen_ms = at_ms;
        }
        self.last_seen_ms = at_ms;
        self.observations += 1;
        let bbox = observation.bbox;
        self.push_point(
            TrajectoryPoint {
                at_ms,
                center: bbox.center(),
                width: bbox.width(),
                height: bbox.height(),
            },
            trajectory_points,
        );
        if let Some(embedding) = &observation.embedding {
            self.offer_embedding(
                RankedEmbedding {
                    at_ms,
                    embedding: embedding.clone(),
                    quality_score: observation.quality_score,
                    usable: observation.usable,
                },
                top_embeddings,
            );
        }
        self.offer_best_shot(BestShot { at_ms, observation });
    }

    /// Takes in a later segment of the same person (re-identification).
    pub(crate) fn absorb(
        &mut self,
        later: SegmentSummary<P>,
        top_embeddings: usize,
        trajectory_points: usize,
    ) {
        if later.is_empty() {
            return;
        }
        if self.is_empty() {
            self.first_seen_ms = later.first_seen_ms;
        }
        self.last_seen_ms = self.last_seen_ms.max(later.last_seen_ms);
        self.observations += later.observations;
        for point in later.trajectory {
            self.push_point(point, trajectory_points);
        }
        for ranked in later.top_embeddings {
            self.offer_embedding(ranked, top_embeddings);
        }
        if let Some(best) = later.best_shot {
            self.offer_best_shot(best);
        }
        self.merged_track_ids.extend(later.merged_track_ids);
    }

    /// The finished segment; None when it holds no observation.
    pub(crate) fn finish(
        self,
        track_id: TrackId,
        segment: u32,
        end_reason: EndReason,
        trajectory_points: usize,
    ) -> Option<FinishedTrack<P>> {
        let best_shot = self.best_shot?;
        Some(FinishedTrack {
            track_id,
            segment,
            first_seen_ms: self.first_seen_ms,
            last_seen_ms: self.last_seen_ms,
            observations: self.observations,
            best_shot,
            top_embeddings: self.top_embeddings,
            trajectory: decimate(self.trajectory, trajectory_points),
            end_reason,
            merged_track_ids: self.merged_track_ids,
        })
    }

    /// The lowest quality among the kept usable embeddings, when `top_embeddings` usable ones
    /// are kept (a face must beat it to enter); None while there is room for another.
    pub(crate) fn usable_entry_quality(&self, top_embeddings: usize) -> Option<f32> {
        let usable: Vec<f32> = self
            .top_embeddings
            .iter()
            .filter(|r| r.usable)
            .map(|r| r.quality_score)
            .collect();
        if usable.len() < top_embeddings {
            return None;
        }
        usable.into_iter().reduce(f32::min)
    }

    pub(crate) fn best_shot(&self) -> Option<&BestShot<P>> {
        self.best_shot.as_ref()
    }

    fn push_point(&mut self, point: TrajectoryPoint, trajectory_points: usize) {
        self.trajectory.push(point);
        if self.trajectory.len() >= 2 * trajectory_points.max(2) {
            let last = self.trajectory.len() - 1;
            let mut index = 0;
            self.trajectory.retain(|_| {
                let keep = index % 2 == 0 || index == last;
                index += 1;
                keep
            });
        }
    }

    fn offer_embedding(&mut self, ranked: RankedEmbedding, top_embeddings: usize) {
        let position = self
            .top_embeddings
            .iter()
            .position(|kept| embedding_rank(&ranked, kept) == Ordering::Greater)
            .unwrap_or(self.top_embeddings.len());
        if position < top_embeddings {
            self.top_embeddings.insert(position, ranked);
            self.top_embeddings.truncate(top_embeddings);
        }
    }

    /// Replaces the best shot only when strictly better, so ties keep the earlier face; the
    /// replaced payload is dropped here.
    fn offer_best_shot(&mut self, candidate: BestShot<P>) {
        let better = self.best_shot.as_ref().is_none_or(|best| {
            shot_rank(&candidate.observation, &best.observation) == Ordering::Greater
        });
        if better {
            self.best_shot = Some(candidate);
        }
    }
}

/// Usable faces beat unusable ones; among usable faces the quality score decides, among
/// unusable ones (a track that never showed a usable face) the detector score does.
fn shot_rank<P>(a: &FaceObservation<P>, b: &FaceObservation<P>) -> Ordering {
    a.usable.cmp(&b.usable).then_with(|| {
        if a.usable {
            a.quality_score.total_cmp(&b.quality_score)
        } else {
            a.detector_score.total_cmp(&b.detector_score)
        }
    })
}

fn embedding_rank(a: &RankedEmbedding, b: &RankedEmbedding) -> Ordering {
    a.usable
        .cmp(&b.usable)
        .then_with(|| a.quality_score.total_cmp(&b.quality_score))
}

/// At most `points` evenly spread points, keeping the first and the last.
fn decimate(trajectory: Vec<TrajectoryPoint>, points: usize) -> Vec<TrajectoryPoint> {
    let points = points.max(2);
    if trajectory.len() <= points {
        return trajectory;
    }
    let last = trajectory.len() - 1;
    (0..points)
        .map(|k| trajectory[(k * last + (points - 1) / 2) / (points - 1)])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_infer::BoundingBox;

    fn point(at_ms: i64) -> TrajectoryPoint {
        TrajectoryPoint {
            at_ms,
            center: [0.0, 0.0],
            width: 1.0,
            height: 1.0,
        }
    }

    #[test]
    fn end_reason_names_are_their_serialised_form() {
        for reason in [EndReason::Lost, EndReason::MaxDuration, EndReason::Flush] {
            let serialised = toml::Value::try_from(reason).unwrap();
            assert_eq!(serialised.as_str(), Some(reason.as_str()));
        }
    }

    #[test]
    fn decimation_keeps_the_ends_and_the_limit() {
        let trajectory: Vec<_> = (0..100).map(point).collect();
        let kept = decimate(trajectory, 32);
        assert_eq!(kept.len(), 32);
        assert_eq!(kept[0].at_ms, 0);
        assert_eq!(kept[31].at_ms, 99);
        assert!(kept.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
    }

    #[test]
    fn long_tracks_keep_a_bounded_trajectory_buffer() {
        let mut summary = SegmentSummary::<()>::new();
        for at_ms in 0..10_000 {
            summary.push_point(point(at_ms), 32);
        }
        assert!(summary.trajectory.len() < 64);
        assert_eq!(summary.trajectory.last().map(|p| p.at_ms), Some(9_999));
        assert_eq!(summary.trajectory[0].at_ms, 0);
    }

    #[test]
    fn unusable_faces_rank_by_detector_score_below_any_usable_face() {
        let observation = |usable: bool, quality_score: f32, detector_score: f32| FaceObservation {
            bbox: BoundingBox::from_centre(0.0, 0.0, 10.0, 10.0),
            landmarks: [[0.0; 2]; 5],
            detector_score,
            quality_score,
            usable,
            embedding: None,
            payload: (),
        };
        let usable_poor = observation(true, 0.2, 0.6);
        let unusable_sharp = observation(false, 0.9, 0.99);
        let unusable_weak = observation(false, 0.95, 0.7);
        assert_eq!(shot_rank(&usable_poor, &unusable_sharp), Ordering::Greater);
        assert_eq!(
            shot_rank(&unusable_sharp, &unusable_weak),
            Ordering::Greater
        );
    }
}
