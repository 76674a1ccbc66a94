//! `vigil eval detect`: the group photos against data/group_photos/reference_detections.json.
//!
//! Ground truth is the reference file's det_2.5g@640 boxes: 22 faces, each confirmed by eye in
//! the data manifest, found by every reference detector.

use crate::error::ServiceError;
use serde::Serialize;
use std::path::Path;
use vigil_infer::{decode_image, BoundingBox, DecodeLimits, FaceAnalyzer};

pub const GROUND_TRUTH_KEY: &str = "det_2.5g.onnx@640";
pub const MIN_IOU: f32 = 0.5;

#[derive(Debug, Clone, Serialize)]
pub struct DetectReport {
    pub detector: String,
    pub photos: Vec<PhotoDetections>,
    pub faces_expected: usize,
    pub faces_found: usize,
    pub false_positives: usize,
    pub mean_iou: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhotoDetections {
    pub photo: String,
    pub expected: usize,
    pub found: usize,
    pub false_positives: usize,
    pub mean_iou: f64,
}

pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let to_box = |[x1, y1, x2, y2]: [f32; 4]| BoundingBox { x1, y1, x2, y2 };
    to_box(a).iou(&to_box(b))
}

/// Greedy one-to-one matching by IoU: returns the IoU of each matched ground-truth box and the
/// number of detections left unmatched.
pub fn match_boxes(truth: &[[f32; 4]], detected: &[[f32; 4]]) -> (Vec<f32>, usize) {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (t, tb) in truth.iter().enumerate() {
        for (d, db) in detected.iter().enumerate() {
            let overlap = iou(*tb, *db);
            if overlap >= MIN_IOU {
                pairs.push((overlap, t, d));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut truth_used = vec![false; truth.len()];
    let mut detected_used = vec![false; detected.len()];
    let mut matched = Vec::new();
    for (overlap, t, d) in pairs {
        if !truth_used[t] && !detected_used[d] {
            truth_used[t] = true;
            detected_used[d] = true;
            matched.push(overlap);
        }
    }
    (matched, detected_used.iter().filter(|u| !**u).count())
}

/// Reference boxes (x1, y1, x2, y2) per photo file name.
pub type GroundTruth = Vec<(String, Vec<[f32; 4]>)>;

pub fn load_ground_truth(folder: &Path) -> Result<GroundTruth, ServiceError> {
    let path = folder.join("reference_detections.json");
    let text = std::fs::read_to_string(&path).map_err(|source| ServiceError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let document: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ServiceError::Invalid(e.to_string()))?;
    let photos = document
        .as_object()
        .ok_or_else(|| ServiceError::Invalid("reference detections: not an object".into()))?;
    let mut truth = Vec::new();
    for (photo, detectors) in photos {
        let boxes = detectors[GROUND_TRUTH_KEY]
            .as_array()
            .ok_or_else(|| ServiceError::Invalid(format!("{photo}: no {GROUND_TRUTH_KEY}")))?
            .iter()
            .filter_map(|d| {
                let b = d["box_xyxy"].as_array()?;
                let v: Vec<f32> = b
                    .iter()
                    .filter_map(|x| x.as_f64().map(|x| x as f32))
                    .collect();
                (v.len() == 4).then(|| [v[0], v[1], v[2], v[3]])
            })
            .collect();
        truth.push((photo.clone(), boxes));
    }
    truth.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(truth)
}

pub fn run_detect(folder: &Path, analyzer: &FaceAnalyzer) -> Result<DetectReport, ServiceError> {
    let truth = load_ground_truth(folder)?;
    let mut photos = Vec::new();
    let mut all_ious = Vec::new();
    for (photo, expected) in truth {
        let path = folder.join(&photo);
        let bytes = std::fs::read(&path).map_err(|source| ServiceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let image = decode_image(&bytes, &DecodeLimits::default())?;
        let detected: Vec<[f32; 4]> = analyzer
            .detect(&image)?
            .iter()
            .map(|d| [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2])
            .collect();
        let (matched, false_positives) = match_boxes(&expected, &detected);
        all_ious.extend(matched.iter().map(|v| *v as f64));
        photos.push(PhotoDetections {
            photo,
            expected: expected.len(),
            found: matched.len(),
            false_positives,
            mean_iou: matched.iter().map(|v| *v as f64).sum::<f64>() / matched.len().max(1) as f64,
        });
    }
    Ok(DetectReport {
        detector: analyzer.detector_name().to_string(),
        faces_expected: photos.iter().map(|p| p.expected).sum(),
        faces_found: photos.iter().map(|p| p.found).sum(),
        false_positives: photos.iter().map(|p| p.false_positives).sum(),
        mean_iou: all_ious.iter().sum::<f64>() / all_ious.len().max(1) as f64,
        photos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_is_one_to_one_and_counts_extras() {
        let truth = [[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]];
        let detected = [
            [0.0, 0.0, 10.0, 11.0],
            [1.0, 0.0, 10.0, 10.0],
            [50.0, 50.0, 60.0, 60.0],
        ];
        let (matched, extra) = match_boxes(&truth, &detected);
        assert_eq!(matched.len(), 1);
        assert_eq!(extra, 2);
    }
}
