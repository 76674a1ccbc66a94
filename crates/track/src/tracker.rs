//! The multi-object face tracker: constant-velocity prediction, ByteTrack-style two-stage
//! association (high-score detections first, then low-score ones to tracks seen on the last
//! detection frame), appearance gating and re-identification, and track lifetimes measured on
//! the detection clock. See docs/design/006-tracker.md.

use crate::assignment::assign;
use crate::kalman::BoxFilter;
use crate::summary::{EndReason, FinishedTrack, SegmentSummary};
use crate::{TrackError, TrackerConfig};
use serde::{Deserialize, Serialize};
use std::fmt;
use vigil_base::Embedding;
use vigil_infer::{AnalyzedFace, AssessedFace, BoundingBox, DetectedFace};

/// Appearance distance assumed when a pair cannot be compared (no usable embedding on one
/// side): cosine 0.5, between typical same-person and different-person ArcFace scores, so
/// such pairs neither win nor lose against compared ones by default.
const UNKNOWN_APPEARANCE_DISTANCE: f32 = 0.5;

/// Identifies a track within one tracker (one camera); increases from 1 in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrackId(pub u64);

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One analysed face on a detection frame. `payload` travels with the observation and is kept
/// only while the observation is its track's best shot (e.g. the RGB crop to JPEG-encode once
/// the track finishes).
#[derive(Debug, Clone, PartialEq)]
pub struct FaceObservation<P> {
    /// Source-frame pixels.
    pub bbox: BoundingBox,
    /// Left eye, right eye, nose, left and right mouth corners, source-frame pixels.
    pub landmarks: [[f32; 2]; 5],
    pub detector_score: f32,
    /// `FaceQuality::score`: ranks the faces of one track for the best shot.
    pub quality_score: f32,
    /// The face passed the quality gate: only usable embeddings shape a track's appearance.
    pub usable: bool,
    pub embedding: Option<Embedding>,
    pub payload: P,
}

/// What the tracker knows of a detected face before it is embedded: enough to decide whether
/// the embedding is worth its cost ([`Tracker::embeddings_wanted`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceCandidate {
    pub bbox: BoundingBox,
    pub detector_score: f32,
    pub quality_score: f32,
    pub usable: bool,
}

impl FaceCandidate {
    pub fn from_assessed(face: &AssessedFace) -> Self {
        Self {
            bbox: face.detection.bbox,
            detector_score: face.detection.score,
            quality_score: face.quality.score,
            usable: face.is_usable(),
        }
    }
}

impl<P> FaceObservation<P> {
    /// An assessed face with the embedding the tracker asked for (None when it did not).
    pub fn from_assessed(face: &AssessedFace, embedding: Option<Embedding>, payload: P) -> Self {
        Self::of(
            &face.detection,
            face.quality.score,
            face.is_usable(),
            embedding,
            payload,
        )
    }

    pub fn from_analyzed(face: &AnalyzedFace, payload: P) -> Self {
        Self::of(
            &face.detection,
            face.quality.score,
            face.is_usable(),
            Some(face.embedding.clone()),
            payload,
        )
    }

    fn of(
        detection: &DetectedFace,
        quality_score: f32,
        usable: bool,
        embedding: Option<Embedding>,
        payload: P,
    ) -> Self {
        Self {
            bbox: detection.bbox,
            landmarks: detection.landmarks,
            detector_score: detection.score,
            quality_score,
            usable,
            embedding,
            payload,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackState {
    /// Fewer than `min_hits` matches so far; dropped silently when a detection frame misses it.
    Tentative,
    /// Matched on the latest detection frame.
    Confirmed,
    /// Confirmed but missed on the latest detection frame; ends after `max_age_ms`.
    Lost,
}

/// A live track, for overlays and debugging.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveTrack {
    pub track_id: TrackId,
    pub state: TrackState,
    pub segment: u32,
    /// The last matched detection box.
    pub bbox: BoundingBox,
    /// Where the motion model expects the face now.
    pub predicted: BoundingBox,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// Observations in the current segment.
    pub observations: usize,
    /// Quality score of the current best shot.
    pub best_quality_score: Option<f32>,
}

struct Track<P> {
    id: TrackId,
    segment: u32,
    confirmed: bool,
    hits: u32,
    filter: BoxFilter,
    last_bbox: BoundingBox,
    /// Detection-clock time since the last match: grows only on detection frames.
    missed_ms: i64,
    /// First observation of the whole track (all segments, merged tracks excluded).
    first_seen_ms: i64,
    last_seen_ms: i64,
    /// Running mean of the usable embeddings; None until a usable face was seen.
    appearance: Option<Embedding>,
    /// When a usable face of this track was last embedded (the embedding budget's clock).
    last_embedded_ms: Option<i64>,
    summary: SegmentSummary<P>,
}

impl<P> Track<P> {
    fn state(&self) -> TrackState {
        match (self.confirmed, self.missed_ms) {
            (false, _) => TrackState::Tentative,
            (true, 0) => TrackState::Confirmed,
            (true, _) => TrackState::Lost,
        }
    }

    fn observe(&mut self, at_ms: i64, observation: FaceObservation<P>, config: &TrackerConfig) {
        self.filter.update(&observation.bbox);
        self.record(at_ms, observation, config);
    }

    /// Everything a match changes except the motion filter.
    fn record(&mut self, at_ms: i64, observation: FaceObservation<P>, config: &TrackerConfig) {
        self.last_bbox = observation.bbox;
        self.hits += 1;
        self.missed_ms = 0;
        self.last_seen_ms = at_ms;
        if observation.usable {
            if let Some(embedding) = &observation.embedding {
                self.last_embedded_ms = Some(at_ms);
                self.appearance = Some(blend(
                    self.appearance.take(),
                    embedding,
                    config.appearance_momentum,
                ));
            }
        }
        self.summary.add(
            at_ms,
            observation,
            config.top_embeddings,
            config.trajectory_points,
        );
    }

    /// Whether a usable face matched to this track by motion alone is worth embedding.
    fn wants_embedding(&self, now: i64, face: &FaceCandidate, config: &TrackerConfig) -> bool {
        if self.appearance.is_none() || self.missed_ms > 0 {
            return true;
        }
        if self
            .last_embedded_ms
            .is_some_and(|last| now - last < config.embedding_interval_ms)
        {
            return false;
        }
        match self.summary.usable_entry_quality(config.top_embeddings) {
            None => true,
            Some(lowest) => face.quality_score > lowest + config.embedding_quality_margin,
        }
    }

    /// Cosine between the track's appearance and a usable observation's embedding.
    fn appearance_cosine(&self, observation: &FaceObservation<P>) -> Option<f32> {
        if !observation.usable {
            return None;
        }
        let embedding = observation.embedding.as_ref()?;
        self.appearance.as_ref()?.cosine(embedding).ok()
    }
}

/// `momentum · old + (1 − momentum) · new`, renormalised; the new one alone when there is no
/// old one or the two cannot be combined (another model).
fn blend(old: Option<Embedding>, new: &Embedding, momentum: f32) -> Embedding {
    let Some(old) = old else {
        return new.clone();
    };
    if old.model() != new.model() || old.dimension() != new.dimension() {
        return new.clone();
    }
    let values = old
        .values()
        .iter()
        .zip(new.values())
        .map(|(o, n)| momentum * o + (1.0 - momentum) * n)
        .collect();
    Embedding::normalised(new.model().clone(), values).unwrap_or_else(|_| new.clone())
}

/// Tracks the faces of one camera. `P` is the caller's best-shot payload.
pub struct Tracker<P> {
    config: TrackerConfig,
    /// In creation order, so ids ascend and every pass over them is deterministic.
    tracks: Vec<Track<P>>,
    next_id: u64,
    /// Time of the latest frame seen (detected or static); never goes back.
    clock_ms: Option<i64>,
    /// Time of the latest detection frame: a track missed on a detection frame ages by the
    /// time since the previous one, so a person who left a scene that then went still is let
    /// go after `max_age_ms` of keep-alive detections, not twenty times later.
    last_detection_ms: Option<i64>,
}

impl<P> Tracker<P> {
    pub fn new(config: TrackerConfig) -> Result<Self, TrackError> {
        config.validate()?;
        Ok(Self {
            config,
            tracks: Vec::new(),
            next_id: 1,
            clock_ms: None,
            last_detection_ms: None,
        })
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// True while any track (tentative included) is alive: the motion gate then keeps
    /// detection running at least every keep-alive interval.
    pub fn has_tracks(&self) -> bool {
        !self.tracks.is_empty()
    }

    pub fn active_tracks(&self) -> Vec<ActiveTrack> {
        self.tracks
            .iter()
            .map(|track| ActiveTrack {
                track_id: track.id,
                state: track.state(),
                segment: track.segment,
                bbox: track.last_bbox,
                predicted: track.filter.bbox(),
                first_seen_ms: track.first_seen_ms,
                last_seen_ms: track.last_seen_ms,
                observations: track.summary.observations,
                best_quality_score: track
                    .summary
                    .best_shot()
                    .map(|best| best.observation.quality_score),
            })
            .collect()
    }

    /// Moves the clock to `at_ms` (a time earlier than the last frame counts as the last
    /// frame's: camera clocks step back, the tracker's does not) and returns the elapsed time.
    fn advance_clock(&mut self, at_ms: i64) -> (i64, i64) {
        let previous = self.clock_ms.unwrap_or(at_ms);
        let now = at_ms.max(previous);
        self.clock_ms = Some(now);
        (now, now - previous)
    }

    /// Which of the faces detected on the frame taken at `at_ms` are worth embedding, in
    /// their order. The tracker associates by motion first (ByteTrack's own design); an
    /// embedding is asked for only where it can change an answer:
    /// - a face that overlaps no track (a new person, or a lost one re-appearing elsewhere:
    ///   re-identification needs it), or more than one track, or whose track overlaps other
    ///   faces too (crossing paths: the appearance veto needs it);
    /// - a face whose one track has no appearance yet, was missed on the last detection
    ///   frame, or may take it into its top embeddings (room left, or better quality by
    ///   `embedding_quality_margin`), at most once per `embedding_interval_ms` per track.
    ///
    /// Unusable faces are never embedded: their embeddings are noise that only usable ones
    /// may shape (the appearance, and the sighting's identification).
    pub fn embeddings_wanted(&self, at_ms: i64, faces: &[FaceCandidate]) -> Vec<bool> {
        if self.config.embed_every_face {
            return vec![true; faces.len()];
        }
        let now = at_ms.max(self.clock_ms.unwrap_or(at_ms));
        let elapsed_seconds = (now - self.clock_ms.unwrap_or(now)) as f32 / 1000.0;
        let boxes: Vec<(BoundingBox, BoundingBox)> = self
            .tracks
            .iter()
            .map(|track| {
                let mut filter = track.filter.clone();
                filter.predict(elapsed_seconds);
                (filter.bbox(), track.last_bbox)
            })
            .collect();
        let tracked = |face: &FaceCandidate| -> Vec<usize> {
            boxes
                .iter()
                .enumerate()
                .filter(|(_, (predicted, last))| {
                    predicted.iou(&face.bbox).max(last.iou(&face.bbox)) >= self.config.min_iou
                })
                .map(|(index, _)| index)
                .collect()
        };
        let considered: Vec<bool> = faces
            .iter()
            .map(|f| f.detector_score >= self.config.low_score_threshold)
            .collect();
        let overlaps: Vec<Vec<usize>> = faces
            .iter()
            .zip(&considered)
            .map(|(face, &considered)| {
                if considered {
                    tracked(face)
                } else {
                    Vec::new()
                }
            })
            .collect();
        let mut faces_per_track = vec![0usize; self.tracks.len()];
        for tracks in &overlaps {
            for &track in tracks {
                faces_per_track[track] += 1;
            }
        }
        faces
            .iter()
            .zip(&overlaps)
            .zip(&considered)
            .map(|((face, tracks), &considered)| {
                if !face.usable || !considered {
                    return false;
                }
                let [track] = tracks.as_slice() else {
                    // none (new or re-appearing elsewhere) or several (ambiguous)
                    return true;
                };
                if faces_per_track[*track] > 1 {
                    return true;
                }
                self.tracks[*track].wants_embedding(now, face, &self.config)
            })
            .collect()
    }

    /// A detection frame taken at `at_ms` with every face found on it (possibly none).
    /// Returns the track segments that ended.
    pub fn update(
        &mut self,
        at_ms: i64,
        observations: Vec<FaceObservation<P>>,
    ) -> Vec<FinishedTrack<P>> {
        let (now, elapsed_ms) = self.advance_clock(at_ms);
        let elapsed_seconds = elapsed_ms as f32 / 1000.0;
        for track in self.tracks.iter_mut() {
            track.filter.predict(elapsed_seconds);
        }
        let missed_for_ms = now - self.last_detection_ms.unwrap_or(now).min(now);
        self.last_detection_ms = Some(now);
        let mut pending: Vec<Option<FaceObservation<P>>> = observations
            .into_iter()
            .filter(|o| o.detector_score >= self.config.low_score_threshold)
            .map(Some)
            .collect();
        let is_high = |o: &FaceObservation<P>| o.detector_score >= self.config.high_score_threshold;
        let high: Vec<usize> = (0..pending.len())
            .filter(|&d| pending[d].as_ref().is_some_and(is_high))
            .collect();
        let low: Vec<usize> = (0..pending.len())
            .filter(|&d| pending[d].as_ref().is_some_and(|o| !is_high(o)))
            .collect();
        let mut matched = vec![false; self.tracks.len()];

        // Stage 1: every track against the high-score detections, motion and appearance.
        let all_tracks: Vec<usize> = (0..self.tracks.len()).collect();
        let pairs = self.match_by_cost(&all_tracks, &high, &pending, self.config.min_iou);
        self.apply(now, &pairs, &mut pending, &mut matched);

        // Stage 2: low-score detections only extend tracks seen on the last detection frame,
        // and only with a tight overlap (ByteTrack: they are too unreliable to start or revive
        // a track, but they keep a partly hidden or turning face attached to its track).
        let recent: Vec<usize> = (0..self.tracks.len())
            .filter(|&t| !matched[t] && self.tracks[t].missed_ms == 0)
            .collect();
        let pairs = self.match_by_cost(&recent, &low, &pending, self.config.low_score_min_iou);
        self.apply(now, &pairs, &mut pending, &mut matched);

        // Stage 3: re-identification of confirmed tracks by appearance alone, wherever the
        // face reappears (occlusion, a jump between sampled frames).
        let unmatched_confirmed: Vec<usize> = (0..self.tracks.len())
            .filter(|&t| !matched[t] && self.tracks[t].confirmed)
            .collect();
        let pairs = self.match_by_appearance(&unmatched_confirmed, &high, &pending);
        self.apply(now, &pairs, &mut pending, &mut matched);

        let mut finished = Vec::new();
        let mut kept = Vec::with_capacity(self.tracks.len());
        for (track, was_matched) in std::mem::take(&mut self.tracks).into_iter().zip(matched) {
            let mut track = track;
            if !was_matched {
                if !track.confirmed {
                    continue;
                }
                track.missed_ms += missed_for_ms;
                if track.missed_ms > self.config.max_age_ms {
                    finished.extend(self.finish(track, EndReason::Lost));
                    continue;
                }
            } else if !track.confirmed && track.hits >= self.config.min_hits {
                track.confirmed = true;
            }
            kept.push(track);
        }
        self.tracks = kept;

        for index in high {
            if let Some(observation) = pending[index].take() {
                self.start_track(now, observation);
            }
        }
        self.merge_reappeared_tracks();
        finished.extend(self.cut_long_segments(now));
        finished
    }

    /// A frame on which detection was skipped because the motion gate saw a static scene.
    /// Static frames do not age tracks (nothing changed, so whoever was there still is) and
    /// stop their predicted motion; long segments are still cut on time.
    pub fn update_static(&mut self, at_ms: i64) -> Vec<FinishedTrack<P>> {
        let (now, _) = self.advance_clock(at_ms);
        for track in self.tracks.iter_mut() {
            track.filter.stop();
        }
        self.cut_long_segments(now)
    }

    /// Ends every track (stream end or shutdown); tentative tracks are dropped.
    pub fn flush(&mut self, at_ms: i64) -> Vec<FinishedTrack<P>> {
        self.advance_clock(at_ms);
        let mut finished = Vec::new();
        for track in std::mem::take(&mut self.tracks) {
            if track.confirmed {
                finished.extend(self.finish(track, EndReason::Flush));
            }
        }
        finished
    }

    fn finish(&self, track: Track<P>, reason: EndReason) -> Option<FinishedTrack<P>> {
        track.summary.finish(
            track.id,
            track.segment,
            reason,
            self.config.trajectory_points,
        )
    }

    fn start_track(&mut self, now: i64, observation: FaceObservation<P>) {
        let id = TrackId(self.next_id);
        self.next_id += 1;
        let mut track = Track {
            id,
            segment: 0,
            confirmed: false,
            hits: 0,
            filter: BoxFilter::new(&observation.bbox),
            last_bbox: observation.bbox,
            missed_ms: 0,
            first_seen_ms: now,
            last_seen_ms: now,
            appearance: None,
            last_embedded_ms: None,
            summary: SegmentSummary::new(),
        };
        // The filter already starts at this box.
        track.record(now, observation, &self.config);
        track.confirmed = track.hits >= self.config.min_hits;
        self.tracks.push(track);
    }

    /// Minimum-cost matching of `tracks` to `detections` on motion (IoU with the predicted or
    /// the last box) and appearance, with the appearance veto.
    fn match_by_cost(
        &self,
        tracks: &[usize],
        detections: &[usize],
        pending: &[Option<FaceObservation<P>>],
        min_iou: f32,
    ) -> Vec<(usize, usize)> {
        let costs: Vec<Vec<Option<f32>>> = tracks
            .iter()
            .map(|&t| {
                let track = &self.tracks[t];
                let predicted = track.filter.bbox();
                detections
                    .iter()
                    .map(|&d| {
                        let observation = pending[d].as_ref()?;
                        // The last box covers a face that stopped while it was not seen.
                        let iou = predicted
                            .iou(&observation.bbox)
                            .max(track.last_bbox.iou(&observation.bbox));
                        if iou < min_iou {
                            return None;
                        }
                        let cosine = track.appearance_cosine(observation);
                        if cosine.is_some_and(|c| c < self.config.appearance_veto_cosine) {
                            return None;
                        }
                        let appearance_distance = cosine
                            .map_or(UNKNOWN_APPEARANCE_DISTANCE, |c| (1.0 - c).clamp(0.0, 1.0));
                        let weight = self.config.iou_weight;
                        Some(weight * (1.0 - iou) + (1.0 - weight) * appearance_distance)
                    })
                    .collect()
            })
            .collect();
        assign(&costs)
            .into_iter()
            .map(|(row, column)| (tracks[row], detections[column]))
            .collect()
    }

    /// Matching on appearance alone, for tracks that motion could not place.
    fn match_by_appearance(
        &self,
        tracks: &[usize],
        detections: &[usize],
        pending: &[Option<FaceObservation<P>>],
    ) -> Vec<(usize, usize)> {
        let costs: Vec<Vec<Option<f32>>> = tracks
            .iter()
            .map(|&t| {
                detections
                    .iter()
                    .map(|&d| {
                        let cosine = self.tracks[t].appearance_cosine(pending[d].as_ref()?)?;
                        (cosine >= self.config.reid_min_cosine).then_some(1.0 - cosine)
                    })
                    .collect()
            })
            .collect();
        assign(&costs)
            .into_iter()
            .map(|(row, column)| (tracks[row], detections[column]))
            .collect()
    }

    fn apply(
        &mut self,
        now: i64,
        pairs: &[(usize, usize)],
        pending: &mut [Option<FaceObservation<P>>],
        matched: &mut [bool],
    ) {
        for &(track, detection) in pairs {
            if let Some(observation) = pending[detection].take() {
                self.tracks[track].observe(now, observation, &self.config);
                matched[track] = true;
            }
        }
    }

    /// Re-identification across a gap: a lost confirmed track A and a newer track B (first
    /// seen after A's last match, matched now, never cut) whose appearances agree are one
    /// person who was hidden or turned away; A takes B's observations and motion state and B
    /// disappears. Best cosine first; each track merges at most once per frame.
    fn merge_reappeared_tracks(&mut self) {
        let mut candidates: Vec<(f32, usize, usize)> = Vec::new();
        for (a, older) in self.tracks.iter().enumerate() {
            if !older.confirmed || older.missed_ms == 0 {
                continue;
            }
            let Some(older_appearance) = &older.appearance else {
                continue;
            };
            for (b, newer) in self.tracks.iter().enumerate() {
                if a == b
                    || newer.missed_ms != 0
                    || newer.segment != 0
                    || newer.first_seen_ms <= older.last_seen_ms
                {
                    continue;
                }
                let Some(newer_appearance) = &newer.appearance else {
                    continue;
                };
                if let Ok(cosine) = older_appearance.cosine(newer_appearance) {
                    if cosine >= self.config.reid_min_cosine {
                        candidates.push((cosine, a, b));
                    }
                }
            }
        }
        candidates.sort_by(|x, y| y.0.total_cmp(&x.0).then((x.1, x.2).cmp(&(y.1, y.2))));
        let mut involved = vec![false; self.tracks.len()];
        let mut merges = Vec::new();
        for (_, a, b) in candidates {
            if !involved[a] && !involved[b] {
                involved[a] = true;
                involved[b] = true;
                merges.push((a, b));
            }
        }
        if merges.is_empty() {
            return;
        }
        let mut slots: Vec<Option<Track<P>>> = std::mem::take(&mut self.tracks)
            .into_iter()
            .map(Some)
            .collect();
        for (a, b) in merges {
            if slots[a].is_none() || slots[b].is_none() {
                continue;
            }
            let (Some(newer), Some(mut older)) = (slots[b].take(), slots[a].take()) else {
                continue;
            };
            older.filter = newer.filter;
            older.last_bbox = newer.last_bbox;
            older.missed_ms = 0;
            older.last_seen_ms = newer.last_seen_ms;
            older.hits += newer.hits;
            older.confirmed = true;
            if let Some(appearance) = &newer.appearance {
                older.appearance = Some(blend(older.appearance.take(), appearance, 0.5));
            }
            older.summary.absorb(
                newer.summary,
                self.config.top_embeddings,
                self.config.trajectory_points,
            );
            older.summary.merged_track_ids.push(newer.id);
            slots[a] = Some(older);
        }
        self.tracks = slots.into_iter().flatten().collect();
    }

    /// Hands out segments that reached `max_duration_ms`; their tracks go on as the next
    /// segment with the same id, motion state and appearance.
    fn cut_long_segments(&mut self, now: i64) -> Vec<FinishedTrack<P>> {
        let mut finished = Vec::new();
        let (max_duration_ms, trajectory_points) =
            (self.config.max_duration_ms, self.config.trajectory_points);
        for track in self.tracks.iter_mut() {
            if !track.confirmed
                || track.summary.is_empty()
                || now - track.summary.first_seen_ms < max_duration_ms
            {
                continue;
            }
            let summary = std::mem::replace(&mut track.summary, SegmentSummary::new());
            finished.extend(summary.finish(
                track.id,
                track.segment,
                EndReason::MaxDuration,
                trajectory_points,
            ));
            track.segment += 1;
        }
        finished
    }
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
