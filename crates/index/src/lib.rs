//! Vector search over face templates and sightings.
//!
//! [`SegmentedIndex`] is the persistent index of one model: time-partitioned, memory-mapped
//! segments with a write-ahead log, tombstones, filters applied inside the scan, and three
//! search methods (exact f32, int8 with exact re-ranking, IVF-PQ with exact re-ranking).
//!
//! The service keeps two of them: the enrolled templates (in memory, rebuilt from the store at
//! start; watchlist matching filters it to the watched subjects inside the scan) and the
//! sightings (on disk, or in memory under encryption at rest).
//!
//! [`ExactIndex`] is the bare exhaustive scan over one contiguous matrix, on the same SIMD
//! kernels as the segments. The benchmarks that measure both live in `vigil-bench`.

mod entry;
mod exact;
mod ivfpq;
mod kernel;
mod quantize;
mod scan;
mod segment;
mod segmented;
pub mod shard;
mod topk;
mod wal;

pub use entry::{CameraId, EntryHit, EntryKind, EntryMeta, SearchFilter, SearchMethod};
pub use exact::{ExactIndex, SubjectHit, TemplateHit};
pub use ivfpq::{IvfPq, IvfPqParams, IVFPQ_FORMAT_VERSION};
pub use segment::SEGMENT_FORMAT_VERSION;
pub use segmented::{
    BuildProgress, CompactionReport, IndexStats, MemoryReport, SegmentedIndex, SegmentedOptions,
    MANIFEST_FORMAT_VERSION,
};

use std::path::PathBuf;
use vigil_base::ModelId;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(
        "embedding has {found} dimensions but model {model} holds {expected}-dimensional templates"
    )]
    DimensionMismatch {
        model: ModelId,
        expected: usize,
        found: usize,
    },
    #[error("embedding of model {found} given to the index of model {expected}")]
    ModelMismatch { expected: ModelId, found: ModelId },
    #[error("cannot start the search thread pool: {0}")]
    ThreadPool(String),
    #[error("cannot read or write index file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("index file {path} is damaged: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("index file {path} has format version {found}; this build reads {supported}")]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("approximate index configuration is invalid: {0}")]
    AnnConfig(String),
    #[error("embedding holds a value that is not a finite number")]
    NotFinite,
    #[error("shard protocol error: {0}")]
    Shard(String),
}
