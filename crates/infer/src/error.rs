//! The one error type of this crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error("the image is empty (0 bytes)")]
    EmptyImage,
    #[error("the image format is not recognised or not supported")]
    UnsupportedFormat,
    #[error("the image is corrupt or truncated: {0}")]
    CorruptImage(String),
    #[error("the image is {width}x{height} pixels, more than the {max_pixels} allowed")]
    ImageTooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error(
        "onnxruntime library not found (searched {searched:?}); set ORT_DYLIB_PATH or \
         `onnxruntime_library`, or create the project's .venv"
    )]
    RuntimeNotFound { searched: Vec<PathBuf> },
    #[error("cannot load onnxruntime from {path}: {message}")]
    RuntimeLoad { path: PathBuf, message: String },
    #[error("unknown model `{0}`")]
    UnknownModel(String),
    #[error("model `{name}` is a {actual}, not a {expected}")]
    WrongModelRole {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("model file {path} is missing; run `vigil models fetch`")]
    ModelMissing { path: PathBuf },
    #[error("model file {path} has sha256 {actual}, expected {expected}")]
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model `{model}` failed: {message}")]
    Onnx { model: String, message: String },
    #[error("model `{model}` returned an unexpected output: {message}")]
    BadOutput { model: String, message: String },
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    #[error("model manifest is invalid: {0}")]
    Manifest(String),
    #[error(transparent)]
    Embedding(#[from] vigil_base::EmbeddingError),
}

impl InferError {
    pub(crate) fn onnx(model: &str, error: impl std::fmt::Display) -> Self {
        Self::Onnx {
            model: model.to_string(),
            message: error.to_string(),
        }
    }

    pub(crate) fn bad_output(model: &str, message: impl Into<String>) -> Self {
        Self::BadOutput {
            model: model.to_string(),
            message: message.into(),
        }
    }
}
