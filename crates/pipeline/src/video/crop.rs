//! The best shot's pixels: a margin crop cut from its frame, so that the frame itself can be
//! dropped, JPEG-encoded once the track ends.

use crate::ServiceError;
use vigil_base::Embedding;
use vigil_infer::{BoundingBox, DecodedImage};
use vigil_track::FaceObservation;

/// The best-shot crop: the face box grown by this fraction of its size on each side.
const CROP_MARGIN: f32 = 0.4;
const CROP_JPEG_QUALITY: u8 = 90;

/// A best-shot candidate's pixels, cut from its frame so the frame itself can be dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceCrop {
    /// Where the crop's top-left corner is in the frame.
    origin: [f32; 2],
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl FaceCrop {
    pub(super) fn cut(frame: &DecodedImage, bbox: &BoundingBox) -> Self {
        let margin_x = bbox.width() * CROP_MARGIN;
        let margin_y = bbox.height() * CROP_MARGIN;
        let clamp_x = |v: f32| v.clamp(0.0, frame.width as f32) as u32;
        let clamp_y = |v: f32| v.clamp(0.0, frame.height as f32) as u32;
        let x1 = clamp_x(bbox.x1 - margin_x);
        let y1 = clamp_y(bbox.y1 - margin_y);
        let x2 = clamp_x(bbox.x2 + margin_x).max(x1 + 1).min(frame.width);
        let y2 = clamp_y(bbox.y2 + margin_y).max(y1 + 1).min(frame.height);
        let (width, height) = (x2.saturating_sub(x1).max(1), y2.saturating_sub(y1).max(1));
        let mut rgb = Vec::with_capacity((width * height * 3) as usize);
        for row in y1..y1 + height {
            let start = ((row as usize * frame.width as usize) + x1 as usize) * 3;
            let end = start + width as usize * 3;
            match frame.rgb.get(start..end) {
                Some(line) => rgb.extend_from_slice(line),
                None => rgb.resize(rgb.len() + width as usize * 3, 0),
            }
        }
        Self {
            origin: [x1 as f32, y1 as f32],
            width,
            height,
            rgb,
        }
    }

    /// The embedding of the face `observation` shows in this crop (its landmarks are frame
    /// coordinates): for a track that never showed a usable face, so that its sighting still
    /// carries the embedding of its best shot, which is never matched (docs/design/006).
    pub(super) fn embed(
        &self,
        observation: &FaceObservation<FaceCrop>,
        analyzer: &vigil_infer::FaceAnalyzer,
    ) -> Result<Embedding, ServiceError> {
        let image = DecodedImage::from_rgb(self.width, self.height, self.rgb.clone())?;
        let [dx, dy] = self.origin;
        let face = vigil_infer::DetectedFace {
            bbox: BoundingBox {
                x1: observation.bbox.x1 - dx,
                y1: observation.bbox.y1 - dy,
                x2: observation.bbox.x2 - dx,
                y2: observation.bbox.y2 - dy,
            },
            score: observation.detector_score,
            landmarks: observation.landmarks.map(|[x, y]| [x - dx, y - dy]),
        };
        let aligned = analyzer.align(&image, &face);
        analyzer
            .embed(std::slice::from_ref(&aligned))?
            .pop()
            .ok_or_else(|| ServiceError::Invalid("the recognizer returned no embedding".into()))
    }

    pub(super) fn to_jpeg(&self) -> Result<Vec<u8>, ServiceError> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, CROP_JPEG_QUALITY)
            .encode(
                &self.rgb,
                self.width,
                self.height,
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|e| ServiceError::Invalid(format!("cannot encode the best shot: {e}")))?;
        Ok(out)
    }
}
