//! Face detection: the `FaceDetector` seam and the ONNX detectors behind it (YuNet, SCRFD,
//! RetinaFace), each letterboxed, decoded and NMS-filtered as shared/models/MANIFEST.md says.

mod decoders;
mod preprocess;

pub(crate) use preprocess::Normalisation;

use crate::manifest::{ModelEntry, ModelRole};
use crate::{DecodedImage, InferError};
use ort::session::Session;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;

/// Axis-aligned box in source-image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BoundingBox {
    /// The box of the given size centred on (cx, cy).
    pub fn from_centre(cx: f32, cy: f32, width: f32, height: f32) -> Self {
        Self {
            x1: cx - width * 0.5,
            y1: cy - height * 0.5,
            x2: cx + width * 0.5,
            y2: cy + height * 0.5,
        }
    }

    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn center(&self) -> [f32; 2] {
        [(self.x1 + self.x2) * 0.5, (self.y1 + self.y2) * 0.5]
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// Intersection over union.
    pub fn iou(&self, other: &BoundingBox) -> f32 {
        let width = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let height = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let intersection = width * height;
        let union = self.area() + other.area() - intersection;
        if union <= 0.0 {
            0.0
        } else {
            intersection / union
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectedFace {
    pub bbox: BoundingBox,
    pub score: f32,
    /// Left eye, right eye (in image), nose, left and right mouth corners, source pixels.
    pub landmarks: [[f32; 2]; 5],
}

impl DetectedFace {
    /// The same face in coordinates `scale` times larger, shifted by `offset` first.
    pub(crate) fn mapped(&self, offset: [f32; 2], scale: f32) -> DetectedFace {
        let map = |x: f32, axis: usize| (x + offset[axis]) * scale;
        DetectedFace {
            bbox: BoundingBox {
                x1: map(self.bbox.x1, 0),
                y1: map(self.bbox.y1, 1),
                x2: map(self.bbox.x2, 0),
                y2: map(self.bbox.y2, 1),
            },
            score: self.score,
            landmarks: self.landmarks.map(|[x, y]| [map(x, 0), map(y, 1)]),
        }
    }
}

/// A borrowed packed-RGB8 image (a whole picture, a pyramid level or a tile).
#[derive(Debug, Clone, Copy)]
pub struct RgbView<'a> {
    pub width: u32,
    pub height: u32,
    pub rgb: &'a [u8],
}

impl<'a> From<&'a DecodedImage> for RgbView<'a> {
    fn from(image: &'a DecodedImage) -> Self {
        RgbView {
            width: image.width,
            height: image.height,
            rgb: &image.rgb,
        }
    }
}

/// A network input of `width` × `height` pixels. Detectors with dynamic input take any
/// multiples of 32; fixed-input ones only their square.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
}

impl Canvas {
    pub fn square(side: u32) -> Self {
        Self {
            width: side,
            height: side,
        }
    }

    /// The canvas whose longer side is `longer_side` and whose shorter side is just enough
    /// (rounded up to a multiple of 32) for an `image_width` × `image_height` image
    /// letterboxed into it: a 16:9 frame at 640 gets 640×384, not 640×640, so no compute goes
    /// to padding rows (docs/design/006).
    pub fn fitting(image_width: u32, image_height: u32, longer_side: u32) -> Self {
        let (longer, shorter) = (
            image_width.max(image_height).max(1),
            image_width.min(image_height),
        );
        let scaled = (shorter as u64 * longer_side as u64).div_ceil(longer as u64) as u32;
        let short_side = scaled.div_ceil(32).max(1) * 32;
        let short_side = short_side.min(longer_side.max(32));
        if image_width >= image_height {
            Self {
                width: longer_side,
                height: short_side,
            }
        } else {
            Self {
                width: short_side,
                height: longer_side,
            }
        }
    }
}

pub trait FaceDetector: Send + Sync {
    /// Manifest name of the model.
    fn name(&self) -> &str;

    /// Network input side used when none is asked for.
    fn default_input_pixels(&self) -> u32;

    /// IoU above which overlapping detections are merged.
    fn nms_iou(&self) -> f32 {
        0.4
    }

    /// Detects faces in `image` letterboxed to `input_pixels` square, keeping scores ≥
    /// `threshold`.
    fn detect_view(
        &self,
        image: RgbView<'_>,
        input_pixels: u32,
        threshold: f32,
    ) -> Result<Vec<DetectedFace>, InferError> {
        self.detect_canvas(image, Canvas::square(input_pixels), threshold)
    }

    /// Detects faces in `image` letterboxed into `canvas`, keeping scores ≥ `threshold`.
    fn detect_canvas(
        &self,
        image: RgbView<'_>,
        canvas: Canvas,
        threshold: f32,
    ) -> Result<Vec<DetectedFace>, InferError>;

    fn detect(
        &self,
        image: &DecodedImage,
        threshold: f32,
    ) -> Result<Vec<DetectedFace>, InferError> {
        self.detect_view(image.into(), self.default_input_pixels(), threshold)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DetectorFamily {
    YuNet,
    Scrfd,
    RetinaFace,
}

struct DetectorSession {
    session: Session,
    /// Reused network input buffer.
    input: Vec<f32>,
}

/// One of the manifest's ONNX face detectors.
pub struct OnnxDetector {
    name: String,
    family: DetectorFamily,
    dynamic_input: bool,
    default_input_pixels: u32,
    normalisation: Normalisation,
    nms_iou: f32,
    // ort's `Session::run` takes `&mut self`; one lock per model keeps the detector `Sync`.
    state: Mutex<DetectorSession>,
}

impl OnnxDetector {
    /// Opens the detector `entry` from `models_dir`, verifying its checksum first.
    pub fn open(
        environment: &ort::environment::Environment,
        models_dir: &Path,
        entry: &ModelEntry,
        input_pixels: Option<u32>,
        intra_threads: usize,
    ) -> Result<Self, InferError> {
        if entry.role != ModelRole::Detector {
            return Err(InferError::WrongModelRole {
                name: entry.name.clone(),
                expected: ModelRole::Detector.to_string(),
                actual: entry.role.to_string(),
            });
        }
        let family = match entry.name.as_str() {
            "yunet" | "yunet_dynamic" => DetectorFamily::YuNet,
            "scrfd_500m" | "scrfd_2.5g" => DetectorFamily::Scrfd,
            "retinaface_mb025" => DetectorFamily::RetinaFace,
            other => return Err(InferError::UnknownModel(other.to_string())),
        };
        let default_input_pixels = match input_pixels {
            Some(pixels) if entry.dynamic_input => pixels,
            _ => entry.input_pixels,
        };
        check_input_pixels(
            &entry.name,
            entry.dynamic_input,
            entry.input_pixels,
            default_input_pixels,
        )?;
        let path = models_dir.join(&entry.file);
        crate::manifest::verify_file(&path, &entry.sha256)?;
        let session = crate::runtime::open_session(environment, &entry.name, &path, intra_threads)?;
        Ok(Self {
            name: entry.name.clone(),
            family,
            dynamic_input: entry.dynamic_input,
            default_input_pixels,
            normalisation: Normalisation {
                channel_order: entry.channel_order,
                mean: entry.mean,
                std: entry.std,
            },
            nms_iou: if family == DetectorFamily::YuNet {
                0.3
            } else {
                0.4
            },
            state: Mutex::new(DetectorSession {
                session,
                input: Vec::new(),
            }),
        })
    }

    /// Whether the network accepts other input sizes than its default.
    pub fn dynamic_input(&self) -> bool {
        self.dynamic_input
    }
}

fn check_input_pixels(
    name: &str,
    dynamic: bool,
    fixed: u32,
    requested: u32,
) -> Result<(), InferError> {
    check_canvas(name, dynamic, fixed, Canvas::square(requested))
}

fn check_canvas(name: &str, dynamic: bool, fixed: u32, canvas: Canvas) -> Result<(), InferError> {
    if !dynamic && canvas != Canvas::square(fixed) {
        return Err(InferError::InvalidSetting(format!(
            "detector {name} takes only {fixed}x{fixed} input, not {}x{}",
            canvas.width, canvas.height
        )));
    }
    for side in [canvas.width, canvas.height] {
        if side < 32 || !side.is_multiple_of(32) {
            return Err(InferError::InvalidSetting(format!(
                "detector input {side} must be a multiple of 32"
            )));
        }
    }
    Ok(())
}

impl FaceDetector for OnnxDetector {
    fn name(&self) -> &str {
        &self.name
    }

    fn default_input_pixels(&self) -> u32 {
        self.default_input_pixels
    }

    fn nms_iou(&self) -> f32 {
        self.nms_iou
    }

    fn detect_canvas(
        &self,
        image: RgbView<'_>,
        canvas: Canvas,
        threshold: f32,
    ) -> Result<Vec<DetectedFace>, InferError> {
        check_canvas(
            &self.name,
            self.dynamic_input,
            self.default_input_pixels,
            canvas,
        )?;
        if image.rgb.len() != image.width as usize * image.height as usize * 3 || image.width == 0 {
            return Err(InferError::InvalidSetting(
                "image buffer does not match its size".into(),
            ));
        }
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let state = &mut *guard;
        let scale = preprocess::letterbox_into(
            image.rgb,
            image.width,
            image.height,
            canvas,
            &self.normalisation,
            &mut state.input,
        );
        let shape = [1usize, 3, canvas.height as usize, canvas.width as usize];
        let tensor = TensorRef::from_array_view((shape, state.input.as_slice()))
            .map_err(|e| InferError::onnx(&self.name, e))?;
        let outputs = state
            .session
            .run(ort::inputs![tensor])
            .map_err(|e| InferError::onnx(&self.name, e))?;
        let mut faces = match self.family {
            DetectorFamily::Scrfd => decoders::scrfd(&self.name, &outputs, canvas, threshold)?,
            DetectorFamily::YuNet => decoders::yunet(&self.name, &outputs, canvas, threshold)?,
            DetectorFamily::RetinaFace => {
                decoders::retinaface(&self.name, &outputs, canvas, threshold)?
            }
        };
        drop(outputs);
        drop(guard);
        let inverse = 1.0 / scale;
        for face in faces.iter_mut() {
            *face = face.mapped([0.0, 0.0], inverse);
        }
        let mut kept = non_maximum_suppression(faces, self.nms_iou);
        let (width, height) = (image.width as f32, image.height as f32);
        for face in kept.iter_mut() {
            face.bbox.x1 = face.bbox.x1.clamp(0.0, width);
            face.bbox.x2 = face.bbox.x2.clamp(0.0, width);
            face.bbox.y1 = face.bbox.y1.clamp(0.0, height);
            face.bbox.y2 = face.bbox.y2.clamp(0.0, height);
        }
        Ok(kept)
    }
}

/// Greedy NMS: highest score first, dropping boxes overlapping a kept one by more than `iou`.
pub fn non_maximum_suppression(mut faces: Vec<DetectedFace>, iou: f32) -> Vec<DetectedFace> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<DetectedFace> = Vec::with_capacity(faces.len().min(64));
    for face in faces {
        if kept.iter().all(|k| k.bbox.iou(&face.bbox) <= iou) {
            kept.push(face);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, score: f32) -> DetectedFace {
        DetectedFace {
            bbox: BoundingBox {
                x1: x,
                y1: 0.0,
                x2: x + 10.0,
                y2: 10.0,
            },
            score,
            landmarks: [[0.0; 2]; 5],
        }
    }

    #[test]
    fn nms_keeps_best_of_overlapping_and_all_disjoint() {
        let kept =
            non_maximum_suppression(vec![face(0.0, 0.6), face(1.0, 0.9), face(50.0, 0.7)], 0.4);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].score, 0.7);
    }

    #[test]
    fn fixed_size_detector_refuses_other_input() {
        assert!(check_input_pixels("yunet", false, 640, 256).is_err());
        assert!(check_input_pixels("scrfd", true, 640, 250).is_err());
        assert!(check_input_pixels("scrfd", true, 640, 256).is_ok());
        let wide = Canvas {
            width: 640,
            height: 384,
        };
        assert!(check_canvas("scrfd", true, 640, wide).is_ok());
        assert!(check_canvas("yunet", false, 640, wide).is_err());
    }

    #[test]
    fn a_fitting_canvas_rounds_the_shorter_side_up_to_32() {
        assert_eq!(
            Canvas::fitting(1280, 720, 640),
            Canvas {
                width: 640,
                height: 384
            }
        );
        assert_eq!(
            Canvas::fitting(720, 1280, 320),
            Canvas {
                width: 192,
                height: 320
            }
        );
        assert_eq!(Canvas::fitting(500, 500, 640), Canvas::square(640));
    }
}
