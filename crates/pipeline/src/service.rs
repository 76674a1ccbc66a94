//! `FaceService`: the operations every front end (CLI, HTTP) offers.
//!
//! Invariants kept here:
//! - the template index (an in-memory `SegmentedIndex`) holds exactly the store's templates of
//!   the active recognizer: it is rebuilt from the store at start and updated only after the
//!   store commits;
//! - a search restricted to some subjects (a watchlist's) applies that restriction inside the
//!   scan, so no other subject can push a watched one out of the top-k;
//! - an enrolment is all-or-nothing: templates are computed first, then written in one store
//!   transaction, then added to the index;
//! - every reported score carries its calibrated false-match rate, and only candidates at or
//!   below the configured false-match rate are returned as candidates.

use crate::error::ServiceError;
use crate::pool::AnalyzerPool;
use crate::reports::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use vigil_base::config::MatchingConfig;
use vigil_base::{CalibrationTable, Embedding, ModelId, SubjectId, TemplateId};
use vigil_index::{
    EntryKind, EntryMeta, SearchFilter, SearchMethod, SegmentedIndex, SegmentedOptions,
};
use vigil_infer::{decode_image, AnalyzedFace, DecodeLimits, DecodedImage, FaceAnalyzer};
use vigil_store::{Enrolment, FaceStore, NewTemplate, SubjectRef};

/// An image as received: a display name (file name or upload name) and its bytes.
#[derive(Debug, Clone)]
pub struct NamedImage {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Most faces analysed in one image; beyond it the request is refused rather than spending
/// unbounded time on one upload.
pub const MAX_FACES_PER_IMAGE: usize = 200;

/// An enrolment photo may hold background faces, but the enrolled face must dominate:
/// its box area must be at least this many times the next usable face's.
const DOMINANT_FACE_AREA_RATIO: f32 = 2.0;

/// A template ready to be stored, with the name of the image it came from.
pub struct PreparedTemplate {
    pub source_name: String,
    pub template: NewTemplate,
}

pub struct FaceService {
    analyzers: AnalyzerPool,
    store: Arc<dyn FaceStore>,
    templates: SegmentedIndex,
    calibration: CalibrationTable,
    matching: MatchingConfig,
    decode_limits: DecodeLimits,
    /// Length of the recognizer's embeddings (of the stored templates, or measured at start).
    dimension: usize,
}

impl FaceService {
    /// Builds the service and loads the gallery from the store.
    pub fn new(
        analyzer: Arc<FaceAnalyzer>,
        store: Arc<dyn FaceStore>,
        calibration: CalibrationTable,
        matching: MatchingConfig,
        decode_limits: DecodeLimits,
    ) -> Result<Self, ServiceError> {
        Self::with_analyzers(vec![analyzer], store, calibration, matching, decode_limits)
    }

    /// As `new`, with several analyzers (of the same models) serving concurrent requests.
    pub fn with_analyzers(
        analyzers: Vec<Arc<FaceAnalyzer>>,
        store: Arc<dyn FaceStore>,
        calibration: CalibrationTable,
        matching: MatchingConfig,
        decode_limits: DecodeLimits,
    ) -> Result<Self, ServiceError> {
        let analyzers = AnalyzerPool::new(analyzers)
            .ok_or_else(|| ServiceError::Invalid("at least one analyzer is needed".into()))?;
        let model = analyzers.primary().recognizer_model().clone();
        calibration.check_model(model.as_str())?;
        calibration.threshold_for(matching.false_match_rate)?;
        if matching.max_false_match_rate.is_nan()
            || matching.false_match_rate > matching.max_false_match_rate
        {
            return Err(ServiceError::Invalid(
                "[matching] false_match_rate is above max_false_match_rate".into(),
            ));
        }
        let rows = store.templates_for_model(&model)?;
        let dimension = match rows.first() {
            Some((_, _, first)) => first.dimension(),
            None => measure_embedding_dimension(analyzers.primary())?,
        };
        let templates =
            SegmentedIndex::in_memory(model.clone(), dimension, SegmentedOptions::default())?;
        let entries: Vec<(EntryMeta, Vec<f32>)> = rows
            .into_iter()
            .map(|(template, subject, embedding)| template_row(template, subject, &embedding))
            .collect();
        templates.insert_batch(&entries)?;
        Ok(Self {
            analyzers,
            store,
            templates,
            calibration,
            matching,
            decode_limits,
            dimension,
        })
    }

    pub fn model(&self) -> &ModelId {
        self.analyzers.primary().recognizer_model()
    }

    /// The analyzer that describes the service's models (for names and settings).
    pub fn analyzer(&self) -> &FaceAnalyzer {
        self.analyzers.primary()
    }

    /// How many requests can run their models at the same time.
    pub fn concurrent_analyses(&self) -> usize {
        self.analyzers.size()
    }

    pub fn store(&self) -> &dyn FaceStore {
        self.store.as_ref()
    }

    pub fn calibration(&self) -> &CalibrationTable {
        &self.calibration
    }

    pub fn matching(&self) -> &MatchingConfig {
        &self.matching
    }

    pub fn gallery_templates(&self) -> usize {
        let stats = self.templates.stats();
        stats.sealed_rows + stats.growing_rows - stats.deleted_rows
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<DecodedImage, ServiceError> {
        Ok(decode_image(bytes, &self.decode_limits)?)
    }

    /// The probe of a search: the dominant usable face of a photo.
    pub fn probe_embedding(&self, bytes: &[u8]) -> Result<(String, Embedding), ServiceError> {
        let (image, faces) = self.analyze_bytes(bytes)?;
        let face = dominant_face(faces)?;
        Ok((image.sha256, face.embedding))
    }

    /// The embeddings of every usable face of a photo, with its sha256 (subject access reports
    /// compare stored search probes with a person).
    pub fn usable_face_embeddings(
        &self,
        bytes: &[u8],
    ) -> Result<(String, Vec<Embedding>), ServiceError> {
        let (image, faces) = self.analyze_bytes(bytes)?;
        let embeddings = faces
            .into_iter()
            .filter(|face| face.is_usable())
            .map(|face| face.embedding)
            .collect();
        Ok((image.sha256, embeddings))
    }

    fn analyze_bytes(
        &self,
        bytes: &[u8],
    ) -> Result<(DecodedImage, Vec<AnalyzedFace>), ServiceError> {
        let image = self.decode(bytes)?;
        let faces = self.analyzers.lend().analyze(&image)?;
        if faces.len() > MAX_FACES_PER_IMAGE {
            return Err(ServiceError::TooManyFaces {
                count: faces.len(),
                limit: MAX_FACES_PER_IMAGE,
            });
        }
        Ok((image, faces))
    }

    pub fn detect(&self, bytes: &[u8]) -> Result<DetectionReport, ServiceError> {
        let (image, faces) = self.analyze_bytes(bytes)?;
        Ok(DetectionReport {
            image_sha256: image.sha256.clone(),
            width: image.width,
            height: image.height,
            faces: faces.iter().map(FaceReport::from_analyzed).collect(),
        })
    }

    /// Turns one photo into a template: exactly one dominant, usable face.
    pub fn prepare_template(&self, image: &NamedImage) -> Result<PreparedTemplate, ServiceError> {
        let (decoded, faces) = self.analyze_bytes(&image.bytes)?;
        let face = dominant_face(faces)?;
        let b = &face.detection.bbox;
        let thumbnail_jpeg = face.aligned.to_jpeg(90)?;
        Ok(PreparedTemplate {
            source_name: image.name.clone(),
            template: NewTemplate {
                embedding: face.embedding,
                quality: face.quality.score,
                detector: self.analyzer().detector_name().to_string(),
                source_sha256: decoded.sha256,
                source_name: Some(image.name.clone()),
                thumbnail_jpeg,
                bbox: [b.x1, b.y1, b.x2, b.y2],
            },
        })
    }

    /// Stores prepared templates in one transaction, then adds them to the index.
    pub fn commit_enrolment(
        &self,
        subject: SubjectRef,
        notes: Option<String>,
        prepared: Vec<PreparedTemplate>,
    ) -> Result<EnrolmentReport, ServiceError> {
        self.commit_enrolment_audited(subject, notes, prepared, None)
    }

    /// As `commit_enrolment`, writing `audit` in the enrolment's transaction.
    pub fn commit_enrolment_audited(
        &self,
        subject: SubjectRef,
        notes: Option<String>,
        prepared: Vec<PreparedTemplate>,
        audit: Option<vigil_audit::NewAuditEntry>,
    ) -> Result<EnrolmentReport, ServiceError> {
        if prepared.is_empty() {
            return Err(ServiceError::Invalid("no usable image to enrol".into()));
        }
        let names: Vec<(String, f32)> = prepared
            .iter()
            .map(|p| (p.source_name.clone(), p.template.quality))
            .collect();
        let embeddings: Vec<Embedding> = prepared
            .iter()
            .map(|p| p.template.embedding.clone())
            .collect();
        let receipt = self.store.enroll(Enrolment {
            subject,
            notes,
            templates: prepared.into_iter().map(|p| p.template).collect(),
            audit,
        })?;
        let entries: Vec<(EntryMeta, Vec<f32>)> = receipt
            .template_ids
            .iter()
            .zip(&embeddings)
            .filter(|(_, embedding)| embedding.model() == self.model())
            .map(|(template, embedding)| template_row(*template, receipt.subject_id, embedding))
            .collect();
        self.templates.insert_batch(&entries)?;
        let subject = self.subject_view(receipt.subject_id)?;
        Ok(EnrolmentReport {
            subject,
            created: receipt.subject_created,
            enrolled: names
                .into_iter()
                .zip(&receipt.template_ids)
                .map(|((name, quality), id)| EnrolledImage {
                    name,
                    template_id: id.0,
                    quality,
                })
                .collect(),
        })
    }

    /// All-or-nothing enrolment of several photos: any bad photo refuses the whole request.
    pub fn enroll(
        &self,
        subject: SubjectRef,
        notes: Option<String>,
        images: &[NamedImage],
    ) -> Result<EnrolmentReport, ServiceError> {
        self.enroll_audited(subject, notes, images, None)
    }

    /// As `enroll`, writing `audit` in the enrolment's transaction.
    pub fn enroll_audited(
        &self,
        subject: SubjectRef,
        notes: Option<String>,
        images: &[NamedImage],
        audit: Option<vigil_audit::NewAuditEntry>,
    ) -> Result<EnrolmentReport, ServiceError> {
        let mut prepared = Vec::with_capacity(images.len());
        for image in images {
            let template = self.prepare_template(image).map_err(|e| match e {
                ServiceError::Invalid(m) => ServiceError::Invalid(format!("{}: {m}", image.name)),
                other => other,
            })?;
            prepared.push(template);
        }
        self.commit_enrolment_audited(subject, notes, prepared, audit)
    }

    /// The cosine a candidate must reach to meet a false-match rate. A rate above the
    /// configured ceiling (`[matching] max_false_match_rate`) is refused: no caller widens the
    /// threshold past policy.
    pub fn score_threshold(&self, false_match_rate: f64) -> Result<f32, ServiceError> {
        self.check_rate_ceiling(false_match_rate)?;
        Ok(self.calibration.threshold_for(false_match_rate)?)
    }

    /// The rate a request asked for, or the configured one; refused (`Invalid`, naming the
    /// ceiling) when above `[matching] max_false_match_rate`.
    pub fn requested_rate(&self, requested: Option<f64>) -> Result<f64, ServiceError> {
        let rate = requested.unwrap_or(self.matching.false_match_rate);
        self.check_rate_ceiling(rate)?;
        Ok(rate)
    }

    /// `Invalid` when `rate` is looser than the ceiling (NaN included).
    pub fn check_rate_ceiling(&self, rate: f64) -> Result<(), ServiceError> {
        let ceiling = self.matching.max_false_match_rate;
        if rate.is_nan() || rate > ceiling {
            return Err(ServiceError::Invalid(format!(
                "false_match_rate {rate} is above the ceiling {ceiling} \
                 ([matching] max_false_match_rate)"
            )));
        }
        Ok(())
    }

    /// 1:N search of every face in the photo against the enrolled templates.
    pub fn identify(
        &self,
        bytes: &[u8],
        top_k: Option<usize>,
        false_match_rate: Option<f64>,
    ) -> Result<IdentifyReport, ServiceError> {
        let rate = self.requested_rate(false_match_rate)?;
        let threshold = self.score_threshold(rate)?;
        let top_k = top_k.unwrap_or(self.matching.top_k).clamp(1, 100);
        let (image, faces) = self.analyze_bytes(bytes)?;
        if faces.is_empty() {
            return Err(ServiceError::NoFace);
        }
        let gallery_templates = self.gallery_templates();
        let mut identified = Vec::with_capacity(faces.len());
        for face in &faces {
            let candidates = if face.is_usable() {
                self.match_embeddings(&[&face.embedding], top_k, rate)?
            } else {
                Vec::new()
            };
            identified.push(IdentifiedFace {
                face: FaceReport::from_analyzed(face),
                candidates,
            });
        }
        Ok(IdentifyReport {
            image_sha256: image.sha256,
            model: self.model().to_string(),
            gallery_templates,
            false_match_rate_threshold: rate,
            score_threshold: threshold,
            faces: identified,
        })
    }

    /// Subjects matching one person's faces (max fusion: a subject scores its best match with
    /// any of `embeddings`) at or below the false-match rate `rate`, best first, `top_k` at most.
    pub fn match_embeddings(
        &self,
        embeddings: &[&Embedding],
        top_k: usize,
        rate: f64,
    ) -> Result<Vec<Candidate>, ServiceError> {
        self.match_embeddings_among(embeddings, None, top_k, rate)
    }

    /// As `match_embeddings`, searching only the templates of `subjects` when given (the
    /// people on the active watchlists). The restriction is the index's filter, applied row by
    /// row inside the scan.
    pub fn match_embeddings_among(
        &self,
        embeddings: &[&Embedding],
        subjects: Option<&HashSet<SubjectId>>,
        top_k: usize,
        rate: f64,
    ) -> Result<Vec<Candidate>, ServiceError> {
        // A watchlist created before the ceiling was lowered cannot raise alerts above it.
        let rate = rate.min(self.matching.max_false_match_rate);
        let gallery_templates = self.gallery_templates();
        let mut filter = SearchFilter::all().kinds([EntryKind::ENROLLED_TEMPLATE]);
        if let Some(subjects) = subjects {
            if subjects.is_empty() {
                return Ok(Vec::new());
            }
            filter = filter.subjects(subjects.iter().copied());
        }
        let mut best: HashMap<SubjectId, (f32, TemplateId)> = HashMap::new();
        for embedding in embeddings {
            for (subject, score, template) in self.nearest_subjects(embedding, top_k, &filter)? {
                let entry = best.entry(subject).or_insert((score, template));
                if score > entry.0 {
                    *entry = (score, template);
                }
            }
        }
        let mut ranked: Vec<(SubjectId, f32, TemplateId)> = best
            .into_iter()
            .map(|(s, (score, t))| (s, score, t))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(top_k);
        let mut candidates = Vec::new();
        for (subject, score, template) in ranked {
            let rate_here = self.calibration.false_match_rate(score);
            if rate_here.value > rate {
                continue;
            }
            let subject_name = self
                .store
                .subject(subject)?
                .map(|s| s.name)
                .unwrap_or_else(|| format!("#{subject}"));
            candidates.push(Candidate {
                subject_id: subject.0,
                subject_name,
                score,
                false_match_rate: rate_here.value,
                false_match_rate_extrapolated: rate_here.extrapolated,
                expected_false_candidates: rate_here.value * gallery_templates as f64,
                best_template_id: template.0,
            });
        }
        Ok(candidates)
    }

    /// The `top_k` subjects nearest to `query` among the admitted templates, each with its
    /// best template (max fusion). A subject may hold several templates, so the template
    /// search widens until it has `top_k` distinct subjects or has returned every admitted one.
    fn nearest_subjects(
        &self,
        query: &Embedding,
        top_k: usize,
        filter: &SearchFilter,
    ) -> Result<Vec<(SubjectId, f32, TemplateId)>, ServiceError> {
        let mut k = top_k.saturating_mul(4).max(16);
        loop {
            let hits = self
                .templates
                .search(query, k, filter, SearchMethod::Exact)?;
            let mut seen = HashSet::new();
            let mut subjects = Vec::new();
            for hit in &hits {
                let Some(subject) = hit.entry.subject else {
                    continue;
                };
                if seen.insert(subject) {
                    subjects.push((subject, hit.score, TemplateId(hit.entry.id as i64)));
                }
            }
            if subjects.len() >= top_k || hits.len() < k {
                subjects.truncate(top_k);
                return Ok(subjects);
            }
            k = k.saturating_mul(4);
        }
    }

    /// Length of the recognizer's embeddings.
    pub fn embedding_dimension(&self) -> Result<usize, ServiceError> {
        Ok(self.dimension)
    }

    /// Runs every analyzer once on a synthetic frame at the size video analysis uses, so that
    /// onnxruntime's first-run set-up (allocations, kernel selection: hundreds of milliseconds)
    /// is not paid by the first camera frames or the first request.
    pub fn warm_up(&self, width: u32, height: u32) -> Result<(), ServiceError> {
        let (width, height) = (width.max(32), height.max(32));
        let rgb: Vec<u8> = (0..width as usize * height as usize * 3)
            .map(|i| (i % 251) as u8)
            .collect();
        let image = DecodedImage::from_rgb(width, height, rgb)?;
        let face = vigil_infer::DetectedFace {
            bbox: vigil_infer::BoundingBox {
                x1: 10.0,
                y1: 10.0,
                x2: 30.0,
                y2: 30.0,
            },
            score: 1.0,
            landmarks: [
                [14.0, 16.0],
                [26.0, 16.0],
                [20.0, 21.0],
                [15.0, 26.0],
                [25.0, 26.0],
            ],
        };
        let lent: Vec<_> = (0..self.analyzers.size())
            .map(|_| self.analyzers.lend())
            .collect();
        for analyzer in &lent {
            analyzer.detect(&image)?;
            analyzer.analyze_detections(&image, vec![face.clone()])?;
        }
        Ok(())
    }

    /// An analyzer for a caller that runs the model stages itself (video analysis); it goes
    /// back to the pool when dropped.
    pub fn lend_analyzer(&self) -> crate::pool::LentAnalyzer<'_> {
        self.analyzers.lend()
    }

    /// 1:1: the dominant face of each photo, compared.
    pub fn verify(&self, a: &[u8], b: &[u8]) -> Result<VerifyReport, ServiceError> {
        let (_, faces_a) = self.analyze_bytes(a)?;
        let (_, faces_b) = self.analyze_bytes(b)?;
        let face_a = dominant_face(faces_a)?;
        let face_b = dominant_face(faces_b)?;
        let score = face_a
            .embedding
            .cosine(&face_b.embedding)
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let rate = self.calibration.false_match_rate(score);
        let threshold = self.matching.false_match_rate;
        Ok(VerifyReport {
            model: self.model().to_string(),
            score,
            false_match_rate: rate.value,
            false_match_rate_extrapolated: rate.extrapolated,
            false_match_rate_threshold: threshold,
            same_person: rate.value <= threshold,
            face_a: FaceReport::from_analyzed(&face_a),
            face_b: FaceReport::from_analyzed(&face_b),
        })
    }

    pub fn subject_view(&self, id: SubjectId) -> Result<SubjectView, ServiceError> {
        let subject = self
            .store
            .subject(id)?
            .ok_or_else(|| ServiceError::NotFound(format!("subject {id}")))?;
        let template_count = self.store.templates_of(id)?.len();
        Ok(SubjectView::of(subject, template_count))
    }

    pub fn list_subjects(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<SubjectView>, ServiceError> {
        Ok(self
            .store
            .list_subjects(offset as u64, limit.min(1000) as u64)?
            .into_iter()
            .map(|s| SubjectView::of(s.subject, s.template_count as usize))
            .collect())
    }

    pub fn subject_detail(&self, id: SubjectId) -> Result<SubjectDetail, ServiceError> {
        let subject = self.subject_view(id)?;
        let templates = self
            .store
            .templates_of(id)?
            .into_iter()
            .map(TemplateView::from)
            .collect();
        Ok(SubjectDetail { subject, templates })
    }

    pub fn find_subject(&self, name_or_id: &str) -> Result<SubjectId, ServiceError> {
        if let Ok(id) = name_or_id.parse::<i64>() {
            if self.store.subject(SubjectId(id))?.is_some() {
                return Ok(SubjectId(id));
            }
        }
        self.store
            .subject_by_name(name_or_id)?
            .map(|s| s.id)
            .ok_or_else(|| ServiceError::NotFound(format!("subject {name_or_id}")))
    }

    /// Deletes a subject and its templates from the store, then from the gallery.
    pub fn delete_subject(&self, id: SubjectId) -> Result<usize, ServiceError> {
        self.delete_subject_audited(id, None)
    }

    /// As `delete_subject`, writing `audit` in the deletion's transaction.
    pub fn delete_subject_audited(
        &self,
        id: SubjectId,
        audit: Option<&vigil_audit::NewAuditEntry>,
    ) -> Result<usize, ServiceError> {
        if self.store.subject(id)?.is_none() {
            return Err(ServiceError::NotFound(format!("subject {id}")));
        }
        let removed = self.store.delete_subject_audited(id, audit)?;
        for template in &removed {
            self.templates.delete(template.0 as u64)?;
        }
        Ok(removed.len())
    }

    pub fn delete_template(&self, id: TemplateId) -> Result<(), ServiceError> {
        self.delete_template_audited(id, None)
    }

    /// As `delete_template`, writing `audit` in the deletion's transaction.
    pub fn delete_template_audited(
        &self,
        id: TemplateId,
        audit: Option<&vigil_audit::NewAuditEntry>,
    ) -> Result<(), ServiceError> {
        if !self.store.delete_template_audited(id, audit)? {
            return Err(ServiceError::NotFound(format!("template {id}")));
        }
        self.templates.delete(id.0 as u64)?;
        Ok(())
    }

    pub fn thumbnail(&self, id: TemplateId) -> Result<Vec<u8>, ServiceError> {
        self.store
            .thumbnail(id)?
            .ok_or_else(|| ServiceError::NotFound(format!("template {id}")))
    }
}

/// The index row of an enrolled template. Templates are never dropped by time, so they carry
/// no capture time.
fn template_row(
    template: TemplateId,
    subject: SubjectId,
    embedding: &Embedding,
) -> (EntryMeta, Vec<f32>) {
    let meta = EntryMeta {
        id: template.0 as u64,
        kind: EntryKind::ENROLLED_TEMPLATE,
        subject: Some(subject),
        camera: None,
        timestamp_ms: 0,
    };
    (meta, embedding.values().to_vec())
}

/// Length of the recognizer's embeddings, measured on a synthetic face.
fn measure_embedding_dimension(analyzer: &FaceAnalyzer) -> Result<usize, ServiceError> {
    let rgb: Vec<u8> = (0..64 * 64 * 3).map(|i| (i % 251) as u8).collect();
    let image = DecodedImage::from_rgb(64, 64, rgb)?;
    let face = vigil_infer::DetectedFace {
        bbox: vigil_infer::BoundingBox {
            x1: 10.0,
            y1: 10.0,
            x2: 50.0,
            y2: 50.0,
        },
        score: 1.0,
        landmarks: [
            [22.0, 26.0],
            [40.0, 26.0],
            [31.0, 36.0],
            [24.0, 44.0],
            [38.0, 44.0],
        ],
    };
    let faces = analyzer.analyze_detections(&image, vec![face])?;
    let dimension = faces
        .first()
        .map(|f| f.embedding.dimension())
        .ok_or_else(|| ServiceError::Invalid("the recognizer returned no embedding".into()))?;
    Ok(dimension)
}

/// The face an enrolment or verification photo is about: the only usable face, or one whose
/// box is clearly larger than every other usable face's.
pub fn dominant_face(faces: Vec<AnalyzedFace>) -> Result<AnalyzedFace, ServiceError> {
    if faces.is_empty() {
        return Err(ServiceError::NoFace);
    }
    let mut usable: Vec<AnalyzedFace> = Vec::new();
    let mut issues = Vec::new();
    for face in faces {
        if face.is_usable() {
            usable.push(face);
        } else if issues.is_empty() {
            issues = face.quality_issues.clone();
        }
    }
    if usable.is_empty() {
        return Err(ServiceError::NoUsableFace { issues });
    }
    usable.sort_by(|a, b| area(b).total_cmp(&area(a)));
    if usable.len() > 1 && area(&usable[0]) < DOMINANT_FACE_AREA_RATIO * area(&usable[1]) {
        return Err(ServiceError::AmbiguousFaces {
            count: usable.len(),
        });
    }
    Ok(usable.swap_remove(0))
}

fn area(face: &AnalyzedFace) -> f32 {
    face.detection.bbox.area()
}
