//! `ExactIndex`: every template of one model in one contiguous row-major matrix, searched by
//! exhaustive scan, so results are exact by construction.

use crate::scan::{self, RowsView};
use crate::topk::Candidate;
use crate::IndexError;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use vigil_base::{Embedding, ModelId, SubjectId, TemplateId};

/// Batches smaller than this are searched query by query: the blocked kernel computes whole
/// groups of 16 queries, which for a handful of queries costs more than re-reading the rows.
const MIN_BLOCKED_BATCH: usize = 4;

/// First over-fetch factor of `search_subjects`; doubled until enough distinct subjects appear.
const SUBJECT_OVERFETCH: usize = 8;

/// One enrolled template among the nearest to a query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TemplateHit {
    pub template: TemplateId,
    pub subject: SubjectId,
    /// Cosine similarity to the query.
    pub score: f32,
}

/// One subject among the nearest to a query, scored by its best template.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SubjectHit {
    pub subject: SubjectId,
    /// The highest cosine similarity of any of the subject's templates to the query.
    pub score: f32,
    /// The template that scored `score`.
    pub best_template: TemplateId,
    /// How many templates of this subject the index compared with the query (all it holds).
    pub templates_matched: usize,
}

/// Templates of one model: one dimension, rows kept dense by swap-remove.
#[derive(Debug, Clone)]
pub struct ExactIndex {
    model: ModelId,
    dimension: usize,
    /// Row-major, `dimension` values per row.
    rows: Vec<f32>,
    templates: Vec<TemplateId>,
    subjects: Vec<SubjectId>,
    row_of_template: HashMap<TemplateId, usize>,
    templates_per_subject: HashMap<SubjectId, usize>,
}

impl ExactIndex {
    pub fn new(model: ModelId, dimension: usize) -> Self {
        Self::with_capacity(model, dimension, 0)
    }

    /// Reserves room for `rows` templates up front, so a bulk load does not transiently hold
    /// the old and the grown matrix at once.
    pub fn with_capacity(model: ModelId, dimension: usize, rows: usize) -> Self {
        Self {
            model,
            dimension,
            rows: Vec::with_capacity(rows * dimension),
            templates: Vec::with_capacity(rows),
            subjects: Vec::with_capacity(rows),
            row_of_template: HashMap::with_capacity(rows),
            templates_per_subject: HashMap::new(),
        }
    }

    pub fn model(&self) -> &ModelId {
        &self.model
    }

    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Number of templates held.
    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    pub fn contains(&self, template: TemplateId) -> bool {
        self.row_of_template.contains_key(&template)
    }

    /// Number of templates held for `subject`.
    pub fn subject_templates(&self, subject: SubjectId) -> usize {
        self.templates_per_subject
            .get(&subject)
            .copied()
            .unwrap_or(0)
    }

    fn check(&self, embedding: &Embedding) -> Result<(), IndexError> {
        if embedding.model() != &self.model {
            return Err(IndexError::ModelMismatch {
                expected: self.model.clone(),
                found: embedding.model().clone(),
            });
        }
        if embedding.dimension() != self.dimension {
            return Err(IndexError::DimensionMismatch {
                model: self.model.clone(),
                expected: self.dimension,
                found: embedding.dimension(),
            });
        }
        Ok(())
    }

    /// Adds a template; a template id already held is replaced (values and subject).
    pub fn insert(
        &mut self,
        template: TemplateId,
        subject: SubjectId,
        embedding: &Embedding,
    ) -> Result<(), IndexError> {
        self.check(embedding)?;
        match self.row_of_template.get(&template) {
            Some(&row) => {
                self.rows[row * self.dimension..(row + 1) * self.dimension]
                    .copy_from_slice(embedding.values());
                let previous = std::mem::replace(&mut self.subjects[row], subject);
                self.forget_subject_template(previous);
            }
            None => {
                self.row_of_template.insert(template, self.templates.len());
                self.rows.extend_from_slice(embedding.values());
                self.templates.push(template);
                self.subjects.push(subject);
            }
        }
        *self.templates_per_subject.entry(subject).or_insert(0) += 1;
        Ok(())
    }

    fn forget_subject_template(&mut self, subject: SubjectId) {
        if let Some(count) = self.templates_per_subject.get_mut(&subject) {
            *count -= 1;
            if *count == 0 {
                self.templates_per_subject.remove(&subject);
            }
        }
    }

    /// Removes a template; the last row moves into its place. False when it was not held.
    pub fn remove(&mut self, template: TemplateId) -> bool {
        let Some(row) = self.row_of_template.remove(&template) else {
            return false;
        };
        let last = self.templates.len() - 1;
        if row != last {
            self.rows.copy_within(
                last * self.dimension..(last + 1) * self.dimension,
                row * self.dimension,
            );
            self.row_of_template.insert(self.templates[last], row);
        }
        self.rows.truncate(last * self.dimension);
        self.templates.swap_remove(row);
        let subject = self.subjects.swap_remove(row);
        self.forget_subject_template(subject);
        true
    }

    /// Removes every template of `subject`; returns how many there were.
    pub fn remove_subject(&mut self, subject: SubjectId) -> usize {
        if !self.templates_per_subject.contains_key(&subject) {
            return 0;
        }
        let doomed: Vec<TemplateId> = self
            .templates
            .iter()
            .zip(&self.subjects)
            .filter(|(_, owner)| **owner == subject)
            .map(|(template, _)| *template)
            .collect();
        doomed
            .into_iter()
            .filter(|template| self.remove(*template))
            .count()
    }

    fn view(&self) -> RowsView<'_> {
        RowsView {
            rows: &self.rows,
            templates: &self.templates,
            dimension: self.dimension,
        }
    }

    fn template_hit(&self, candidate: &Candidate) -> TemplateHit {
        TemplateHit {
            template: candidate.template,
            subject: self.subjects[candidate.row],
            score: candidate.score,
        }
    }

    /// The `k` templates most similar to `query`, best first; equal scores are ordered by
    /// template id. Runs on the current rayon pool.
    pub fn search(&self, query: &Embedding, k: usize) -> Result<Vec<TemplateHit>, IndexError> {
        self.check(query)?;
        let candidates = scan::top_k_single(self.view(), query.values(), k);
        Ok(candidates.iter().map(|c| self.template_hit(c)).collect())
    }

    /// `search` for each query; batches share one pass over the rows. The blocked kernel
    /// sums in another order than `search`, so scores may differ from it in the last bits.
    pub fn search_batch(
        &self,
        queries: &[Embedding],
        k: usize,
    ) -> Result<Vec<Vec<TemplateHit>>, IndexError> {
        let queries: Vec<&Embedding> = queries.iter().collect();
        self.search_batch_of(&queries, k)
    }

    pub(crate) fn search_batch_of(
        &self,
        queries: &[&Embedding],
        k: usize,
    ) -> Result<Vec<Vec<TemplateHit>>, IndexError> {
        for query in queries {
            self.check(query)?;
        }
        if queries.len() < MIN_BLOCKED_BATCH {
            return queries.iter().map(|query| self.search(query, k)).collect();
        }
        let values: Vec<&[f32]> = queries.iter().map(|query| query.values()).collect();
        let per_query = scan::top_k_batch(self.view(), &values, k);
        Ok(per_query
            .iter()
            .map(|candidates| candidates.iter().map(|c| self.template_hit(c)).collect())
            .collect())
    }

    /// The `k` subjects most similar to `query`, each scored by its best template, best first.
    ///
    /// Max-fusion: a subject scores as its closest template. It never lowers a genuine score
    /// when a subject's photos vary (one good photo suffices), and it is common practice for
    /// multi-image galleries; mean-fusion is the alternative to measure later.
    ///
    /// Exact: the template ranking is fetched deep enough to hold `k` distinct subjects (or
    /// every template). A subject absent from that list has its best template below every
    /// template in it, so it cannot outrank the subjects found; each subject's first
    /// appearance is its best template.
    pub fn search_subjects(
        &self,
        query: &Embedding,
        k: usize,
    ) -> Result<Vec<SubjectHit>, IndexError> {
        self.check(query)?;
        let mut depth = k.saturating_mul(SUBJECT_OVERFETCH);
        loop {
            let candidates = scan::top_k_single(self.view(), query.values(), depth);
            let mut hits: Vec<SubjectHit> = Vec::with_capacity(k.min(candidates.len()));
            let mut seen: HashSet<SubjectId> = HashSet::with_capacity(hits.capacity());
            for candidate in &candidates {
                if hits.len() == k {
                    break;
                }
                let subject = self.subjects[candidate.row];
                if seen.insert(subject) {
                    hits.push(SubjectHit {
                        subject,
                        score: candidate.score,
                        best_template: candidate.template,
                        templates_matched: self.subject_templates(subject),
                    });
                }
            }
            if hits.len() == k || depth >= self.len() {
                return Ok(hits);
            }
            depth = depth.saturating_mul(2);
        }
    }
}

#[cfg(test)]
#[path = "exact_tests.rs"]
mod tests;
