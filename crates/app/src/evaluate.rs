//! `vigil calibrate` and `vigil eval lfw | lfw-openset | detect`.

use crate::cli::{CalibrateArgs, EvalCommand};
use crate::context::{lfw_dir, repository_root, shared_dir, Context};
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use vigil_pipeline::eval::detect::run_detect;
use vigil_pipeline::eval::embeddings::LfwVariant;
use vigil_pipeline::eval::lfw::run_lfw;
use vigil_pipeline::eval::openset::run_openset;
use vigil_pipeline::lfw::LfwDataset;

const RECOGNIZERS: &[&str] = &["w600k_mbf_int8", "fr_feature"];
const DETECTORS: &[&str] = &["scrfd_2.5g", "scrfd_500m", "yunet", "retinaface_mb025"];

fn write_json<T: serde::Serialize>(path: Option<&Path>, value: &T) -> anyhow::Result<()> {
    if let Some(path) = path {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(value)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("results written to {}", path.display());
    }
    Ok(())
}

pub fn calibrate(context: &Context, args: CalibrateArgs) -> anyhow::Result<()> {
    let mut config = context.config.clone();
    if let Some(model) = &args.model {
        config.pipeline.recognizer = model.clone();
    }
    let analyzers = context.analyzers_for(&config)?;
    let dataset = LfwDataset::new(lfw_dir(args.lfw.as_deref())?)?;
    let cache = context.cache_dir();
    let table =
        vigil_pipeline::calibrate::calibrate(&dataset, &analyzers, args.identities, Some(&cache))?;
    let out = match args.out {
        Some(path) => path,
        None => repository_root()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("calibration")
            .join(format!("{}.json", table.model)),
    };
    write_json(Some(&out), &table)?;
    println!(
        "{}: {} impostor pairs, {} genuine pairs",
        table.model, table.impostor_pairs, table.genuine_pairs
    );
    println!("{:>10} {:>10} {:>10}", "FMR", "cosine", "FNMR");
    for rate in [1e-2, 1e-3, 1e-4, 1e-5, 1e-6] {
        let threshold = table.threshold_for(rate)?;
        let fnmr = table
            .points
            .iter()
            .find(|p| p.score >= threshold)
            .map_or(1.0, |p| p.false_non_match_rate);
        let note = if table.false_match_rate(threshold).extrapolated {
            " (tail fit)"
        } else {
            ""
        };
        println!("{:>10.0e} {:>10.3} {:>10.4}{note}", rate, threshold, fnmr);
    }
    Ok(())
}

pub fn run(context: &Context, command: EvalCommand) -> anyhow::Result<()> {
    let cache = context.cache_dir();
    match command {
        EvalCommand::Lfw {
            lfw,
            pairs_per_fold,
            json,
            check,
        } => {
            let dataset = LfwDataset::new(lfw_dir(lfw.as_deref())?)?;
            let mut reports = Vec::new();
            // the reference pipeline needs det_2.5g, as data/MANIFEST.md describes it
            let mut reference_config = context.config.clone();
            reference_config.pipeline.detector = "scrfd_2.5g".into();
            for recognizer in RECOGNIZERS {
                reference_config.pipeline.recognizer = recognizer.to_string();
                let analyzers = context.analyzers_for(&reference_config)?;
                reports.push(run_lfw(
                    &dataset,
                    &analyzers,
                    LfwVariant::Reference,
                    pairs_per_fold,
                    Some(&cache),
                )?);
            }
            let analyzers = context.analyzers_for(&context.config)?;
            reports.push(run_lfw(
                &dataset,
                &analyzers,
                LfwVariant::Default,
                pairs_per_fold,
                Some(&cache),
            )?);
            println!(
                "{:<16} {:<12} {:<10} {:>6} {:>9} {:>7} {:>10} {:>10} {:>9} {:>7}",
                "recognizer",
                "detector",
                "pipeline",
                "pairs",
                "accuracy",
                "±",
                "reference",
                "mean|Δcos|",
                "max|Δcos|",
                "Δpoints"
            );
            let mut failed = false;
            for r in &reports {
                let (reference, mean, max, delta) = match &r.reference {
                    Some(c) if r.variant == "reference" => (
                        format!("{:.2}%", c.reference_accuracy_percent),
                        format!("{:.4}", c.mean_abs_delta_cosine),
                        format!("{:.4}", c.max_abs_delta_cosine),
                        format!("{:+.2}", c.accuracy_delta_points),
                    ),
                    _ => ("-".into(), "-".into(), "-".into(), "-".into()),
                };
                if r.variant == "reference"
                    && r.reference.as_ref().is_some_and(|c| !c.within_tolerance)
                {
                    failed = true;
                }
                println!(
                    "{:<16} {:<12} {:<10} {:>6} {:>8.2}% {:>6.2}% {:>10} {:>10} {:>9} {:>7}",
                    r.model,
                    r.detector,
                    r.variant,
                    r.pairs,
                    r.accuracy_percent,
                    r.accuracy_std_percent,
                    reference,
                    mean,
                    max,
                    delta
                );
            }
            write_json(json.as_deref(), &reports)?;
            if check && failed {
                anyhow::bail!("a recognizer is outside the reference tolerance (mean |Δcos| ≤ 0.01, accuracy within 0.1 point)");
            }
        }
        EvalCommand::LfwOpenset {
            lfw,
            identities,
            json,
        } => {
            let dataset = LfwDataset::new(lfw_dir(lfw.as_deref())?)?;
            let analyzers = context.analyzers_for(&context.config)?;
            let report = run_openset(&dataset, &analyzers, identities, Some(&cache))?;
            println!(
                "{} + {}: gallery {} identities, {} mated probes, {} non-mated probes ({} label-noise identities left out)",
                report.detector,
                report.model,
                report.gallery_identities,
                report.mated_probes,
                report.non_mated_probes,
                report.excluded_identities
            );
            println!(
                "{:<14} {:>8} {:>16} {:>16} {:>9}",
                "quality gate", "rank-1", "FNIR@FPIR=0.01", "FNIR@FPIR=0.001", "refused"
            );
            let fusion = &report.fusion;
            let rows = [
                ("off", &report.without_gate),
                ("on", &report.with_gate),
                ("on, max", &fusion.max),
                ("on, centroid", &fusion.centroid),
            ];
            for (index, (name, f)) in rows.into_iter().enumerate() {
                if index == 2 {
                    println!(
                        "subjects enrolled from several photos ({} identities, {} templates, {} mated and {} non-mated probes), fused by:",
                        fusion.gallery_identities,
                        fusion.templates,
                        fusion.mated_probes,
                        fusion.non_mated_probes
                    );
                }
                let fnir = |i: usize| {
                    f.at_fpir.get(i).map_or(String::from("-"), |x| {
                        format!("{:.4} (τ {:.3})", x.fnir, x.threshold)
                    })
                };
                println!(
                    "{:<14} {:>8.4} {:>16} {:>16} {:>9}",
                    name,
                    f.rank1_hit_rate,
                    fnir(0),
                    fnir(1),
                    f.mated_probes_refused + f.non_mated_probes_refused
                );
            }
            write_json(json.as_deref(), &report)?;
        }
        EvalCommand::Detect {
            photos,
            detector,
            json,
        } => {
            let folder = match photos {
                Some(p) => p,
                None => shared_dir()?.join("data").join("group_photos"),
            };
            let detectors: Vec<String> = if detector.is_empty() {
                DETECTORS.iter().map(|d| d.to_string()).collect()
            } else {
                detector
            };
            let mut reports = Vec::new();
            println!(
                "{:<18} {:>8} {:>16} {:>9}",
                "detector", "found", "false positives", "mean IoU"
            );
            for name in detectors {
                let mut config = context.config.clone();
                config.pipeline.detector = name.clone();
                let analyzer = context.analyzer_for(&config)?;
                let report = run_detect(&folder, &analyzer)?;
                println!(
                    "{:<18} {:>5}/{:<2} {:>16} {:>9.3}",
                    report.detector,
                    report.faces_found,
                    report.faces_expected,
                    report.false_positives,
                    report.mean_iou
                );
                reports.push(report);
            }
            write_json(json.as_deref(), &reports)?;
        }
    }
    Ok(())
}
