//! What the segmented index stores beside each vector, what a search returns, and the filter a
//! search applies row by row inside the scan.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::ops::Range;
use vigil_base::SubjectId;

/// The partition an entry belongs to, e.g. an enrolled template or a sighting; searches name
/// the kinds they want.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntryKind(pub u32);

impl EntryKind {
    pub const ENROLLED_TEMPLATE: Self = Self(0);
    pub const SIGHTING: Self = Self(1);
}

/// A camera, as numbered by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CameraId(pub u64);

/// Stored value meaning "no subject": subject ids are store row ids, never this negative.
pub(crate) const NO_SUBJECT: i64 = i64::MIN;
/// Stored value meaning "no camera".
pub(crate) const NO_CAMERA: u64 = u64::MAX;

/// The metadata of one indexed vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryMeta {
    /// Template or sighting id; unique within one index. Inserting an id again replaces it.
    pub id: u64,
    pub kind: EntryKind,
    pub subject: Option<SubjectId>,
    pub camera: Option<CameraId>,
    /// When the face was captured (or enrolled), unix milliseconds; segments are partitioned
    /// by it and retention drops by it.
    pub timestamp_ms: i64,
}

impl EntryMeta {
    pub(crate) fn stored_subject(&self) -> i64 {
        self.subject.map_or(NO_SUBJECT, |subject| subject.0)
    }

    pub(crate) fn stored_camera(&self) -> u64 {
        self.camera.map_or(NO_CAMERA, |camera| camera.0)
    }

    pub(crate) fn from_stored(id: u64, kind: u32, subject: i64, camera: u64, time: i64) -> Self {
        Self {
            id,
            kind: EntryKind(kind),
            subject: (subject != NO_SUBJECT).then_some(SubjectId(subject)),
            camera: (camera != NO_CAMERA).then_some(CameraId(camera)),
            timestamp_ms: time,
        }
    }
}

/// One entry among the nearest to a query, with its exact cosine similarity (re-ranked on the
/// full-precision vector whatever the search method), ready for the calibration table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EntryHit {
    pub entry: EntryMeta,
    pub score: f32,
}

/// Which rows a search may return. Every condition present must hold; `None` admits all.
/// Evaluated per row before scoring, so a selective filter still yields a full top-k.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchFilter {
    pub kinds: Option<HashSet<EntryKind>>,
    pub cameras: Option<HashSet<CameraId>>,
    /// Subjects, e.g. the members of one watchlist.
    pub subjects: Option<HashSet<SubjectId>>,
    /// Capture time, unix milliseconds, start inclusive and end exclusive.
    pub time_range_ms: Option<Range<i64>>,
}

impl SearchFilter {
    pub fn all() -> Self {
        Self::default()
    }

    pub fn kinds(mut self, kinds: impl IntoIterator<Item = EntryKind>) -> Self {
        self.kinds = Some(kinds.into_iter().collect());
        self
    }

    pub fn cameras(mut self, cameras: impl IntoIterator<Item = CameraId>) -> Self {
        self.cameras = Some(cameras.into_iter().collect());
        self
    }

    pub fn subjects(mut self, subjects: impl IntoIterator<Item = SubjectId>) -> Self {
        self.subjects = Some(subjects.into_iter().collect());
        self
    }

    pub fn time_range_ms(mut self, range: Range<i64>) -> Self {
        self.time_range_ms = Some(range);
        self
    }

    pub(crate) fn admits_all(&self) -> bool {
        self.kinds.is_none()
            && self.cameras.is_none()
            && self.subjects.is_none()
            && self.time_range_ms.is_none()
    }

    /// Whether a segment whose capture times lie in `min..=max` can hold an admitted row.
    pub(crate) fn may_overlap_time(&self, min_ms: i64, max_ms: i64) -> bool {
        self.time_range_ms
            .as_ref()
            .is_none_or(|range| range.start <= max_ms && min_ms < range.end)
    }

    pub(crate) fn admits(&self, kind: u32, subject: i64, camera: u64, time_ms: i64) -> bool {
        if let Some(range) = &self.time_range_ms {
            if !range.contains(&time_ms) {
                return false;
            }
        }
        if let Some(kinds) = &self.kinds {
            if !kinds.contains(&EntryKind(kind)) {
                return false;
            }
        }
        if let Some(cameras) = &self.cameras {
            if camera == NO_CAMERA || !cameras.contains(&CameraId(camera)) {
                return false;
            }
        }
        if let Some(subjects) = &self.subjects {
            if subject == NO_SUBJECT || !subjects.contains(&SubjectId(subject)) {
                return false;
            }
        }
        true
    }
}

/// How a search trades recall for speed. Every method re-ranks its candidates on the f32
/// vectors, so reported scores are exact cosines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SearchMethod {
    /// Every admitted row scored on f32: exact.
    Exact,
    /// Every admitted row scored on its int8 code; the best `k × rerank_factor` are re-scored
    /// on f32. A quarter of the memory traffic of `Exact`.
    Int8 { rerank_factor: usize },
    /// IVF-PQ in sealed segments that have one (exact elsewhere): `nprobe` lists per query,
    /// the best `rerank` candidates by PQ distance re-scored on f32.
    Ann { nprobe: usize, rerank: usize },
}
