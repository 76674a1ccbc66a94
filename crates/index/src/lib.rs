//! Vector search: exact multi-threaded SIMD top-k over face templates.
//!
//! [`Gallery`] holds one [`ExactIndex`] per recognizer model, so a query is only ever compared
//! with templates of its own model. Each index is an exhaustive scan over a contiguous matrix:
//! results are exact, and kept in step with enrolment and deletion by the caller.
//! [`bench`] measures it on synthetic data and dumps that data for the faiss peer
//! (`scripts/bench/faiss_flat.py`).

pub mod bench;
mod exact;
mod gallery;
mod kernel;
mod scan;
mod topk;

pub use exact::{ExactIndex, SubjectHit, TemplateHit};
pub use gallery::Gallery;

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
    #[error("benchmark configuration is invalid: {0}")]
    BenchConfig(String),
    #[error("cannot write benchmark data to {path}: {source}")]
    BenchIo {
        path: PathBuf,
        source: std::io::Error,
    },
}
