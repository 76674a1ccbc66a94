//! Per-stage timings and quality-gate figures on LFW images.
//!
//! `cargo run --release -p vigil-infer --example stage_timings -- [images] [detector] [input]`
//! (defaults: 500 images, scrfd_2.5g, 256). Needs ORT_DYLIB_PATH or the project's .venv.

use std::path::Path;
use std::time::Instant;
use vigil_base::config::{PipelineConfig, QualityConfig};
use vigil_infer::{AnalyzerSettings, DecodeLimits, FaceAnalyzer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().collect();
    let image_count: usize = arguments
        .get(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(500);
    let detector = arguments
        .get(2)
        .cloned()
        .unwrap_or_else(|| "scrfd_2.5g".into());
    let input_pixels: u32 = arguments
        .get(3)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(256);
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    let analyzer = FaceAnalyzer::new(AnalyzerSettings {
        models_dir: shared.join("models"),
        detector,
        recognizer: "w600k_mbf_int8".into(),
        threads: 2,
        pipeline: PipelineConfig {
            detector_input_pixels: input_pixels,
            ..PipelineConfig::default()
        },
        quality: QualityConfig::default(),
        onnxruntime_library: None,
        video_detector: None,
    })?;
    let pairs = std::fs::read_to_string(shared.join("data/lfw/reference_pair_scores.csv"))?;
    let mut names: Vec<&str> = pairs
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(3))
        .collect();
    names.dedup();
    let names: Vec<&str> = names.into_iter().take(image_count).collect();

    let mut stage_ms = [0f64; 4];
    let (mut accepted, mut frontal, mut seen) = (0usize, 0usize, 0usize);
    let mut yaws = Vec::new();
    for name in &names {
        let bytes = std::fs::read(shared.join("data/lfw").join(name))?;
        let start = Instant::now();
        let image = vigil_infer::decode_image(&bytes, &DecodeLimits::default())?;
        let decoded = Instant::now();
        let faces = analyzer.detect_with(&image, input_pixels, 0.3)?;
        let detected = Instant::now();
        let distance = |f: &vigil_infer::DetectedFace| {
            let [x, y] = f.bbox.center();
            (x - 125.0).powi(2) + (y - 125.0).powi(2)
        };
        let Some(face) = faces
            .iter()
            .min_by(|a, b| distance(a).total_cmp(&distance(b)))
        else {
            continue;
        };
        let aligned = analyzer.align(&image, face);
        let aligned_at = Instant::now();
        analyzer.embed(std::slice::from_ref(&aligned))?;
        let embedded = Instant::now();
        for (slot, (from, to)) in stage_ms.iter_mut().zip([
            (start, decoded),
            (decoded, detected),
            (detected, aligned_at),
            (aligned_at, embedded),
        ]) {
            *slot += (to - from).as_secs_f64() * 1000.0;
        }
        let (quality, issues) = analyzer.assess(face, &aligned);
        seen += 1;
        accepted += issues.is_empty() as usize;
        frontal += (quality.yaw_degrees.abs() < 20.0) as usize;
        yaws.push(quality.yaw_degrees.abs());
    }
    yaws.sort_by(f32::total_cmp);
    let per_image = |total: f64| total / seen as f64;
    println!(
        "{seen} images ({} detector @{input_pixels}): decode {:.2} ms, detect {:.2} ms, align {:.3} ms, embed {:.2} ms",
        analyzer.detector_name(),
        per_image(stage_ms[0]),
        per_image(stage_ms[1]),
        per_image(stage_ms[2]),
        per_image(stage_ms[3])
    );
    println!(
        "quality gate (defaults) accepts {:.2}%; |yaw| < 20° for {:.1}%; median |yaw| {:.1}°, p95 {:.1}°",
        100.0 * accepted as f64 / seen as f64,
        100.0 * frontal as f64 / seen as f64,
        yaws[yaws.len() / 2],
        yaws[yaws.len() * 95 / 100]
    );
    Ok(())
}
