//! `vigil eval lfw-openset`: open-set 1:N identification on LFW.
//!
//! Gallery: the first image of every identity with at least two images. Mated probes: the other
//! images of those identities. Non-mated probes: every image of the identities with a single
//! image. Reported as NIST FRVT 1:N does: FNIR at a threshold set on the non-mated searches for
//! a given FPIR, and the rank-1 hit rate. "With the quality gate" means a probe whose face fails
//! the gate returns no candidate (a miss if mated, no false alarm if not); the gallery is the
//! same in both runs. Identities listed as label noise in calibration/lfw_exclusions.tsv are left
//! out: a person filed under two names would turn a true match into a "false alarm".

use super::embeddings::{embed_lfw, EmbeddingSet, LfwVariant};
use crate::calibrate::{parse_exclusions, LFW_EXCLUSIONS};
use crate::error::ServiceError;
use crate::lfw::{LfwDataset, LfwImage};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashSet;
use std::path::Path;
use vigil_base::embedding::dot;
use vigil_base::Embedding;
use vigil_infer::FaceAnalyzer;

#[derive(Debug, Clone, Serialize)]
pub struct OpenSetReport {
    pub model: String,
    pub detector: String,
    pub gallery_identities: usize,
    pub mated_probes: usize,
    pub non_mated_probes: usize,
    /// Identities left out as label noise (calibration/lfw_exclusions.tsv).
    pub excluded_identities: usize,
    pub without_gate: OpenSetFigures,
    pub with_gate: OpenSetFigures,
    /// Subjects enrolled from several photos: how their templates are fused decides.
    pub fusion: FusionReport,
}

/// The multi-template protocol: identities with at least `MIN_IMAGES_FOR_FUSION` images enrol
/// their first half (at most `MAX_ENROLLED_PER_SUBJECT`, usable faces only, as enrolment
/// requires) and search with the rest; non-mated probes as above; the quality gate on.
#[derive(Debug, Clone, Serialize)]
pub struct FusionReport {
    pub gallery_identities: usize,
    pub templates: usize,
    pub mated_probes: usize,
    pub non_mated_probes: usize,
    /// A subject scores its best template's cosine (vigil's identification today).
    pub max: OpenSetFigures,
    /// A subject scores the cosine with the mean of its templates, renormalised.
    pub centroid: OpenSetFigures,
}

const MIN_IMAGES_FOR_FUSION: usize = 4;
const MAX_ENROLLED_PER_SUBJECT: usize = 5;

#[derive(Debug, Clone, Serialize)]
pub struct OpenSetFigures {
    pub rank1_hit_rate: f64,
    /// Probes that returned nothing because no face was found or the gate refused it.
    pub mated_probes_refused: usize,
    pub non_mated_probes_refused: usize,
    pub at_fpir: Vec<FnirAtFpir>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FnirAtFpir {
    pub fpir: f64,
    pub threshold: f32,
    pub fnir: f64,
}

struct Search {
    /// Top-1 gallery index and score; None when the probe returned nothing.
    top1: Option<(usize, f32)>,
}

fn search(gallery: &[&Embedding], probe: Option<&Embedding>) -> Search {
    let Some(probe) = probe else {
        return Search { top1: None };
    };
    let top1 = gallery
        .iter()
        .enumerate()
        .map(|(i, g)| (i, dot(g.values(), probe.values())))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    Search { top1 }
}

/// The top-1 subject when each subject scores its best template.
fn search_max(gallery: &[Vec<&Embedding>], probe: Option<&Embedding>) -> Search {
    let Some(probe) = probe else {
        return Search { top1: None };
    };
    let top1 = gallery
        .iter()
        .enumerate()
        .filter_map(|(i, templates)| {
            templates
                .iter()
                .map(|t| dot(t.values(), probe.values()))
                .reduce(f32::max)
                .map(|score| (i, score))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    Search { top1 }
}

/// The unit mean of a subject's templates.
fn centroid(templates: &[&Embedding]) -> Option<Vec<f32>> {
    let first = templates.first()?;
    let mut sum = vec![0f32; first.dimension()];
    for template in templates {
        for (s, v) in sum.iter_mut().zip(template.values()) {
            *s += v;
        }
    }
    let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt();
    (norm > 0.0).then(|| sum.into_iter().map(|v| v / norm).collect())
}

/// FRVT-style figures from mated searches (with their true gallery slot) and non-mated ones.
fn figures_of(mated_searches: &[(usize, Search)], non_mated_searches: &[Search]) -> OpenSetFigures {
    let hits = mated_searches
        .iter()
        .filter(|(slot, s)| s.top1.is_some_and(|(i, _)| i == *slot))
        .count();
    let mut non_mated_scores: Vec<f32> = non_mated_searches
        .iter()
        .filter_map(|s| s.top1.map(|t| t.1))
        .collect();
    non_mated_scores.sort_by(|a, b| b.total_cmp(a));
    let at_fpir = [0.01, 0.001]
        .into_iter()
        .map(|fpir| {
            // the threshold admits at most fpir × non-mated searches
            let allowed = (fpir * non_mated_searches.len() as f64).floor() as usize;
            let threshold = non_mated_scores.get(allowed).map_or(-1.0, |s| next_up(*s));
            let misses = mated_searches
                .iter()
                .filter(|(slot, s)| {
                    !s.top1
                        .is_some_and(|(i, score)| i == *slot && score >= threshold)
                })
                .count();
            FnirAtFpir {
                fpir,
                threshold,
                fnir: misses as f64 / mated_searches.len().max(1) as f64,
            }
        })
        .collect();
    OpenSetFigures {
        rank1_hit_rate: hits as f64 / mated_searches.len().max(1) as f64,
        mated_probes_refused: mated_searches
            .iter()
            .filter(|(_, s)| s.top1.is_none())
            .count(),
        non_mated_probes_refused: non_mated_searches
            .iter()
            .filter(|s| s.top1.is_none())
            .count(),
        at_fpir,
    }
}

pub fn run_openset(
    dataset: &LfwDataset,
    analyzers: &[FaceAnalyzer],
    identities_limit: Option<usize>,
    cache_dir: Option<&Path>,
) -> Result<OpenSetReport, ServiceError> {
    let mut identities: Vec<(String, Vec<LfwImage>)> = dataset.identities()?.into_iter().collect();
    if let Some(limit) = identities_limit {
        identities.truncate(limit);
    }
    // identities that are label noise (one person under two names, one photograph under two
    // names) would turn a non-mated search into a mated one: leave them out entirely
    let noisy: HashSet<String> = parse_exclusions(LFW_EXCLUSIONS)
        .into_iter()
        .flat_map(|(a, b)| [a, b])
        .collect();
    let before = identities.len();
    identities.retain(|(name, _)| !noisy.contains(name));
    let excluded_identities = before - identities.len();
    let images: Vec<LfwImage> = identities.iter().flat_map(|(_, i)| i.clone()).collect();
    let set: EmbeddingSet = embed_lfw(dataset, analyzers, LfwVariant::Default, &images, cache_dir)?;
    let analyzer = &analyzers[0]; // embed_lfw refused an empty list

    let mut gallery: Vec<&Embedding> = Vec::new();
    let mut mated: Vec<(usize, &LfwImage)> = Vec::new();
    let mut non_mated: Vec<&LfwImage> = Vec::new();
    for (_, images) in &identities {
        if images.len() >= 2 {
            let Some(enrolled) = set
                .by_image
                .get(&images[0])
                .and_then(|e| e.embedding.as_ref())
            else {
                continue; // no face in the enrolment photo: that identity is not enrolled
            };
            let slot = gallery.len();
            gallery.push(enrolled);
            mated.extend(images[1..].iter().map(|i| (slot, i)));
        } else {
            non_mated.extend(images.iter());
        }
    }
    let figures = |gate: bool| -> OpenSetFigures {
        let probe_of = |image: &LfwImage| {
            set.by_image
                .get(image)
                .filter(|e| !gate || e.usable)
                .and_then(|e| e.embedding.as_ref())
        };
        let mated_searches: Vec<(usize, Search)> = mated
            .par_iter()
            .map(|(slot, image)| (*slot, search(&gallery, probe_of(image))))
            .collect();
        let non_mated_searches: Vec<Search> = non_mated
            .par_iter()
            .map(|image| search(&gallery, probe_of(image)))
            .collect();
        figures_of(&mated_searches, &non_mated_searches)
    };

    // several photos per subject: max fusion against the centroid
    let usable = |image: &LfwImage| {
        set.by_image
            .get(image)
            .filter(|e| e.usable)
            .and_then(|e| e.embedding.as_ref())
    };
    let mut subjects: Vec<Vec<&Embedding>> = Vec::new();
    let mut fused_mated: Vec<(usize, &LfwImage)> = Vec::new();
    for (_, images) in &identities {
        if images.len() < MIN_IMAGES_FOR_FUSION {
            continue;
        }
        let enrolled = (images.len() / 2).min(MAX_ENROLLED_PER_SUBJECT);
        let templates: Vec<&Embedding> = images[..enrolled].iter().filter_map(usable).collect();
        if templates.is_empty() {
            continue;
        }
        let slot = subjects.len();
        subjects.push(templates);
        fused_mated.extend(images[enrolled..].iter().map(|i| (slot, i)));
    }
    let centroids: Vec<Embedding> = subjects
        .iter()
        .filter_map(|templates| {
            let model = templates.first()?.model().clone();
            Embedding::normalised(model, centroid(templates)?).ok()
        })
        .collect();
    let centroid_refs: Vec<&Embedding> = centroids.iter().collect();
    let fused = |by_centroid: bool| -> OpenSetFigures {
        let run = |image: &LfwImage| {
            if by_centroid {
                search(&centroid_refs, usable(image))
            } else {
                search_max(&subjects, usable(image))
            }
        };
        let mated_searches: Vec<(usize, Search)> = fused_mated
            .par_iter()
            .map(|(slot, image)| (*slot, run(image)))
            .collect();
        let non_mated_searches: Vec<Search> = non_mated.par_iter().map(|i| run(i)).collect();
        figures_of(&mated_searches, &non_mated_searches)
    };
    let fusion = FusionReport {
        gallery_identities: subjects.len(),
        templates: subjects.iter().map(Vec::len).sum(),
        mated_probes: fused_mated.len(),
        non_mated_probes: non_mated.len(),
        max: fused(false),
        centroid: fused(true),
    };
    Ok(OpenSetReport {
        model: set.model.to_string(),
        detector: analyzer.detector_name().to_string(),
        gallery_identities: gallery.len(),
        mated_probes: mated.len(),
        non_mated_probes: non_mated.len(),
        excluded_identities,
        without_gate: figures(false),
        with_gate: figures(true),
        fusion,
    })
}

/// The smallest f32 above `value`: a threshold strictly above a non-mated score.
fn next_up(value: f32) -> f32 {
    if value.is_nan() || value == f32::INFINITY {
        return value;
    }
    let bits = value.to_bits();
    let next = if value == 0.0 {
        1
    } else if value > 0.0 {
        bits + 1
    } else {
        bits - 1
    };
    f32::from_bits(next)
}
