//! Helpers shared by the integration tests: shared data paths and the onnxruntime library.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use vigil_base::config::{PipelineConfig, QualityConfig};
use vigil_infer::{AnalyzerSettings, DecodeLimits, DecodedImage, FaceAnalyzer};

pub fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

pub fn models_dir() -> PathBuf {
    shared().join("models")
}

/// A `.venv` onnxruntime above the crate, else None (the runtime then honours ORT_DYLIB_PATH).
pub fn onnxruntime_library() -> Option<PathBuf> {
    if std::env::var_os("ORT_DYLIB_PATH").is_some() {
        return None;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find_map(|dir| {
            let lib = dir.join(".venv/lib");
            let python = std::fs::read_dir(&lib)
                .ok()?
                .flatten()
                .find(|e| e.file_name().to_string_lossy().starts_with("python3"))?;
            let capi = python.path().join("site-packages/onnxruntime/capi");
            let mut found: Vec<PathBuf> = std::fs::read_dir(capi)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so"))
                })
                .collect();
            found.sort();
            found.pop()
        })
}

pub fn environment() -> ort::environment::Environment {
    vigil_infer::runtime::environment(onnxruntime_library().as_deref()).unwrap()
}

pub fn analyzer(detector: &str, recognizer: &str, pipeline: PipelineConfig) -> FaceAnalyzer {
    FaceAnalyzer::new(AnalyzerSettings {
        models_dir: models_dir(),
        detector: detector.into(),
        recognizer: recognizer.into(),
        threads: 2,
        pipeline,
        quality: QualityConfig::default(),
        onnxruntime_library: onnxruntime_library(),
        video_detector: None,
    })
    .unwrap()
}

pub fn load(path: &Path) -> DecodedImage {
    vigil_infer::decode_image(&std::fs::read(path).unwrap(), &DecodeLimits::default()).unwrap()
}

/// Reference boxes per photo for one detector key of reference_detections.json.
pub fn reference_boxes(photo: &str, key: &str, min_score: f32) -> Vec<[f32; 4]> {
    let text =
        std::fs::read_to_string(shared().join("data/group_photos/reference_detections.json"))
            .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json[photo][key]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["score"].as_f64().unwrap() as f32 >= min_score)
        .map(|d| {
            let b: Vec<f32> = d["box_xyxy"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            [b[0], b[1], b[2], b[3]]
        })
        .collect()
}

pub fn iou(a: [f32; 4], b: &vigil_infer::BoundingBox) -> f32 {
    let other = vigil_infer::BoundingBox {
        x1: a[0],
        y1: a[1],
        x2: a[2],
        y2: a[3],
    };
    other.iou(b)
}

pub const PHOTOS: [&str; 6] = [
    "sample1.jpg",
    "sample2.jpg",
    "sample3.jpg",
    "sample4.jpg",
    "sample5.jpg",
    "sample6.jpg",
];
