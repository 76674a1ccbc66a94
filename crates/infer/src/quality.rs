//! Face quality: size, sharpness and head pose from the landmarks, and the gate that decides
//! whether a face is good enough to enrol or search with.

use crate::align::ALIGNED_SIDE;
use crate::{AlignedFace, DetectedFace};
use serde::{Deserialize, Serialize};
use vigil_base::config::QualityConfig;

/// Frontal nose position along the eye→mouth axis in the ArcFace template
/// ((71.74 − 51.60) / (92.28 − 51.60)).
const FRONTAL_NOSE_DEPTH_RATIO: f32 = 0.495;
/// Lateral nose offset, in inter-ocular distances, seen at 90° yaw. Chosen so that yaw reads
/// in degrees roughly; see docs/design/001-model-pipeline.md for the LFW check.
const NOSE_OFFSET_AT_FULL_TURN: f32 = 0.6;
/// Vertical nose shift, as a fraction of the eye–mouth distance, seen at 90° pitch.
const NOSE_SHIFT_AT_FULL_TILT: f32 = 0.6;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceQuality {
    /// Width of the detection box, source pixels.
    pub face_pixels: f32,
    /// Variance of the Laplacian of the grayscale aligned crop.
    pub sharpness: f32,
    /// Estimated left/right head turn, degrees (sign: positive = nose towards image right).
    pub yaw_degrees: f32,
    /// Estimated up/down tilt, degrees (positive = nose lower than frontal).
    pub pitch_degrees: f32,
    pub detector_score: f32,
    /// 0..1 summary for ranking faces of one person (best shot); not a gate.
    pub score: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityIssue {
    TooSmall,
    Blurry,
    PoseTooFar,
    LowDetectorScore,
}

impl FaceQuality {
    pub fn measure(face: &DetectedFace, aligned: &AlignedFace) -> Self {
        let (yaw_degrees, pitch_degrees) = head_pose_degrees(&face.landmarks);
        let face_pixels = face.bbox.width();
        let sharpness = laplacian_variance(aligned);
        let size_term = (face_pixels / ALIGNED_SIDE as f32).clamp(0.0, 1.0);
        let sharpness_term = (sharpness / 100.0).clamp(0.0, 1.0);
        let pose_term =
            (yaw_degrees.to_radians().cos() * pitch_degrees.to_radians().cos()).max(0.0);
        let score = (face.score.clamp(0.0, 1.0) * size_term * sharpness_term * pose_term).sqrt();
        Self {
            face_pixels,
            sharpness,
            yaw_degrees,
            pitch_degrees,
            detector_score: face.score,
            score,
        }
    }
}

/// Yaw and pitch from where the nose sits between the eyes and the mouth, normalised so that
/// the estimate does not depend on face size or in-plane rotation.
pub fn head_pose_degrees(landmarks: &[[f32; 2]; 5]) -> (f32, f32) {
    let [left_eye, right_eye, nose, left_mouth, right_mouth] = *landmarks;
    let eye_mid = [
        (left_eye[0] + right_eye[0]) * 0.5,
        (left_eye[1] + right_eye[1]) * 0.5,
    ];
    let mouth_mid = [
        (left_mouth[0] + right_mouth[0]) * 0.5,
        (left_mouth[1] + right_mouth[1]) * 0.5,
    ];
    let eye_axis = [right_eye[0] - left_eye[0], right_eye[1] - left_eye[1]];
    let inter_ocular = (eye_axis[0] * eye_axis[0] + eye_axis[1] * eye_axis[1]).sqrt();
    let down = [mouth_mid[0] - eye_mid[0], mouth_mid[1] - eye_mid[1]];
    let eye_to_mouth = (down[0] * down[0] + down[1] * down[1]).sqrt();
    if inter_ocular < 1e-3 || eye_to_mouth < 1e-3 {
        return (90.0, 90.0);
    }
    // The face's own frame: x along the eyes, y from the eyes to the mouth.
    let across = [eye_axis[0] / inter_ocular, eye_axis[1] / inter_ocular];
    let along = [down[0] / eye_to_mouth, down[1] / eye_to_mouth];
    let centre = [
        (eye_mid[0] + mouth_mid[0]) * 0.5,
        (eye_mid[1] + mouth_mid[1]) * 0.5,
    ];
    let nose_offset = [nose[0] - centre[0], nose[1] - centre[1]];
    let lateral = (nose_offset[0] * across[0] + nose_offset[1] * across[1]) / inter_ocular;
    let nose_from_eyes = [nose[0] - eye_mid[0], nose[1] - eye_mid[1]];
    let depth = (nose_from_eyes[0] * along[0] + nose_from_eyes[1] * along[1]) / eye_to_mouth;
    let yaw = (lateral / NOSE_OFFSET_AT_FULL_TURN)
        .clamp(-1.0, 1.0)
        .asin()
        .to_degrees();
    let pitch = ((depth - FRONTAL_NOSE_DEPTH_RATIO) / NOSE_SHIFT_AT_FULL_TILT)
        .clamp(-1.0, 1.0)
        .asin()
        .to_degrees();
    (yaw, pitch)
}

/// Variance of the 4-neighbour Laplacian over the interior of the grayscale crop.
pub fn laplacian_variance(aligned: &AlignedFace) -> f32 {
    let side = ALIGNED_SIDE;
    let gray: Vec<f32> = aligned
        .rgb
        .chunks_exact(3)
        .map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)
        .collect();
    if gray.len() != side * side {
        return 0.0;
    }
    let (mut sum, mut sum_squares, mut count) = (0f64, 0f64, 0f64);
    for y in 1..side - 1 {
        let (above, row, below) = (
            &gray[(y - 1) * side..y * side],
            &gray[y * side..(y + 1) * side],
            &gray[(y + 1) * side..(y + 2) * side],
        );
        for x in 1..side - 1 {
            let laplacian = (above[x] + below[x] + row[x - 1] + row[x + 1] - 4.0 * row[x]) as f64;
            sum += laplacian;
            sum_squares += laplacian * laplacian;
            count += 1.0;
        }
    }
    let mean = sum / count;
    (sum_squares / count - mean * mean) as f32
}

/// Applies `QualityConfig` thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityGate {
    config: QualityConfig,
}

impl QualityGate {
    pub fn new(config: &QualityConfig) -> Self {
        Self {
            config: config.clone(),
        }
    }

    /// What is wrong with the face; empty means usable.
    pub fn check(&self, quality: &FaceQuality) -> Vec<QualityIssue> {
        let mut issues = Vec::new();
        if quality.face_pixels < self.config.min_face_pixels {
            issues.push(QualityIssue::TooSmall);
        }
        if quality.sharpness < self.config.min_sharpness {
            issues.push(QualityIssue::Blurry);
        }
        if quality.yaw_degrees.abs() > self.config.max_yaw_degrees
            || quality.pitch_degrees.abs() > self.config.max_pitch_degrees
        {
            issues.push(QualityIssue::PoseTooFar);
        }
        if quality.detector_score < self.config.min_detector_score {
            issues.push(QualityIssue::LowDetectorScore);
        }
        issues
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::ARCFACE_TEMPLATE;

    #[test]
    fn template_landmarks_read_as_frontal() {
        let (yaw, pitch) = head_pose_degrees(&ARCFACE_TEMPLATE);
        assert!(yaw.abs() < 2.0 && pitch.abs() < 2.0, "{yaw} {pitch}");
    }

    #[test]
    fn nose_moved_sideways_reads_as_yaw_in_that_direction() {
        let mut turned = ARCFACE_TEMPLATE;
        turned[2][0] += 15.0;
        let (yaw, _) = head_pose_degrees(&turned);
        assert!(yaw > 30.0, "{yaw}");
        turned[2][0] -= 30.0;
        assert!(head_pose_degrees(&turned).0 < -30.0);
    }

    #[test]
    fn flat_crop_is_blurry_and_checkerboard_is_sharp() {
        let flat = AlignedFace {
            rgb: vec![128; ALIGNED_SIDE * ALIGNED_SIDE * 3],
        };
        assert_eq!(laplacian_variance(&flat), 0.0);
        let checker = AlignedFace {
            rgb: (0..ALIGNED_SIDE * ALIGNED_SIDE)
                .flat_map(|i| {
                    let v = if (i % ALIGNED_SIDE + i / ALIGNED_SIDE).is_multiple_of(2) {
                        0
                    } else {
                        255
                    };
                    [v, v, v]
                })
                .collect(),
        };
        assert!(laplacian_variance(&checker) > 1000.0);
    }

    #[test]
    fn gate_reports_each_failed_threshold() {
        let gate = QualityGate::new(&QualityConfig::default());
        let good = FaceQuality {
            face_pixels: 100.0,
            sharpness: 200.0,
            yaw_degrees: 5.0,
            pitch_degrees: 0.0,
            detector_score: 0.9,
            score: 0.9,
        };
        assert!(gate.check(&good).is_empty());
        let bad = FaceQuality {
            face_pixels: 10.0,
            sharpness: 1.0,
            yaw_degrees: 80.0,
            detector_score: 0.1,
            ..good
        };
        assert_eq!(
            gate.check(&bad),
            vec![
                QualityIssue::TooSmall,
                QualityIssue::Blurry,
                QualityIssue::PoseTooFar,
                QualityIssue::LowDetectorScore
            ]
        );
    }
}
