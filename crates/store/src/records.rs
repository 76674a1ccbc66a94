//! The values that cross the `FaceStore` seam, and the validation every implementation shares.

use crate::error::StoreError;
use serde::{Deserialize, Serialize};
use vigil_base::{Embedding, ModelId, SubjectId, TemplateId};

/// Longest subject name accepted, in Unicode scalar values (`char`s), after trimming.
pub const MAX_SUBJECT_NAME_CHARS: usize = 200;

/// A person in the gallery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub id: SubjectId,
    pub name: String,
    pub notes: Option<String>,
    /// Unix time in milliseconds (UTC) when the subject was created.
    pub created_at_ms: i64,
}

/// A subject with a summary of its templates, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectSummary {
    pub subject: Subject,
    pub template_count: u64,
    /// Models the subject has templates for, sorted, each once.
    pub models: Vec<ModelId>,
}

/// Which subject an enrolment adds templates to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubjectRef {
    /// The subject with this name (after trimming); created if there is none.
    ByName(String),
    /// An existing subject; enrolment fails with `NotFound` if it does not exist.
    ById(SubjectId),
}

/// One face to add to the gallery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTemplate {
    pub embedding: Embedding,
    /// Face quality score; must be finite.
    pub quality: f32,
    /// Face detector model that found the face.
    pub detector: String,
    /// Lowercase hex SHA-256 of the source image file's bytes (64 characters).
    pub source_sha256: String,
    /// File name the source image was uploaded under, if known.
    pub source_name: Option<String>,
    /// JPEG-encoded face crop; must not be empty.
    pub thumbnail_jpeg: Vec<u8>,
    /// Face box in source-image pixels: left, top, right, bottom.
    pub bbox: [f32; 4],
}

/// A request to add templates to one subject, applied all-or-nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrolment {
    pub subject: SubjectRef,
    /// Notes for the subject if this enrolment creates it; ignored for an existing subject
    /// (use `update_subject` to change them).
    pub notes: Option<String>,
    /// At least one.
    pub templates: Vec<NewTemplate>,
    /// Written in the enrolment's transaction, with the stored subject and template ids added
    /// to its request summary.
    #[serde(skip)]
    pub audit: Option<vigil_audit::NewAuditEntry>,
}

/// What an enrolment stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentReceipt {
    pub subject_id: SubjectId,
    /// True when the enrolment created the subject.
    pub subject_created: bool,
    /// Ids of the new templates, in the order of `Enrolment::templates`.
    pub template_ids: Vec<TemplateId>,
}

/// A template's metadata, without the embedding or thumbnail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateInfo {
    pub id: TemplateId,
    pub subject_id: SubjectId,
    pub model: ModelId,
    /// Number of values in the embedding.
    pub dimension: usize,
    pub quality: f32,
    pub detector: String,
    pub source_sha256: String,
    pub source_name: Option<String>,
    /// Face box in source-image pixels: left, top, right, bottom.
    pub bbox: [f32; 4],
    /// Unix time in milliseconds (UTC) when the template was enrolled.
    pub created_at_ms: i64,
}

/// A template's metadata and its embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRecord {
    pub info: TemplateInfo,
    pub embedding: Embedding,
}

/// Trims a subject name and checks it: non-empty, at most `MAX_SUBJECT_NAME_CHARS`, and free of
/// control characters (a newline in a name would forge lines in logs and exports).
pub fn normalise_subject_name(name: &str) -> Result<String, StoreError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(StoreError::Invalid("subject name is empty".into()));
    }
    let length_chars = trimmed.chars().count();
    if length_chars > MAX_SUBJECT_NAME_CHARS {
        return Err(StoreError::Invalid(format!(
            "subject name is {length_chars} characters; at most {MAX_SUBJECT_NAME_CHARS} allowed"
        )));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "subject name contains a control character".into(),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Trims notes; blank notes are stored as none, so "clear the notes" is `Some("")`.
pub fn normalise_notes(notes: Option<String>) -> Option<String> {
    notes
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

/// Checks what can be checked about a template without looking at the database.
pub fn validate_new_template(template: &NewTemplate) -> Result<(), StoreError> {
    if !template.quality.is_finite() {
        return Err(StoreError::Invalid("template quality is not finite".into()));
    }
    if template.detector.trim().is_empty() {
        return Err(StoreError::Invalid("template detector is empty".into()));
    }
    let sha = &template.source_sha256;
    let is_lower_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    if sha.len() != 64 || !sha.chars().all(is_lower_hex) {
        return Err(StoreError::Invalid(format!(
            "source_sha256 {sha:?} is not 64 lowercase hex digits"
        )));
    }
    if template.thumbnail_jpeg.is_empty() {
        return Err(StoreError::Invalid("template thumbnail is empty".into()));
    }
    if template.bbox.iter().any(|v| !v.is_finite()) {
        return Err(StoreError::Invalid("template bbox is not finite".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_name_is_trimmed_and_bounded() {
        assert_eq!(
            normalise_subject_name("  Ada Lovelace \n").unwrap(),
            "Ada Lovelace"
        );
        assert!(matches!(
            normalise_subject_name(" \t "),
            Err(StoreError::Invalid(_))
        ));
        let longest = "é".repeat(MAX_SUBJECT_NAME_CHARS);
        assert_eq!(normalise_subject_name(&longest).unwrap(), longest);
        let too_long = "é".repeat(MAX_SUBJECT_NAME_CHARS + 1);
        assert!(matches!(
            normalise_subject_name(&too_long),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            normalise_subject_name("Ada\nLovelace"),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn blank_notes_become_none() {
        assert_eq!(normalise_notes(Some("  ".into())), None);
        assert_eq!(normalise_notes(Some(" hi ".into())), Some("hi".into()));
        assert_eq!(normalise_notes(None), None);
    }

    #[test]
    fn uppercase_or_short_sha256_is_refused() {
        let template = NewTemplate {
            embedding: Embedding::normalised(ModelId::new("m"), vec![1.0, 0.0]).unwrap(),
            quality: 0.9,
            detector: "scrfd".into(),
            source_sha256: "ab".repeat(32),
            source_name: None,
            thumbnail_jpeg: vec![0xff, 0xd8],
            bbox: [0.0, 0.0, 10.0, 10.0],
        };
        assert!(validate_new_template(&template).is_ok());
        let upper = NewTemplate {
            source_sha256: "AB".repeat(32),
            ..template.clone()
        };
        assert!(matches!(
            validate_new_template(&upper),
            Err(StoreError::Invalid(_))
        ));
        let short = NewTemplate {
            source_sha256: "ab".into(),
            ..template
        };
        assert!(matches!(
            validate_new_template(&short),
            Err(StoreError::Invalid(_))
        ));
    }
}
