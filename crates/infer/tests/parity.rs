//! Parity with the Python reference pipeline of shared/data/MANIFEST.md on LFW pairs, and the
//! quality gate's acceptance of LFW faces.

mod common;

use common::*;
use std::collections::HashMap;
use vigil_base::config::{PipelineConfig, QualityConfig};
use vigil_base::Embedding;
use vigil_infer::manifest::Manifest;
use vigil_infer::{FaceEmbedder, OnnxEmbedder, QualityGate};

const PAIRS_TESTED: usize = 200;

struct Pair {
    image_a: String,
    image_b: String,
    w600k: f32,
    fr_feature_bgr: f32,
}

fn reference_pairs() -> Vec<Pair> {
    let text =
        std::fs::read_to_string(shared().join("data/lfw/reference_pair_scores.csv")).unwrap();
    let rows: Vec<Pair> = text
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            Pair {
                image_a: f[3].into(),
                image_b: f[4].into(),
                w600k: f[5].parse().unwrap(),
                fr_feature_bgr: f[6].parse().unwrap(),
            }
        })
        .collect();
    // Spread over all folds, genuine and impostor alike.
    let step = rows.len() / PAIRS_TESTED;
    rows.into_iter().step_by(step).take(PAIRS_TESTED).collect()
}

#[test]
fn lfw_pair_scores_match_python_reference_and_gate_accepts_lfw_faces() {
    let analyzer = analyzer("scrfd_2.5g", "w600k_mbf_int8", PipelineConfig::default());
    let fr_feature = OnnxEmbedder::open(
        &environment(),
        &models_dir(),
        Manifest::builtin().get("fr_feature").unwrap(),
        2,
    )
    .unwrap();
    let gate = QualityGate::new(&QualityConfig::default());
    let pairs = reference_pairs();
    let mut embeddings: HashMap<String, (Embedding, Embedding)> = HashMap::new();
    let (mut faces_seen, mut faces_accepted, mut frontal) = (0usize, 0usize, 0usize);
    let mut rejections: HashMap<String, usize> = HashMap::new();
    for pair in &pairs {
        for name in [&pair.image_a, &pair.image_b] {
            if embeddings.contains_key(name) {
                continue;
            }
            let image = load(&shared().join("data/lfw").join(name));
            // Reference: det_2.5g at 256, threshold 0.3, face nearest the centre (125, 125).
            let faces = analyzer.detect_with(&image, 256, 0.3).unwrap();
            let distance = |f: &vigil_infer::DetectedFace| {
                let [x, y] = f.bbox.center();
                (x - 125.0).powi(2) + (y - 125.0).powi(2)
            };
            let face = faces
                .iter()
                .min_by(|a, b| distance(a).total_cmp(&distance(b)))
                .unwrap();
            let aligned = analyzer.align(&image, face);
            let (quality, issues) = analyzer.assess(face, &aligned);
            faces_seen += 1;
            faces_accepted += issues.is_empty() as usize;
            frontal += (quality.yaw_degrees.abs() < 20.0) as usize;
            for issue in issues {
                *rejections.entry(format!("{issue:?}")).or_default() += 1;
            }
            assert!(gate.check(&quality).len() <= 4);
            let w600k = analyzer
                .embed(std::slice::from_ref(&aligned))
                .unwrap()
                .remove(0);
            let fr = fr_feature.embed(&[aligned]).unwrap().remove(0);
            embeddings.insert(name.clone(), (w600k, fr));
        }
    }
    let (mut delta_w600k, mut delta_fr, mut worst) = (0f32, 0f32, 0f32);
    for pair in &pairs {
        let (a, b) = (&embeddings[&pair.image_a], &embeddings[&pair.image_b]);
        let w = (a.0.cosine(&b.0).unwrap() - pair.w600k).abs();
        let f = (a.1.cosine(&b.1).unwrap() - pair.fr_feature_bgr).abs();
        delta_w600k += w;
        delta_fr += f;
        worst = worst.max(w).max(f);
    }
    let count = pairs.len() as f32;
    let (mean_w600k, mean_fr) = (delta_w600k / count, delta_fr / count);
    let acceptance = faces_accepted as f32 / faces_seen as f32;
    let frontal_share = frontal as f32 / faces_seen as f32;
    println!(
        "pairs {count}: mean |dcos| w600k {mean_w600k:.4}, fr_feature {mean_fr:.4}, worst {worst:.4}; \
         faces {faces_seen}: gate accepts {:.1}% (rejections {rejections:?}), |yaw| < 20° {:.1}%",
        acceptance * 100.0,
        frontal_share * 100.0
    );
    assert!(mean_w600k <= 0.01, "w600k mean |dcos| {mean_w600k}");
    assert!(mean_fr <= 0.01, "fr_feature mean |dcos| {mean_fr}");
    assert!(acceptance >= 0.97, "quality gate accepts only {acceptance}");
    assert!(
        frontal_share >= 0.8,
        "only {frontal_share} of LFW faces read as |yaw| < 20°"
    );
}

#[test]
fn batch_embedding_equals_one_by_one() {
    let analyzer = analyzer("scrfd_2.5g", "w600k_mbf_int8", PipelineConfig::default());
    let image = load(&shared().join("data/group_photos/sample5.jpg"));
    let analyzed = analyzer.analyze(&image).unwrap();
    assert_eq!(analyzed.len(), 5);
    let aligned: Vec<_> = analyzed.iter().map(|a| a.aligned.clone()).collect();
    let again = analyzer.embed(&aligned).unwrap();
    for (face, embedding) in analyzed.iter().zip(&again) {
        assert_eq!(face.embedding.values(), embedding.values());
        assert_eq!(face.embedding.model().as_str(), "w600k_mbf_int8");
    }
    // Different people in one photo are not the same identity.
    let cross = analyzed[0]
        .embedding
        .cosine(&analyzed[1].embedding)
        .unwrap();
    assert!(cross < 0.3, "two different women score {cross}");
}
