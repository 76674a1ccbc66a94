//! The models vigil knows, where they come from, and how to feed them.
//!
//! The table lives in `crates/infer/models.toml` and is compiled in, so a binary always carries
//! the checksums it will verify model files against.

use crate::InferError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

const BUILTIN_MODELS_TOML: &str = include_str!("../models.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelRole {
    Detector,
    Recognizer,
}

impl std::fmt::Display for ModelRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelRole::Detector => "detector",
            ModelRole::Recognizer => "recognizer",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub name: String,
    /// Path relative to the models directory.
    pub file: String,
    pub role: ModelRole,
    /// Official download (or, where none exists, the upstream project).
    pub upstream_url: String,
    /// Member of the archive at `upstream_url` holding the file, when it is an archive.
    #[serde(default)]
    pub archive_member: Option<String>,
    /// Recommended detector score threshold (see shared/models/MANIFEST.md).
    #[serde(default)]
    pub score_threshold: Option<f32>,
    /// Why `upstream_url` cannot be downloaded as this exact file, when it cannot.
    #[serde(default)]
    pub download_unavailable: Option<String>,
    /// Provenance in words: where the staged copy came from and how it was checked.
    pub source: String,
    pub sha256: String,
    pub licence: String,
    /// True when the licence forbids commercial use.
    pub non_commercial: bool,
    /// Square network input side: the fixed size, or the default for dynamic-input models.
    pub input_pixels: u32,
    pub dynamic_input: bool,
    pub channel_order: ChannelOrder,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub outputs: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "model")]
    pub models: Vec<ModelEntry>,
}

impl Manifest {
    /// The compiled-in manifest.
    pub fn builtin() -> Self {
        // The embedded file is checked by a unit test, so a parse failure is a build defect.
        Self::parse(BUILTIN_MODELS_TOML).unwrap_or(Self { models: Vec::new() })
    }

    pub fn parse(text: &str) -> Result<Self, InferError> {
        let manifest: Self =
            toml::from_str(text).map_err(|e| InferError::Manifest(e.to_string()))?;
        for entry in &manifest.models {
            if entry.sha256.len() != 64 || hex::decode(&entry.sha256).is_err() {
                return Err(InferError::Manifest(format!("{}: bad sha256", entry.name)));
            }
        }
        Ok(manifest)
    }

    pub fn get(&self, name: &str) -> Result<&ModelEntry, InferError> {
        self.models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| InferError::UnknownModel(name.to_string()))
    }

    /// The entry for `name`, refusing one of another role.
    pub fn get_role(&self, name: &str, role: ModelRole) -> Result<&ModelEntry, InferError> {
        let entry = self.get(name)?;
        if entry.role != role {
            return Err(InferError::WrongModelRole {
                name: name.to_string(),
                expected: role.to_string(),
                actual: entry.role.to_string(),
            });
        }
        Ok(entry)
    }
}

/// Streams `path` through sha256 and compares with `sha256` (hex).
pub fn verify_file(path: &Path, sha256: &str) -> Result<(), InferError> {
    let io_error = |source| InferError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(InferError::ModelMissing {
                path: path.to_path_buf(),
            })
        }
        Err(e) => return Err(io_error(e)),
    };
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file.read(&mut buffer).map_err(io_error)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    let actual = hex::encode(hasher.finalize());
    if !actual.eq_ignore_ascii_case(sha256) {
        return Err(InferError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: sha256.to_string(),
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/models")
    }

    #[test]
    fn builtin_manifest_parses_and_lists_every_model() {
        let manifest = Manifest::parse(BUILTIN_MODELS_TOML).unwrap();
        for name in [
            "yunet",
            "yunet_dynamic",
            "scrfd_500m",
            "scrfd_2.5g",
            "retinaface_mb025",
            "w600k_mbf_int8",
            "fr_feature",
        ] {
            assert!(manifest.get(name).is_ok(), "{name} missing");
        }
        assert_eq!(Manifest::builtin(), manifest);
        assert!(matches!(
            manifest.get("nope"),
            Err(InferError::UnknownModel(_))
        ));
        assert!(matches!(
            manifest.get_role("yunet", ModelRole::Recognizer),
            Err(InferError::WrongModelRole { .. })
        ));
    }

    #[test]
    fn shared_model_files_match_manifest_checksums() {
        for entry in Manifest::builtin().models {
            verify_file(&models_dir().join(&entry.file), &entry.sha256).unwrap();
        }
    }

    #[test]
    fn altered_or_missing_model_file_is_refused() {
        let entry = Manifest::builtin().get("yunet").unwrap().clone();
        let path = models_dir().join(&entry.file);
        let mut wrong = entry.sha256.clone();
        wrong.replace_range(0..1, if wrong.starts_with('0') { "1" } else { "0" });
        assert!(matches!(
            verify_file(&path, &wrong),
            Err(InferError::ChecksumMismatch { .. })
        ));
        assert!(matches!(
            verify_file(&models_dir().join("absent.onnx"), &entry.sha256),
            Err(InferError::ModelMissing { .. })
        ));
    }
}
