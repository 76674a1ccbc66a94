//! `Gallery`: the thread-safe set of per-model indexes the service searches and updates.

use crate::exact::{ExactIndex, SubjectHit, TemplateHit};
use crate::IndexError;
use parking_lot::RwLock;
use std::collections::HashMap;
use vigil_base::{Embedding, ModelId, SubjectId, TemplateId};

/// One [`ExactIndex`] per model behind a read-write lock: searches share the lock and run
/// concurrently; enrolment and deletion are rare and take it briefly. Searches run on the
/// gallery's own thread pool, so their thread count is fixed and does not compete with
/// other rayon work in the process.
pub struct Gallery {
    indexes: RwLock<HashMap<ModelId, ExactIndex>>,
    /// `None` when the OS refused a dedicated pool; rayon's global pool is used instead.
    pool: Option<rayon::ThreadPool>,
}

impl Default for Gallery {
    fn default() -> Self {
        Self::new()
    }
}

impl Gallery {
    /// A gallery searching on one thread per core.
    pub fn new() -> Self {
        // Falling back to the global pool keeps the gallery usable when threads are scarce;
        // only the thread pinning is lost.
        let pool = rayon::ThreadPoolBuilder::new()
            .thread_name(search_thread_name)
            .build()
            .ok();
        Self {
            indexes: RwLock::new(HashMap::new()),
            pool,
        }
    }

    /// A gallery searching on `threads` threads (0: one per core).
    pub fn with_threads(threads: usize) -> Result<Self, IndexError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(search_thread_name)
            .build()
            .map_err(|error| IndexError::ThreadPool(error.to_string()))?;
        Ok(Self {
            indexes: RwLock::new(HashMap::new()),
            pool: Some(pool),
        })
    }

    /// Threads a search uses.
    pub fn threads(&self) -> usize {
        self.pool
            .as_ref()
            .map_or_else(rayon::current_num_threads, |pool| {
                pool.current_num_threads()
            })
    }

    fn run<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        match &self.pool {
            Some(pool) => pool.install(work),
            None => work(),
        }
    }

    /// Adds a template under its embedding's model; a template id already held (under any
    /// model) is replaced. The first template of a model fixes the model's dimension.
    pub fn insert(
        &self,
        template: TemplateId,
        subject: SubjectId,
        embedding: &Embedding,
    ) -> Result<(), IndexError> {
        let mut indexes = self.indexes.write();
        let model = embedding.model();
        if let Some(index) = indexes.get(model) {
            if index.dimension() != embedding.dimension() && !index.is_empty() {
                return Err(IndexError::DimensionMismatch {
                    model: model.clone(),
                    expected: index.dimension(),
                    found: embedding.dimension(),
                });
            }
        }
        for (other_model, index) in indexes.iter_mut() {
            if other_model != model {
                index.remove(template);
            }
        }
        let index = indexes
            .entry(model.clone())
            .and_modify(|index| {
                if index.is_empty() && index.dimension() != embedding.dimension() {
                    *index = ExactIndex::new(model.clone(), embedding.dimension());
                }
            })
            .or_insert_with(|| ExactIndex::new(model.clone(), embedding.dimension()));
        index.insert(template, subject, embedding)
    }

    /// Removes a template from whichever model holds it. False when none did.
    pub fn remove(&self, template: TemplateId) -> bool {
        let mut indexes = self.indexes.write();
        indexes.values_mut().any(|index| index.remove(template))
    }

    /// Removes every template of `subject`, under every model; returns how many.
    pub fn remove_subject(&self, subject: SubjectId) -> usize {
        let mut indexes = self.indexes.write();
        indexes
            .values_mut()
            .map(|index| index.remove_subject(subject))
            .sum()
    }

    /// Replaces everything held for `model` with `rows` (start-up load from the store).
    /// The new index is built before the lock is taken, so searches continue meanwhile.
    /// Returns the number of templates held.
    pub fn rebuild(
        &self,
        model: &ModelId,
        rows: impl IntoIterator<Item = (TemplateId, SubjectId, Embedding)>,
    ) -> Result<usize, IndexError> {
        let mut rows = rows.into_iter().peekable();
        let Some((_, _, first)) = rows.peek() else {
            self.indexes.write().remove(model);
            return Ok(0);
        };
        let mut index =
            ExactIndex::with_capacity(model.clone(), first.dimension(), rows.size_hint().0);
        for (template, subject, embedding) in rows {
            index.insert(template, subject, &embedding)?;
        }
        let held = index.len();
        let mut indexes = self.indexes.write();
        for (other_model, other) in indexes.iter_mut() {
            if other_model != model {
                for template in index.templates() {
                    other.remove(*template);
                }
            }
        }
        indexes.insert(model.clone(), index);
        Ok(held)
    }

    /// Templates held for `model`.
    pub fn len(&self, model: &ModelId) -> usize {
        self.indexes.read().get(model).map_or(0, ExactIndex::len)
    }

    /// Dimension of `model`'s templates, if the gallery holds the model.
    pub fn dimension(&self, model: &ModelId) -> Option<usize> {
        self.indexes.read().get(model).map(ExactIndex::dimension)
    }

    /// Models with at least one template.
    pub fn models(&self) -> Vec<ModelId> {
        let indexes = self.indexes.read();
        let mut models: Vec<ModelId> = indexes
            .iter()
            .filter(|(_, index)| !index.is_empty())
            .map(|(m, _)| m.clone())
            .collect();
        models.sort();
        models
    }

    /// The `k` most similar templates of the query's model; empty when the model is not held.
    pub fn search(&self, query: &Embedding, k: usize) -> Result<Vec<TemplateHit>, IndexError> {
        let indexes = self.indexes.read();
        match indexes.get(query.model()) {
            Some(index) => self.run(|| index.search(query, k)),
            None => Ok(Vec::new()),
        }
    }

    /// `search` for each query, in order; queries of one model share one pass over its rows.
    pub fn search_batch(
        &self,
        queries: &[Embedding],
        k: usize,
    ) -> Result<Vec<Vec<TemplateHit>>, IndexError> {
        let mut results = vec![Vec::new(); queries.len()];
        let mut positions_by_model: HashMap<&ModelId, Vec<usize>> = HashMap::new();
        for (position, query) in queries.iter().enumerate() {
            positions_by_model
                .entry(query.model())
                .or_default()
                .push(position);
        }
        let indexes = self.indexes.read();
        for (model, positions) in positions_by_model {
            let Some(index) = indexes.get(model) else {
                continue;
            };
            let model_queries: Vec<&Embedding> = positions.iter().map(|p| &queries[*p]).collect();
            let hits = self.run(|| index.search_batch_of(&model_queries, k))?;
            for (position, hits) in positions.into_iter().zip(hits) {
                results[position] = hits;
            }
        }
        Ok(results)
    }

    /// The `k` most similar subjects of the query's model, each scored by its best template
    /// (see [`ExactIndex::search_subjects`]); empty when the model is not held.
    pub fn search_subjects(
        &self,
        query: &Embedding,
        k: usize,
    ) -> Result<Vec<SubjectHit>, IndexError> {
        let indexes = self.indexes.read();
        match indexes.get(query.model()) {
            Some(index) => self.run(|| index.search_subjects(query, k)),
            None => Ok(Vec::new()),
        }
    }
}

fn search_thread_name(thread: usize) -> String {
    format!("vigil-search-{thread}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedding(model: &str, values: &[f32]) -> Embedding {
        Embedding::normalised(ModelId::new(model), values.to_vec()).unwrap()
    }

    #[test]
    fn query_never_matches_templates_of_another_model() {
        let gallery = Gallery::with_threads(2).unwrap();
        gallery
            .insert(TemplateId(1), SubjectId(1), &embedding("a", &[1.0, 0.0]))
            .unwrap();
        gallery
            .insert(TemplateId(2), SubjectId(2), &embedding("b", &[1.0, 0.0]))
            .unwrap();
        let hits = gallery.search(&embedding("a", &[1.0, 0.0]), 10).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].template, TemplateId(1));
        assert!(gallery
            .search(&embedding("c", &[1.0, 0.0]), 10)
            .unwrap()
            .is_empty());
        assert!(gallery
            .search_subjects(&embedding("c", &[1.0, 0.0]), 10)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn inserting_another_dimension_into_a_held_model_is_refused() {
        let gallery = Gallery::new();
        gallery
            .insert(TemplateId(1), SubjectId(1), &embedding("a", &[1.0, 0.0]))
            .unwrap();
        let result = gallery.insert(
            TemplateId(2),
            SubjectId(1),
            &embedding("a", &[1.0, 0.0, 0.0]),
        );
        assert!(matches!(
            result,
            Err(IndexError::DimensionMismatch {
                expected: 2,
                found: 3,
                ..
            })
        ));
        assert_eq!(gallery.len(&ModelId::new("a")), 1);
        // a query of the wrong dimension is an error too, not a silent empty result
        assert!(gallery
            .search(&embedding("a", &[1.0, 0.0, 0.0]), 1)
            .is_err());
    }

    #[test]
    fn reinserting_a_template_under_another_model_moves_it() {
        let gallery = Gallery::new();
        gallery
            .insert(TemplateId(1), SubjectId(1), &embedding("a", &[1.0, 0.0]))
            .unwrap();
        gallery
            .insert(TemplateId(1), SubjectId(1), &embedding("b", &[0.0, 1.0]))
            .unwrap();
        assert_eq!(gallery.len(&ModelId::new("a")), 0);
        assert_eq!(gallery.len(&ModelId::new("b")), 1);
        assert_eq!(gallery.models(), vec![ModelId::new("b")]);
    }

    #[test]
    fn rebuild_replaces_the_model_and_removals_reach_it() {
        let gallery = Gallery::new();
        let model = ModelId::new("a");
        gallery
            .insert(TemplateId(99), SubjectId(9), &embedding("a", &[1.0, 1.0]))
            .unwrap();
        let rows = vec![
            (TemplateId(1), SubjectId(1), embedding("a", &[1.0, 0.0])),
            (TemplateId(2), SubjectId(1), embedding("a", &[0.0, 1.0])),
            (TemplateId(3), SubjectId(2), embedding("a", &[0.6, 0.8])),
        ];
        assert_eq!(gallery.rebuild(&model, rows).unwrap(), 3);
        assert_eq!(gallery.len(&model), 3);
        assert!(!gallery.remove(TemplateId(99)));
        assert_eq!(gallery.remove_subject(SubjectId(1)), 2);
        let hits = gallery.search(&embedding("a", &[1.0, 0.0]), 5).unwrap();
        assert_eq!(
            hits.iter().map(|h| h.template).collect::<Vec<_>>(),
            vec![TemplateId(3)]
        );
        assert_eq!(gallery.rebuild(&model, Vec::new()).unwrap(), 0);
        assert_eq!(gallery.dimension(&model), None);
    }

    #[test]
    fn rebuild_refuses_rows_of_another_model() {
        let gallery = Gallery::new();
        let rows = vec![(TemplateId(1), SubjectId(1), embedding("b", &[1.0, 0.0]))];
        assert!(matches!(
            gallery.rebuild(&ModelId::new("a"), rows),
            Err(IndexError::ModelMismatch { .. })
        ));
        assert_eq!(gallery.len(&ModelId::new("a")), 0);
    }

    #[test]
    fn batch_of_mixed_models_answers_each_query_from_its_own_model() {
        let gallery = Gallery::with_threads(2).unwrap();
        for i in 0..20 {
            let angle = i as f32 * 0.1;
            gallery
                .insert(
                    TemplateId(i),
                    SubjectId(i),
                    &embedding("a", &[angle.cos(), angle.sin()]),
                )
                .unwrap();
            gallery
                .insert(
                    TemplateId(100 + i),
                    SubjectId(i),
                    &embedding("b", &[angle.sin(), angle.cos()]),
                )
                .unwrap();
        }
        let mut queries = Vec::new();
        for i in 0..12 {
            let angle = i as f32 * 0.1;
            let model = ["a", "b", "c"][i as usize % 3];
            queries.push(embedding(model, &[angle.cos(), angle.sin()]));
        }
        let batched = gallery.search_batch(&queries, 3).unwrap();
        for (query, hits) in queries.iter().zip(&batched) {
            let single = gallery.search(query, 3).unwrap();
            assert_eq!(hits.len(), single.len());
            for (batch_hit, single_hit) in hits.iter().zip(&single) {
                assert_eq!(batch_hit.template, single_hit.template);
                // the batch kernel sums in another order: equal up to rounding
                assert!((batch_hit.score - single_hit.score).abs() < 1e-6);
            }
        }
        assert!(batched[2].is_empty());
        assert!(!batched[1].is_empty() && batched[1][0].template.0 >= 100);
    }

    #[test]
    fn searches_run_while_templates_are_enrolled_from_another_thread() {
        let gallery = std::sync::Arc::new(Gallery::with_threads(2).unwrap());
        gallery
            .insert(TemplateId(0), SubjectId(0), &embedding("a", &[1.0, 0.0]))
            .unwrap();
        let writer = {
            let gallery = gallery.clone();
            std::thread::spawn(move || {
                for i in 1..500 {
                    let angle = i as f32 * 0.001;
                    let e = embedding("a", &[angle.cos(), angle.sin()]);
                    gallery.insert(TemplateId(i), SubjectId(i), &e).unwrap();
                }
            })
        };
        for _ in 0..200 {
            let hits = gallery.search(&embedding("a", &[1.0, 0.0]), 1).unwrap();
            assert_eq!(hits[0].template, TemplateId(0));
        }
        writer.join().unwrap();
        assert_eq!(gallery.len(&ModelId::new("a")), 500);
    }
}
