//! vigil's shared vocabulary. Depends on nothing of ours; every other crate depends on it.

pub mod calibration;
pub mod camera;
pub mod config;
pub mod embedding;
pub mod ids;

pub use calibration::{CalibrationError, CalibrationTable};
pub use camera::{CameraConfig, CameraId};
pub use embedding::{Embedding, EmbeddingError};
pub use ids::{ModelId, SubjectId, TemplateId};
