//! Persistence for live video: cameras added at run time, sightings, and recording segments.
//! A separate trait from `FaceStore` so the gallery and the video side can evolve apart; the
//! embedded `SqliteStore` implements both over one database.

use crate::error::StoreError;
use serde::{Deserialize, Serialize};
use vigil_base::{CameraConfig, CameraId, Embedding, ModelId, SubjectId};

/// A sighting's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SightingId(pub i64);

impl std::fmt::Display for SightingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One point of a track's path: time and box centre/size in analysed-frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryPoint {
    pub at_ms: i64,
    pub center_x: f32,
    pub center_y: f32,
    pub width: f32,
    pub height: f32,
}

/// A subject the sighting matched at or below the configured false-match rate when it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SightingCandidate {
    pub subject: SubjectId,
    pub subject_name: String,
    pub score: f32,
    pub false_match_rate: f64,
    pub extrapolated: bool,
}

/// A finished person-track on one camera, ready to store.
#[derive(Debug, Clone)]
pub struct NewSighting {
    pub camera: CameraId,
    pub track: u64,
    pub started_at_ms: i64,
    pub ended_at_ms: i64,
    pub best_at_ms: i64,
    pub observations: u32,
    pub end_reason: String,
    pub quality: f32,
    pub detector_score: f32,
    /// x1, y1, x2, y2 in analysed-frame pixels.
    pub bbox: [f32; 4],
    pub frame_width: u32,
    pub frame_height: u32,
    pub crop_jpeg: Vec<u8>,
    /// Best first; each with the quality score of the face it came from.
    pub embeddings: Vec<(Embedding, f32)>,
    pub trajectory: Vec<TrajectoryPoint>,
    /// Best first.
    pub candidates: Vec<SightingCandidate>,
}

/// A stored sighting without its crop and embeddings (fetched separately: they are large).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SightingRecord {
    pub id: SightingId,
    pub camera: CameraId,
    pub track: u64,
    pub started_at_ms: i64,
    pub ended_at_ms: i64,
    pub best_at_ms: i64,
    pub observations: u32,
    pub end_reason: String,
    pub quality: f32,
    pub detector_score: f32,
    pub bbox: [f32; 4],
    pub frame_width: u32,
    pub frame_height: u32,
    pub trajectory: Vec<TrajectoryPoint>,
    pub candidates: Vec<SightingCandidate>,
    pub created_at_ms: i64,
}

/// Which sightings to list; all conditions hold together. Newest first.
#[derive(Debug, Clone, Default)]
pub struct SightingQuery {
    pub camera: Option<CameraId>,
    /// Sightings that overlap [from, to] (unix ms).
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Sightings whose top candidate is this subject.
    pub subject: Option<SubjectId>,
    /// Only sightings this case holds: returned by a search under it, or behind one of its
    /// alerts (how an investigator sees sightings, docs/design/012).
    pub case: Option<String>,
    /// Keyset pagination: only ids below this one.
    pub before_id: Option<SightingId>,
    pub limit: u64,
}

/// A sighting's embedding, as the search index loads it.
#[derive(Debug, Clone)]
pub struct SightingEmbedding {
    pub sighting: SightingId,
    pub camera: CameraId,
    pub best_at_ms: i64,
    pub rank: u32,
    pub embedding: Embedding,
}

/// A completed recording file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSegment {
    pub camera: CameraId,
    /// Relative to the recordings folder.
    pub path: String,
    pub started_at_ms: i64,
    pub ended_at_ms: i64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRecord {
    pub id: i64,
    pub camera: CameraId,
    pub path: String,
    pub started_at_ms: i64,
    pub ended_at_ms: i64,
    pub bytes: u64,
}

pub trait VideoStore: Send + Sync {
    /// Inserts or replaces a camera's settings (validated first).
    fn save_camera(&self, camera: &CameraConfig) -> Result<(), StoreError> {
        self.save_camera_audited(camera, None)
    }
    /// As `save_camera`, writing `audit` in the same transaction.
    fn save_camera_audited(
        &self,
        camera: &CameraConfig,
        audit: Option<&vigil_audit::NewAuditEntry>,
    ) -> Result<(), StoreError>;
    /// `NotFound` when absent.
    fn delete_camera(&self, id: &CameraId) -> Result<(), StoreError> {
        self.delete_camera_audited(id, None)
    }
    /// As `delete_camera`, writing `audit` in the same transaction.
    fn delete_camera_audited(
        &self,
        id: &CameraId,
        audit: Option<&vigil_audit::NewAuditEntry>,
    ) -> Result<(), StoreError>;
    /// Appends an audit entry on its own (a change with nothing stored to write it with).
    fn audit_only(&self, audit: &vigil_audit::NewAuditEntry) -> Result<(), StoreError>;
    /// In id order.
    fn cameras(&self) -> Result<Vec<CameraConfig>, StoreError>;

    /// Stores a sighting with its crop and embeddings in one transaction.
    fn insert_sighting(&self, sighting: &NewSighting) -> Result<SightingId, StoreError>;
    fn sighting(&self, id: SightingId) -> Result<Option<SightingRecord>, StoreError>;
    fn sighting_crop(&self, id: SightingId) -> Result<Option<Vec<u8>>, StoreError>;
    fn list_sightings(&self, query: &SightingQuery) -> Result<Vec<SightingRecord>, StoreError>;
    fn sighting_embeddings(
        &self,
        sighting: SightingId,
    ) -> Result<Vec<(Embedding, f32)>, StoreError>;
    /// Every stored sighting embedding of `model`, for rebuilding the search index.
    fn sighting_embeddings_for_model(
        &self,
        model: &ModelId,
    ) -> Result<Vec<SightingEmbedding>, StoreError>;
    /// Deletes sightings that ended before `before_ms` (only matched ones, those with a gallery
    /// candidate or an alert, when `matched` is `Some(true)`; only the others when `Some(false)`),
    /// with their crops, embeddings and alerts, returning their ids. A sighting held as evidence
    /// by a case at `now_ms` (it raised an alert that is not rejected, and the case is open or
    /// ended less than its `evidence_retention_days` ago) is never deleted here.
    fn delete_sightings_ended_before(
        &self,
        before_ms: i64,
        matched: Option<bool>,
        now_ms: i64,
    ) -> Result<Vec<SightingId>, StoreError>;

    /// Registers a completed segment file. A path already registered is `Conflict`.
    fn add_segment(&self, segment: &NewSegment) -> Result<i64, StoreError>;
    /// Segments overlapping [from, to] of one camera, oldest first.
    fn segments_between(
        &self,
        camera: &CameraId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<SegmentRecord>, StoreError>;
    /// All segments (of one camera, or all), oldest first.
    fn segments(&self, camera: Option<&CameraId>) -> Result<Vec<SegmentRecord>, StoreError>;
    /// Removes segment rows and lists their paths as garbage, in one transaction; the caller
    /// then unlinks the files and calls `forget_garbage`. A segment overlapping (same camera,
    /// overlapping time) a sighting held as case evidence (see `delete_sightings_ended_before`)
    /// is kept and not listed: the footage is held with its sighting.
    fn retire_segments(&self, ids: &[i64]) -> Result<Vec<String>, StoreError>;
    /// Paths whose rows were retired but whose files may still exist (after a crash).
    fn garbage(&self) -> Result<Vec<String>, StoreError>;
    fn forget_garbage(&self, paths: &[String]) -> Result<(), StoreError>;

    /// Watchlist entries that may match at `now_ms` (see `SqliteStore::active_watch_entries`).
    fn active_watch_entries(&self, now_ms: i64)
        -> Result<Vec<crate::ActiveWatchEntry>, StoreError>;
    /// Stores a candidate alert.
    fn insert_alert(
        &self,
        alert: &crate::NewAlert,
        now_ms: i64,
    ) -> Result<crate::AlertRecord, StoreError>;
    /// The latest `limit` alerts about `subject` that a reviewer rejected ("not this person"),
    /// newest first.
    fn rejected_alerts_of(
        &self,
        subject: SubjectId,
        limit: usize,
    ) -> Result<Vec<crate::RejectedAlert>, StoreError>;
    /// Appends an entry to the audit log (for what the analysis decides on its own, such as an
    /// alert it does not raise).
    fn audit_decision(&self, entry: &vigil_audit::NewAuditEntry) -> Result<(), StoreError>;
}
