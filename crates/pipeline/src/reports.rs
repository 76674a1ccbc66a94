//! Results of the service's operations. They are the public schema of the HTTP API too,
//! so every score travels with its calibrated false-match rate.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vigil_infer::{AnalyzedFace, QualityIssue};

/// A detected face with its quality measures.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FaceReport {
    /// Box in source-image pixels: x1, y1, x2, y2.
    pub bbox: [f32; 4],
    pub detector_score: f32,
    /// Five landmarks (eyes, nose, mouth corners) in source-image pixels.
    pub landmarks: [[f32; 2]; 5],
    pub quality: QualityReport,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QualityReport {
    /// Combined quality in [0, 1].
    pub score: f32,
    pub face_pixels: f32,
    pub sharpness: f32,
    pub yaw_degrees: f32,
    pub pitch_degrees: f32,
    /// Reasons the face is not usable; empty when it is.
    #[schema(value_type = Vec<String>)]
    pub issues: Vec<QualityIssue>,
    pub usable: bool,
}

impl FaceReport {
    pub fn from_analyzed(face: &AnalyzedFace) -> Self {
        let b = &face.detection.bbox;
        Self {
            bbox: [b.x1, b.y1, b.x2, b.y2],
            detector_score: face.detection.score,
            landmarks: face.detection.landmarks,
            quality: QualityReport {
                score: face.quality.score,
                face_pixels: face.quality.face_pixels,
                sharpness: face.quality.sharpness,
                yaw_degrees: face.quality.yaw_degrees,
                pitch_degrees: face.quality.pitch_degrees,
                issues: face.quality_issues.clone(),
                usable: face.is_usable(),
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DetectionReport {
    pub image_sha256: String,
    pub width: u32,
    pub height: u32,
    pub faces: Vec<FaceReport>,
}

/// One candidate identity for a probe face.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Candidate {
    pub subject_id: i64,
    pub subject_name: String,
    /// Raw cosine similarity of the best template of this subject.
    pub score: f32,
    /// Calibrated probability that a different person scores at least this high.
    pub false_match_rate: f64,
    /// True when the score lies beyond the measured impostor range (tail fit).
    pub false_match_rate_extrapolated: bool,
    /// false_match_rate × number of templates searched: how many false candidates a search
    /// of this gallery is expected to return at this score.
    pub expected_false_candidates: f64,
    pub best_template_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IdentifiedFace {
    pub face: FaceReport,
    /// Candidates at or below the false-match-rate threshold, best first. Empty for an
    /// unusable face: a poor face yields no name rather than a wrong one.
    pub candidates: Vec<Candidate>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IdentifyReport {
    pub image_sha256: String,
    pub model: String,
    /// Templates of this model in the gallery at search time.
    pub gallery_templates: usize,
    /// The threshold applied, as a false-match rate, and the cosine it corresponds to.
    pub false_match_rate_threshold: f64,
    pub score_threshold: f32,
    pub faces: Vec<IdentifiedFace>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyReport {
    pub model: String,
    pub score: f32,
    pub false_match_rate: f64,
    pub false_match_rate_extrapolated: bool,
    pub false_match_rate_threshold: f64,
    /// True when false_match_rate is at or below the threshold.
    pub same_person: bool,
    pub face_a: FaceReport,
    pub face_b: FaceReport,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubjectView {
    pub id: i64,
    pub name: String,
    pub notes: Option<String>,
    pub created_at_ms: i64,
    pub template_count: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TemplateView {
    pub id: i64,
    pub model: String,
    pub quality: f32,
    pub detector: String,
    pub source_sha256: String,
    pub source_name: Option<String>,
    pub bbox: [f32; 4],
    pub created_at_ms: i64,
}

impl SubjectView {
    pub fn of(subject: vigil_store::Subject, template_count: usize) -> Self {
        Self {
            id: subject.id.0,
            name: subject.name,
            notes: subject.notes,
            created_at_ms: subject.created_at_ms,
            template_count,
        }
    }
}

impl From<vigil_store::TemplateInfo> for TemplateView {
    fn from(t: vigil_store::TemplateInfo) -> Self {
        Self {
            id: t.id.0,
            model: t.model.to_string(),
            quality: t.quality,
            detector: t.detector,
            source_sha256: t.source_sha256,
            source_name: t.source_name,
            bbox: t.bbox,
            created_at_ms: t.created_at_ms,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubjectDetail {
    pub subject: SubjectView,
    pub templates: Vec<TemplateView>,
}

/// Outcome of one image in an enrolment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrolledImage {
    pub name: String,
    pub template_id: i64,
    pub quality: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrolmentReport {
    pub subject: SubjectView,
    pub created: bool,
    pub enrolled: Vec<EnrolledImage>,
}
