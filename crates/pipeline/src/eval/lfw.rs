//! `vigil eval lfw`: the LFW View-2 10-fold protocol on vigil's own pipeline, compared pair by
//! pair with the reference scores.

use super::embeddings::{embed_lfw, EmbeddingSet, LfwVariant};
use crate::error::ServiceError;
use crate::lfw::{ten_fold_accuracy, LfwDataset, LfwImage, LfwPair};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use vigil_infer::FaceAnalyzer;

/// Parity targets from the foundation issue.
pub const MAX_MEAN_ABS_DELTA: f64 = 0.01;
pub const MAX_ACCURACY_DELTA_POINTS: f64 = 0.1;

#[derive(Debug, Clone, Serialize)]
pub struct LfwModelReport {
    pub model: String,
    pub detector: String,
    pub variant: String,
    pub pairs: usize,
    /// Pairs where either image had no detected face (scored -1, i.e. "different").
    pub pairs_without_face: usize,
    pub accuracy_percent: f64,
    pub accuracy_std_percent: f64,
    pub mean_threshold: f64,
    pub mean_genuine_score: f64,
    pub mean_impostor_score: f64,
    /// Present when the reference file has this model's column.
    pub reference: Option<ReferenceComparison>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReferenceComparison {
    pub reference_accuracy_percent: f64,
    pub mean_abs_delta_cosine: f64,
    pub max_abs_delta_cosine: f64,
    pub accuracy_delta_points: f64,
    /// mean |Δcos| ≤ 0.01 and |Δaccuracy| ≤ 0.1 point (only judged on the full protocol).
    pub within_tolerance: bool,
}

fn reference_column(model: &str) -> Option<usize> {
    match model {
        "w600k_mbf_int8" => Some(0),
        "fr_feature" => Some(1),
        _ => None,
    }
}

/// Keeps the first `per_fold` matched and mismatched pairs of each fold (for quick runs).
pub fn subset(pairs: Vec<LfwPair>, per_fold: Option<usize>) -> Vec<LfwPair> {
    let Some(limit) = per_fold else { return pairs };
    let mut counts = std::collections::HashMap::new();
    pairs
        .into_iter()
        .filter(|p| {
            let count = counts.entry((p.fold, p.same)).or_insert(0usize);
            *count += 1;
            *count <= limit
        })
        .collect()
}

pub fn pair_scores(pairs: &[LfwPair], set: &EmbeddingSet) -> (Vec<f32>, usize) {
    let mut missing = 0;
    let scores = pairs
        .iter()
        .map(|p| {
            let a = set.by_image.get(&p.a).and_then(|e| e.embedding.as_ref());
            let b = set.by_image.get(&p.b).and_then(|e| e.embedding.as_ref());
            match (a, b) {
                (Some(a), Some(b)) => a.cosine(b).unwrap_or(-1.0),
                _ => {
                    missing += 1;
                    -1.0
                }
            }
        })
        .collect();
    (scores, missing)
}

pub fn run_lfw(
    dataset: &LfwDataset,
    analyzers: &[FaceAnalyzer],
    variant: LfwVariant,
    pairs_per_fold: Option<usize>,
    cache_dir: Option<&Path>,
) -> Result<LfwModelReport, ServiceError> {
    let pairs = subset(dataset.pairs()?, pairs_per_fold);
    let images: Vec<LfwImage> = pairs
        .iter()
        .flat_map(|p| [p.a.clone(), p.b.clone()])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let set = embed_lfw(dataset, analyzers, variant, &images, cache_dir)?;
    let analyzer = &analyzers[0]; // embed_lfw refused an empty list
    let (scores, pairs_without_face) = pair_scores(&pairs, &set);
    let (accuracy, deviation, threshold) = ten_fold_accuracy(&pairs, &scores);
    let mean_of = |same: bool| {
        let selected: Vec<f64> = pairs
            .iter()
            .zip(&scores)
            .filter(|(p, _)| p.same == same)
            .map(|(_, s)| *s as f64)
            .collect();
        selected.iter().sum::<f64>() / selected.len().max(1) as f64
    };
    let model = set.model.to_string();
    let reference = match reference_column(&model) {
        Some(column) => {
            let all = dataset.reference_scores()?;
            let reference: Vec<f32> = pairs
                .iter()
                .map(|p| all.get(p.index).map_or(f32::NAN, |r| r[column]))
                .collect();
            let deltas: Vec<f64> = scores
                .iter()
                .zip(&reference)
                .map(|(s, r)| (*s as f64 - *r as f64).abs())
                .collect();
            let mean_delta = deltas.iter().sum::<f64>() / deltas.len().max(1) as f64;
            let max_delta = deltas.iter().cloned().fold(0.0, f64::max);
            let (reference_accuracy, _, _) = ten_fold_accuracy(&pairs, &reference);
            let accuracy_delta = 100.0 * (accuracy - reference_accuracy);
            Some(ReferenceComparison {
                reference_accuracy_percent: 100.0 * reference_accuracy,
                mean_abs_delta_cosine: mean_delta,
                max_abs_delta_cosine: max_delta,
                accuracy_delta_points: accuracy_delta,
                within_tolerance: mean_delta <= MAX_MEAN_ABS_DELTA
                    && accuracy_delta.abs() <= MAX_ACCURACY_DELTA_POINTS,
            })
        }
        None => None,
    };
    Ok(LfwModelReport {
        model,
        detector: analyzer.detector_name().to_string(),
        variant: format!("{variant:?}").to_lowercase(),
        pairs: pairs.len(),
        pairs_without_face,
        accuracy_percent: 100.0 * accuracy,
        accuracy_std_percent: 100.0 * deviation,
        mean_threshold: threshold,
        mean_genuine_score: mean_of(true),
        mean_impostor_score: mean_of(false),
        reference,
    })
}
