//! `vigil calibrate`: the impostor and genuine score distributions of a recognizer on LFW,
//! turned into the calibration table that ships in the repository.
//!
//! Every image of LFW is embedded by the default pipeline (face nearest the centre). Every pair
//! of images of different identities is an impostor pair (about 87 million), every pair of the
//! same identity a genuine pair. Scores are counted in bins aligned to the table's grid, so the
//! counts at each grid score are exact and memory stays small.

use crate::error::ServiceError;
use crate::eval::embeddings::{embed_lfw, LfwVariant};
use crate::lfw::{LfwDataset, LfwImage};
use rayon::prelude::*;
use std::path::Path;
use vigil_base::calibration::score_grid;
use vigil_base::embedding::dot;
use vigil_base::CalibrationTable;
use vigil_infer::FaceAnalyzer;

/// Table resolution in cosine.
pub const GRID_STEP: f32 = 0.005;

struct Histograms {
    impostor: Vec<u64>,
    genuine: Vec<u64>,
}

fn bin_of(score: f32, bins: usize) -> usize {
    (((score + 1.0) / GRID_STEP).floor().max(0.0) as usize).min(bins - 1)
}

pub fn calibrate(
    dataset: &LfwDataset,
    analyzer: &FaceAnalyzer,
    identities_limit: Option<usize>,
    cache_dir: Option<&Path>,
) -> Result<CalibrationTable, ServiceError> {
    let mut identities: Vec<(String, Vec<LfwImage>)> = dataset.identities()?.into_iter().collect();
    if let Some(limit) = identities_limit {
        identities.truncate(limit);
    }
    let images: Vec<LfwImage> = identities.iter().flat_map(|(_, i)| i.clone()).collect();
    let set = embed_lfw(dataset, analyzer, LfwVariant::Default, &images, cache_dir)?;
    // (identity index, embedding) for every image with a face
    let mut rows: Vec<(usize, &[f32])> = Vec::new();
    for (identity, (_, images)) in identities.iter().enumerate() {
        for image in images {
            if let Some(e) = set.by_image.get(image).and_then(|e| e.embedding.as_ref()) {
                rows.push((identity, e.values()));
            }
        }
    }
    let bins = score_grid(GRID_STEP).count();
    let bar = crate::eval::progress(rows.len(), "scoring pairs");
    let histograms = (0..rows.len())
        .into_par_iter()
        .fold(
            || Histograms {
                impostor: vec![0; bins],
                genuine: vec![0; bins],
            },
            |mut h, i| {
                let (identity, a) = rows[i];
                for (other, b) in &rows[i + 1..] {
                    let bin = bin_of(dot(a, b), bins);
                    if *other == identity {
                        h.genuine[bin] += 1;
                    } else {
                        h.impostor[bin] += 1;
                    }
                }
                bar.inc(1);
                h
            },
        )
        .reduce(
            || Histograms {
                impostor: vec![0; bins],
                genuine: vec![0; bins],
            },
            |mut a, b| {
                a.impostor
                    .iter_mut()
                    .zip(&b.impostor)
                    .for_each(|(x, y)| *x += y);
                a.genuine
                    .iter_mut()
                    .zip(&b.genuine)
                    .for_each(|(x, y)| *x += y);
                a
            },
        );
    bar.finish_and_clear();
    let impostors: u64 = histograms.impostor.iter().sum();
    let genuines: u64 = histograms.genuine.iter().sum();
    // bin i holds scores in [grid_i, grid_i + step): impostors >= grid_i is the suffix sum from
    // i, genuines < grid_i the prefix sum before i.
    let mut grid = Vec::with_capacity(bins);
    let mut impostor_suffix = impostors;
    let mut genuine_prefix = 0;
    for (i, score) in score_grid(GRID_STEP).enumerate() {
        grid.push((score, impostor_suffix, genuine_prefix));
        impostor_suffix -= histograms.impostor[i];
        genuine_prefix += histograms.genuine[i];
    }
    let dataset_description = format!(
        "LFW deep-funneled, {} identities, {} images with a face; detector {} (default pipeline, \
         face nearest the centre); all different-identity pairs are impostors",
        identities.len(),
        rows.len(),
        analyzer.detector_name()
    );
    Ok(CalibrationTable::from_counts(
        set.model.as_str(),
        &dataset_description,
        impostors,
        genuines,
        grid,
    )?)
}

/// The calibration tables shipped in the repository (`calibration/<model>.json`), measured by
/// `vigil calibrate`.
pub fn builtin_table(model: &str) -> Option<CalibrationTable> {
    let text = match model {
        "w600k_mbf_int8" => include_str!("../../../calibration/w600k_mbf_int8.json"),
        "fr_feature" => include_str!("../../../calibration/fr_feature.json"),
        _ => return None,
    };
    CalibrationTable::from_json(text).ok()
}
