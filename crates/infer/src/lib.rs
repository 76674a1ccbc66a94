//! Face models: image decoding, detection (with tiling for large images), alignment, quality
//! and embedding on ONNX models run by onnxruntime. See docs/design/001-model-pipeline.md.

pub mod align;
pub mod analyzer;
pub mod decode;
pub mod detect;
pub mod embed;
mod error;
pub mod manifest;
pub mod quality;
pub mod runtime;
pub mod tiled;

pub use align::{AlignedFace, ARCFACE_TEMPLATE};
pub use analyzer::{
    AnalyzedFace, AnalyzerSettings, AssessedFace, FaceAnalyzer, VideoDetectorSettings,
};
pub use decode::{decode_image, DecodeLimits, DecodedImage};
pub use detect::{BoundingBox, Canvas, DetectedFace, FaceDetector, OnnxDetector, RgbView};
pub use embed::{FaceEmbedder, OnnxEmbedder};
pub use error::InferError;
pub use manifest::{verify_file, Manifest, ModelEntry, ModelRole};
pub use quality::{FaceQuality, QualityGate, QualityIssue};
pub use tiled::TilingSettings;
