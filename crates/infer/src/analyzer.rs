//! The whole face pipeline behind one value: detect (tiling large images) → align → quality →
//! embed.

use crate::align::align_face;
use crate::detect::{Canvas, FaceDetector, OnnxDetector, RgbView};
use crate::embed::{FaceEmbedder, OnnxEmbedder};
use crate::manifest::{Manifest, ModelRole};
use crate::quality::{FaceQuality, QualityGate, QualityIssue};
use crate::tiled::{detect_tiled, TilingSettings};
use crate::{AlignedFace, DecodedImage, DetectedFace, InferError};
use std::path::PathBuf;
use vigil_base::config::{PipelineConfig, QualityConfig, VigilConfig};
use vigil_base::{Embedding, ModelId};

#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzerSettings {
    pub models_dir: PathBuf,
    /// Detector name from the manifest.
    pub detector: String,
    /// Recognizer name from the manifest.
    pub recognizer: String,
    /// Intra-op threads per model session; 0 = one per physical core.
    pub threads: usize,
    /// Input size, thresholds and tiling (its detector/recognizer fields are not read).
    pub pipeline: PipelineConfig,
    pub quality: QualityConfig,
    /// Explicit libonnxruntime path; otherwise `ORT_DYLIB_PATH` or the project's `.venv`.
    pub onnxruntime_library: Option<PathBuf>,
    /// The detector for camera frames; None = the photo detector at its input size.
    pub video_detector: Option<VideoDetectorSettings>,
}

/// The detector camera frames go through: chosen for video (cheap, at an input sized to the
/// faces a camera shows), separate from the photo default (docs/design/006).
#[derive(Debug, Clone, PartialEq)]
pub struct VideoDetectorSettings {
    /// Detector name from the manifest.
    pub name: String,
    /// Longer side of the network input; the shorter follows the frame (multiple of 32).
    pub input_pixels: u32,
    /// None = the detector's recommended threshold.
    pub threshold: Option<f32>,
}

impl AnalyzerSettings {
    pub fn from_config(config: &VigilConfig) -> Self {
        Self {
            models_dir: config.models_dir.clone(),
            detector: config.pipeline.detector.clone(),
            recognizer: config.pipeline.recognizer.clone(),
            threads: config.threads,
            pipeline: config.pipeline.clone(),
            quality: config.quality.clone(),
            onnxruntime_library: config.onnxruntime_library.clone(),
            video_detector: Some(VideoDetectorSettings {
                name: if config.video.detector.is_empty() {
                    config.pipeline.detector.clone()
                } else {
                    config.video.detector.clone()
                },
                input_pixels: config.video.detector_input_pixels,
                threshold: config.video.detection_threshold,
            }),
        }
    }
}

/// One analysed face.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzedFace {
    pub detection: DetectedFace,
    pub quality: FaceQuality,
    /// Empty when the face passes the quality gate.
    pub quality_issues: Vec<QualityIssue>,
    pub embedding: Embedding,
    pub aligned: AlignedFace,
}

impl AnalyzedFace {
    pub fn is_usable(&self) -> bool {
        self.quality_issues.is_empty()
    }
}

/// A detected face aligned and measured, before (or without) its embedding: what decides
/// whether embedding it is worth its cost.
#[derive(Debug, Clone, PartialEq)]
pub struct AssessedFace {
    pub detection: DetectedFace,
    pub quality: FaceQuality,
    /// Empty when the face passes the quality gate.
    pub quality_issues: Vec<QualityIssue>,
    pub aligned: AlignedFace,
}

impl AssessedFace {
    pub fn is_usable(&self) -> bool {
        self.quality_issues.is_empty()
    }
}

/// The video detector and how it runs.
struct VideoDetector {
    /// None = the photo detector.
    own: Option<OnnxDetector>,
    input_pixels: u32,
    threshold: f32,
}

/// Threshold for a detector whose manifest entry recommends none.
pub const DEFAULT_DETECTION_THRESHOLD: f32 = 0.5;

/// Smallest network side for adaptive (per-image) input sizes.
pub const MIN_ADAPTIVE_INPUT_PIXELS: u32 = 320;

pub struct FaceAnalyzer {
    detector: OnnxDetector,
    video: VideoDetector,
    embedder: OnnxEmbedder,
    tiling: TilingSettings,
    detection_threshold: f32,
    quality_gate: QualityGate,
}

impl FaceAnalyzer {
    pub fn new(settings: AnalyzerSettings) -> Result<Self, InferError> {
        let manifest = Manifest::builtin();
        let detector_entry = manifest.get_role(&settings.detector, ModelRole::Detector)?;
        let recognizer_entry = manifest.get_role(&settings.recognizer, ModelRole::Recognizer)?;
        let environment = crate::runtime::environment(settings.onnxruntime_library.as_deref())?;
        let detector = OnnxDetector::open(
            &environment,
            &settings.models_dir,
            detector_entry,
            Some(settings.pipeline.detector_input_pixels),
            settings.threads,
        )?;
        let embedder = OnnxEmbedder::open(
            &environment,
            &settings.models_dir,
            recognizer_entry,
            settings.threads,
        )?;
        let tiling = TilingSettings {
            input_pixels: detector.default_input_pixels(),
            overlap: settings.pipeline.tile_overlap,
            tile_above_factor: settings.pipeline.tile_above_factor,
        };
        let detection_threshold = settings
            .pipeline
            .detection_threshold
            .or(detector_entry.score_threshold)
            .unwrap_or(DEFAULT_DETECTION_THRESHOLD);
        // the photo detector serves video too when the settings ask for nothing else
        let own_settings = settings.video_detector.as_ref().filter(|video| {
            video.name != settings.detector
                || video.input_pixels != detector.default_input_pixels()
                || video.threshold.is_some()
        });
        let video = match own_settings {
            None => VideoDetector {
                own: None,
                input_pixels: detector.default_input_pixels(),
                threshold: detection_threshold,
            },
            Some(video) => {
                let entry = manifest.get_role(&video.name, ModelRole::Detector)?;
                let own = OnnxDetector::open(
                    &environment,
                    &settings.models_dir,
                    entry,
                    Some(video.input_pixels),
                    settings.threads,
                )?;
                VideoDetector {
                    input_pixels: own.default_input_pixels(),
                    threshold: video
                        .threshold
                        .or(entry.score_threshold)
                        .unwrap_or(DEFAULT_DETECTION_THRESHOLD),
                    own: Some(own),
                }
            }
        };
        Ok(Self {
            detector,
            video,
            embedder,
            tiling,
            detection_threshold,
            quality_gate: QualityGate::new(&settings.quality),
        })
    }

    pub fn from_config(config: &VigilConfig) -> Result<Self, InferError> {
        Self::new(AnalyzerSettings::from_config(config))
    }

    pub fn detector_name(&self) -> &str {
        self.detector.name()
    }

    /// The detector camera frames go through, and the longer side of its input.
    pub fn video_detector(&self) -> (&str, u32) {
        let detector = self.video.own.as_ref().unwrap_or(&self.detector);
        (detector.name(), self.video.input_pixels)
    }

    /// Faces in a camera frame: the video detector, one pass on a canvas shaped like the
    /// frame (no tiling: a camera's faces are sized for its view, not for a 6000-pixel photo).
    pub fn detect_frame(&self, frame: RgbView<'_>) -> Result<Vec<DetectedFace>, InferError> {
        let detector = self.video.own.as_ref().unwrap_or(&self.detector);
        let canvas = if detector.dynamic_input() {
            Canvas::fitting(frame.width, frame.height, self.video.input_pixels)
        } else {
            Canvas::square(detector.default_input_pixels())
        };
        detector.detect_canvas(frame, canvas, self.video.threshold)
    }

    pub fn recognizer_name(&self) -> &str {
        self.embedder.model_id().as_str()
    }

    pub fn recognizer_model(&self) -> &ModelId {
        self.embedder.model_id()
    }

    /// Faces in the image at the configured input size and threshold, tiling large images.
    pub fn detect(&self, image: &DecodedImage) -> Result<Vec<DetectedFace>, InferError> {
        if self.tiling.needs_tiling(image.width, image.height) {
            detect_tiled(
                &self.detector,
                image.into(),
                &self.tiling,
                self.detection_threshold,
            )
        } else {
            let input_pixels = self.untiled_input_pixels(image.width, image.height);
            self.detector
                .detect_view(image.into(), input_pixels, self.detection_threshold)
        }
    }

    /// Network side for an untiled pass. A dynamic-input detector runs at the image's own
    /// scale (its longer side rounded up to a multiple of 32, at least
    /// `MIN_ADAPTIVE_INPUT_PIXELS` so small faces in small images still reach the detector's
    /// smallest anchors), capped by the configured input: upscaling a 250-pixel photo to 640
    /// adds no detail and costs six times the compute.
    pub fn untiled_input_pixels(&self, width: u32, height: u32) -> u32 {
        if !self.detector.dynamic_input() {
            return self.tiling.input_pixels;
        }
        let longer = width.max(height).div_ceil(32) * 32;
        longer.clamp(
            MIN_ADAPTIVE_INPUT_PIXELS,
            self.tiling.input_pixels.max(MIN_ADAPTIVE_INPUT_PIXELS),
        )
    }

    /// The score threshold in use (configured, or the detector's recommended one).
    pub fn detection_threshold(&self) -> f32 {
        self.detection_threshold
    }

    /// One untiled pass at `input_pixels` and `threshold` (reproduces reference pipelines).
    pub fn detect_with(
        &self,
        image: &DecodedImage,
        input_pixels: u32,
        threshold: f32,
    ) -> Result<Vec<DetectedFace>, InferError> {
        self.detector
            .detect_view(RgbView::from(image), input_pixels, threshold)
    }

    pub fn align(&self, image: &DecodedImage, face: &DetectedFace) -> AlignedFace {
        align_face(image, face)
    }

    pub fn embed(&self, faces: &[AlignedFace]) -> Result<Vec<Embedding>, InferError> {
        self.embedder.embed(faces)
    }

    /// Quality and gate verdict for an aligned face.
    pub fn assess(
        &self,
        face: &DetectedFace,
        aligned: &AlignedFace,
    ) -> (FaceQuality, Vec<QualityIssue>) {
        let quality = FaceQuality::measure(face, aligned);
        let issues = self.quality_gate.check(&quality);
        (quality, issues)
    }

    /// Detect → align → quality → embed; every face gets an embedding, usable or not.
    pub fn analyze(&self, image: &DecodedImage) -> Result<Vec<AnalyzedFace>, InferError> {
        let detections = self.detect(image)?;
        self.analyze_detections(image, detections)
    }

    /// The stages after detection, for callers that choose the detections themselves.
    pub fn analyze_detections(
        &self,
        image: &DecodedImage,
        detections: Vec<DetectedFace>,
    ) -> Result<Vec<AnalyzedFace>, InferError> {
        let assessed = self.assess_detections(image, detections);
        let aligned: Vec<AlignedFace> = assessed.iter().map(|f| f.aligned.clone()).collect();
        let embeddings = self.embed(&aligned)?;
        Ok(assessed
            .into_iter()
            .zip(embeddings)
            .map(|(face, embedding)| AnalyzedFace {
                detection: face.detection,
                quality: face.quality,
                quality_issues: face.quality_issues,
                embedding,
                aligned: face.aligned,
            })
            .collect())
    }

    /// Align and measure each detection; no model runs (a warp and a Laplacian per face).
    pub fn assess_detections(
        &self,
        image: &DecodedImage,
        detections: Vec<DetectedFace>,
    ) -> Vec<AssessedFace> {
        detections
            .into_iter()
            .map(|detection| {
                let aligned = self.align(image, &detection);
                let (quality, quality_issues) = self.assess(&detection, &aligned);
                AssessedFace {
                    detection,
                    quality,
                    quality_issues,
                    aligned,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyzer_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<FaceAnalyzer>();
    }

    #[test]
    fn unknown_or_miscast_models_are_refused_before_loading() {
        let settings = |detector: &str, recognizer: &str| AnalyzerSettings {
            models_dir: PathBuf::from("/nonexistent"),
            detector: detector.into(),
            recognizer: recognizer.into(),
            threads: 1,
            pipeline: PipelineConfig::default(),
            quality: QualityConfig::default(),
            onnxruntime_library: None,
            video_detector: None,
        };
        assert!(matches!(
            FaceAnalyzer::new(settings("nope", "w600k_mbf_int8")),
            Err(InferError::UnknownModel(_))
        ));
        assert!(matches!(
            FaceAnalyzer::new(settings("fr_feature", "w600k_mbf_int8")),
            Err(InferError::WrongModelRole { .. })
        ));
    }
}
