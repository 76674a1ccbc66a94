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
use std::collections::HashSet;
use std::path::Path;
use vigil_base::calibration::score_grid;
use vigil_base::embedding::dot;
use vigil_base::CalibrationTable;
use vigil_infer::FaceAnalyzer;

/// Table resolution in cosine.
pub const GRID_STEP: f32 = 0.005;

/// Identity pairs of LFW that are not true impostors (one person under two names, one
/// photograph under two names, photos where the centre face is the other person), checked by
/// eye; see the file's header.
pub const LFW_EXCLUSIONS: &str = include_str!("../../../calibration/lfw_exclusions.tsv");

/// Parses an exclusion list: `identity_a <TAB> identity_b <TAB> reason` lines, `#` comments.
pub fn parse_exclusions(text: &str) -> HashSet<(String, String)> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let a = fields.next()?.trim().to_string();
            let b = fields.next()?.trim().to_string();
            Some(if a <= b { (a, b) } else { (b, a) })
        })
        .collect()
}

struct Histograms {
    impostor: Vec<u64>,
    genuine: Vec<u64>,
    excluded: u64,
}

fn bin_of(score: f32, bins: usize) -> usize {
    (((score + 1.0) / GRID_STEP).floor().max(0.0) as usize).min(bins - 1)
}

pub fn calibrate(
    dataset: &LfwDataset,
    analyzers: &[FaceAnalyzer],
    identities_limit: Option<usize>,
    cache_dir: Option<&Path>,
) -> Result<CalibrationTable, ServiceError> {
    let mut identities: Vec<(String, Vec<LfwImage>)> = dataset.identities()?.into_iter().collect();
    if let Some(limit) = identities_limit {
        identities.truncate(limit);
    }
    let images: Vec<LfwImage> = identities.iter().flat_map(|(_, i)| i.clone()).collect();
    let set = embed_lfw(dataset, analyzers, LfwVariant::Default, &images, cache_dir)?;
    let analyzer = &analyzers[0]; // embed_lfw refused an empty list
                                  // (identity index, embedding) for every image with a face
    let mut rows: Vec<(usize, &[f32])> = Vec::new();
    for (identity, (_, images)) in identities.iter().enumerate() {
        for image in images {
            if let Some(e) = set.by_image.get(image).and_then(|e| e.embedding.as_ref()) {
                rows.push((identity, e.values()));
            }
        }
    }
    // identity index pairs to leave out
    let index_of: std::collections::HashMap<&str, usize> = identities
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.as_str(), i))
        .collect();
    let excluded_identities: HashSet<(usize, usize)> = parse_exclusions(LFW_EXCLUSIONS)
        .iter()
        .filter_map(|(a, b)| {
            let (a, b) = (*index_of.get(a.as_str())?, *index_of.get(b.as_str())?);
            Some((a.min(b), a.max(b)))
        })
        .collect();
    let bins = score_grid(GRID_STEP).count();
    let bar = crate::eval::progress(rows.len(), "scoring pairs");
    let empty = || Histograms {
        impostor: vec![0; bins],
        genuine: vec![0; bins],
        excluded: 0,
    };
    let histograms = (0..rows.len())
        .into_par_iter()
        .fold(empty, |mut h, i| {
            let (identity, a) = rows[i];
            for (other, b) in &rows[i + 1..] {
                let key = (identity.min(*other), identity.max(*other));
                if *other != identity && excluded_identities.contains(&key) {
                    h.excluded += 1;
                    continue;
                }
                let bin = bin_of(dot(a, b), bins);
                if *other == identity {
                    h.genuine[bin] += 1;
                } else {
                    h.impostor[bin] += 1;
                }
            }
            bar.inc(1);
            h
        })
        .reduce(empty, |mut a, b| {
            a.impostor
                .iter_mut()
                .zip(&b.impostor)
                .for_each(|(x, y)| *x += y);
            a.genuine
                .iter_mut()
                .zip(&b.genuine)
                .for_each(|(x, y)| *x += y);
            a.excluded += b.excluded;
            a
        });
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
         face nearest the centre); all different-identity pairs are impostors except {} pairs \
         of {} identity pairs listed as label noise in calibration/lfw_exclusions.tsv",
        identities.len(),
        rows.len(),
        analyzer.detector_name(),
        histograms.excluded,
        excluded_identities.len()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusion_list_parses_into_ordered_identity_pairs() {
        let pairs = parse_exclusions("# comment\nB\tA\treason\n\nC\tD\n");
        assert!(pairs.contains(&("A".to_string(), "B".to_string())));
        assert!(pairs.contains(&("C".to_string(), "D".to_string())));
        assert_eq!(pairs.len(), 2);
        assert!(parse_exclusions(LFW_EXCLUSIONS).len() >= 19);
    }
}
