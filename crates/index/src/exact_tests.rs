use super::*;

const MODEL: &str = "test-model";

/// splitmix64 values in [-1, 1).
fn random_values(seed: u64, count: usize) -> Vec<f32> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn random_embedding(seed: u64, dimension: usize) -> Embedding {
    Embedding::normalised(ModelId::new(MODEL), random_values(seed, dimension)).unwrap()
}

/// `count` templates, template id = row, subject id = row / templates_per_subject.
fn random_index(count: usize, dimension: usize, templates_per_subject: usize) -> ExactIndex {
    let mut index = ExactIndex::new(ModelId::new(MODEL), dimension);
    for row in 0..count {
        let subject = SubjectId((row / templates_per_subject) as i64);
        index
            .insert(
                TemplateId(row as i64),
                subject,
                &random_embedding(row as u64 + 1000, dimension),
            )
            .unwrap();
    }
    index
}

/// The reference: every score in f64, sorted by (score desc, template asc).
fn naive_ranking(index: &ExactIndex, query: &Embedding) -> Vec<(TemplateId, SubjectId, f64)> {
    let d = index.dimension();
    let mut all: Vec<(TemplateId, SubjectId, f64)> = (0..index.len())
        .map(|row| {
            let values = &index.rows[row * d..(row + 1) * d];
            let score = values
                .iter()
                .zip(query.values())
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum::<f64>();
            (index.templates[row], index.subjects[row], score)
        })
        .collect();
    all.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    all
}

/// Hits are exact when, rank by rank, the score equals the reference's, and each hit's score is
/// its template's true score (so the right templates were picked, up to float rounding ties).
fn assert_exact(index: &ExactIndex, query: &Embedding, k: usize, hits: &[TemplateHit]) {
    let reference = naive_ranking(index, query);
    assert_eq!(hits.len(), k.min(index.len()));
    for (rank, hit) in hits.iter().enumerate() {
        assert!(
            (hit.score as f64 - reference[rank].2).abs() < 1e-5,
            "rank {rank}"
        );
        let true_score = reference.iter().find(|r| r.0 == hit.template).unwrap();
        assert!((hit.score as f64 - true_score.2).abs() < 1e-5);
        assert_eq!(hit.subject, true_score.1);
    }
    let mut templates: Vec<TemplateId> = hits.iter().map(|h| h.template).collect();
    templates.sort();
    templates.dedup();
    assert_eq!(templates.len(), hits.len(), "a template appears twice");
}

#[test]
fn search_matches_naive_ranking_across_sizes_and_dimensions() {
    for (count, dimension) in [(1, 3), (7, 5), (300, 17), (20_000, 64), (3000, 512)] {
        let index = random_index(count, dimension, 1);
        for seed in 0..3 {
            let query = random_embedding(seed, dimension);
            for k in [1, 5, 100] {
                assert_exact(&index, &query, k, &index.search(&query, k).unwrap());
            }
        }
    }
}

#[test]
fn search_batch_matches_naive_ranking_for_every_query() {
    for (count, dimension, query_count) in [(50, 9, 5), (20_000, 64, 37), (1001, 512, 70)] {
        let index = random_index(count, dimension, 1);
        let queries: Vec<Embedding> = (0..query_count)
            .map(|q| random_embedding(q as u64 + 77, dimension))
            .collect();
        let batched = index.search_batch(&queries, 10).unwrap();
        assert_eq!(batched.len(), queries.len());
        for (query, hits) in queries.iter().zip(&batched) {
            assert_exact(&index, query, 10, hits);
        }
    }
}

#[test]
fn results_are_the_same_on_one_thread_and_many() {
    let index = random_index(40_000, 128, 3);
    let queries: Vec<Embedding> = (0..20).map(|q| random_embedding(q + 5, 128)).collect();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let many = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    for query in &queries {
        let single = one.install(|| index.search(query, 10).unwrap());
        assert_eq!(single, many.install(|| index.search(query, 10).unwrap()));
        let subjects = one.install(|| index.search_subjects(query, 5).unwrap());
        assert_eq!(
            subjects,
            many.install(|| index.search_subjects(query, 5).unwrap())
        );
    }
    let batch_one = one.install(|| index.search_batch(&queries, 10).unwrap());
    assert_eq!(
        batch_one,
        many.install(|| index.search_batch(&queries, 10).unwrap())
    );
}

#[test]
fn equal_scores_are_ordered_by_template_id() {
    let mut index = ExactIndex::new(ModelId::new(MODEL), 8);
    let duplicate = random_embedding(1, 8);
    // ids inserted out of order, all with the same embedding, among other rows
    for (position, id) in [40, 7, 23, 3, 99, 12].into_iter().enumerate() {
        index
            .insert(TemplateId(id), SubjectId(id), &duplicate)
            .unwrap();
        let other = random_embedding(position as u64 + 50, 8);
        index
            .insert(TemplateId(1000 + id), SubjectId(id), &other)
            .unwrap();
    }
    let ids = |hits: Vec<TemplateHit>| hits.iter().map(|h| h.template.0).collect::<Vec<_>>();
    assert_eq!(
        ids(index.search(&duplicate, 4).unwrap()),
        vec![3, 7, 12, 23]
    );
    let batch = vec![duplicate.clone(); 5];
    for hits in index.search_batch(&batch, 4).unwrap() {
        assert_eq!(ids(hits), vec![3, 7, 12, 23]);
    }
}

#[test]
fn k_larger_than_the_index_returns_every_template_once() {
    let index = random_index(37, 16, 1);
    let query = random_embedding(3, 16);
    let hits = index.search(&query, 1000).unwrap();
    assert_exact(&index, &query, 1000, &hits);
    let batched = index.search_batch(&vec![query.clone(); 6], 1000).unwrap();
    assert!(batched.iter().all(|hits| hits.len() == 37));
}

#[test]
fn empty_index_and_zero_k_return_nothing() {
    let index = ExactIndex::new(ModelId::new(MODEL), 16);
    let query = random_embedding(3, 16);
    assert!(index.search(&query, 5).unwrap().is_empty());
    assert!(index.search_subjects(&query, 5).unwrap().is_empty());
    assert_eq!(
        index.search_batch(&vec![query.clone(); 8], 5).unwrap(),
        vec![vec![]; 8]
    );
    let full = random_index(10, 16, 1);
    assert!(full.search(&query, 0).unwrap().is_empty());
    assert!(full.search_subjects(&query, 0).unwrap().is_empty());
}

#[test]
fn removed_templates_are_never_returned_and_moved_rows_keep_their_ids() {
    let mut index = random_index(500, 32, 1);
    let query = random_embedding(9, 32);
    let before = index.search(&query, 3).unwrap();
    for hit in &before {
        assert!(index.remove(hit.template));
        assert!(
            !index.remove(hit.template),
            "second removal must report nothing removed"
        );
    }
    // also remove the row that swap-remove will move first, and some from the middle
    assert!(index.remove(TemplateId(499)));
    assert!(index.remove(TemplateId(250)));
    assert_eq!(index.len(), 500 - before.len() - 2);
    let after = index.search(&query, 500).unwrap();
    assert_exact(&index, &query, 500, &after);
    for hit in &after {
        assert!(before.iter().all(|b| b.template != hit.template));
        assert!(hit.template != TemplateId(499) && hit.template != TemplateId(250));
    }
}

#[test]
fn reinserting_a_template_replaces_its_embedding_and_subject() {
    let mut index = random_index(100, 16, 1);
    let query = random_embedding(4, 16);
    index
        .insert(TemplateId(42), SubjectId(7777), &query)
        .unwrap();
    assert_eq!(index.len(), 100);
    let hits = index.search(&query, 1).unwrap();
    assert_eq!(hits[0].template, TemplateId(42));
    assert_eq!(hits[0].subject, SubjectId(7777));
    assert!((hits[0].score - 1.0).abs() < 1e-5);
    assert_eq!(index.subject_templates(SubjectId(42)), 0);
    assert_eq!(index.subject_templates(SubjectId(7777)), 1);
}

#[test]
fn remove_subject_removes_all_its_templates_and_only_those() {
    let mut index = random_index(90, 16, 3);
    assert_eq!(index.remove_subject(SubjectId(5)), 3);
    assert_eq!(index.remove_subject(SubjectId(5)), 0);
    assert_eq!(index.len(), 87);
    for row in 15..18 {
        assert!(!index.contains(TemplateId(row)));
    }
    let hits = index.search(&random_embedding(1, 16), 87).unwrap();
    assert!(hits.iter().all(|hit| hit.subject != SubjectId(5)));
}

#[test]
fn subject_search_returns_k_distinct_subjects_with_their_true_best_template() {
    // one subject with many near-identical templates that would crowd a template top-k
    let dimension = 32;
    let mut index = random_index(2000, dimension, 4);
    let query = random_embedding(11, dimension);
    for copy in 0..200 {
        let mut values = query.values().to_vec();
        values[copy % dimension] += 0.01;
        let near = Embedding::normalised(ModelId::new(MODEL), values).unwrap();
        index
            .insert(TemplateId(10_000 + copy as i64), SubjectId(-1), &near)
            .unwrap();
    }
    let k = 10;
    let hits = index.search_subjects(&query, k).unwrap();
    assert_eq!(hits.len(), k);
    // reference: the max over each subject's templates, ranked
    let ranking = naive_ranking(&index, &query);
    let mut expected: Vec<(SubjectId, TemplateId, f64)> = Vec::new();
    for (template, subject, score) in ranking {
        if expected.iter().all(|e| e.0 != subject) {
            expected.push((subject, template, score));
        }
    }
    assert_eq!(hits[0].subject, SubjectId(-1));
    assert_eq!(hits[0].templates_matched, 200);
    for (hit, (subject, template, score)) in hits.iter().zip(&expected) {
        assert_eq!(hit.subject, *subject);
        assert_eq!(hit.best_template, *template);
        assert!((hit.score as f64 - score).abs() < 1e-5);
        assert_eq!(hit.templates_matched, index.subject_templates(*subject));
    }
}

#[test]
fn subject_search_with_k_beyond_subject_count_returns_every_subject() {
    let index = random_index(40, 8, 4);
    let hits = index.search_subjects(&random_embedding(2, 8), 50).unwrap();
    assert_eq!(hits.len(), 10);
    assert!(hits.windows(2).all(|pair| pair[0].score >= pair[1].score));
    assert!(hits.iter().all(|hit| hit.templates_matched == 4));
}

#[test]
fn wrong_dimension_or_model_is_refused() {
    let mut index = random_index(10, 16, 1);
    let short = random_embedding(1, 15);
    assert!(matches!(
        index.insert(TemplateId(1), SubjectId(1), &short),
        Err(IndexError::DimensionMismatch {
            expected: 16,
            found: 15,
            ..
        })
    ));
    assert!(matches!(
        index.search(&short, 1),
        Err(IndexError::DimensionMismatch { .. })
    ));
    assert!(index
        .search_batch(&[random_embedding(1, 16), short], 1)
        .is_err());
    let other = Embedding::normalised(ModelId::new("other"), random_values(1, 16)).unwrap();
    assert!(matches!(
        index.search(&other, 1),
        Err(IndexError::ModelMismatch { .. })
    ));
    assert!(matches!(
        index.insert(TemplateId(1), SubjectId(1), &other),
        Err(IndexError::ModelMismatch { .. })
    ));
    assert_eq!(index.len(), 10);
}
