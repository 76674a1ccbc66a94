//! `vigil bench pipeline`: photo pipeline images/s and per-stage milliseconds on LFW images,
//! measured in the same run as its peer (Python onnxruntime + OpenCV) on the same images and
//! the same number of threads. The Python peer runs in the project's `.venv`, which
//! `scripts/dev env` creates when missing.

use crate::peer::run_peer;
use crate::BenchContext;
use std::path::PathBuf;
use std::time::Instant;
use vigil_infer::{decode_image, DecodeLimits};
use vigil_pipeline::lfw::LfwDataset;

pub fn run(
    context: &BenchContext<'_>,
    count: usize,
    threads: usize,
    workers: usize,
    no_peer: bool,
) -> anyhow::Result<()> {
    let workers = if workers == 0 {
        threads.max(1)
    } else {
        workers
    };
    let mut config = context.config.clone();
    config.threads = (threads / workers).max(1);
    let analyzer = (context.analyzer_for)(&config)?;
    let dataset = LfwDataset::new((context.shared_dir)()?.join("data/lfw"))?;
    let files: Vec<PathBuf> = dataset
        .identities()?
        .values()
        .flatten()
        .take(count)
        .map(|i| dataset.path_of(i))
        .collect();
    // warm-up: first runs allocate and optimise the graphs
    if let Some(first) = files.first() {
        let image = decode_image(&std::fs::read(first)?, &DecodeLimits::default())?;
        analyzer.analyze(&image)?;
    }
    // Each worker owns an analyzer (its own sessions, threads / workers intra-op threads) and
    // takes every workers-th image: images run side by side instead of splitting one small
    // tensor across cores.
    let mut worker_config = config.clone();
    worker_config.threads = (threads / workers.max(1)).max(1);
    let mut analyzers = vec![analyzer];
    for _ in 1..workers.max(1) {
        analyzers.push((context.analyzer_for)(&worker_config)?);
    }
    let start = Instant::now();
    let per_worker: Vec<anyhow::Result<([f64; 4], usize)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = analyzers
            .iter()
            .enumerate()
            .map(|(worker, analyzer)| {
                let files = &files;
                let stride = analyzers.len();
                scope.spawn(move || -> anyhow::Result<([f64; 4], usize)> {
                    let mut stage_seconds = [0f64; 4];
                    let mut faces = 0;
                    for file in files.iter().skip(worker).step_by(stride) {
                        let t0 = Instant::now();
                        let bytes = std::fs::read(file)?;
                        let image = decode_image(&bytes, &DecodeLimits::default())?;
                        let t1 = Instant::now();
                        let detections = analyzer.detect(&image)?;
                        let t2 = Instant::now();
                        let aligned: Vec<_> = detections
                            .iter()
                            .map(|d| analyzer.align(&image, d))
                            .collect();
                        let t3 = Instant::now();
                        let embeddings = analyzer.embed(&aligned)?;
                        let t4 = Instant::now();
                        faces += embeddings.len();
                        for (i, (a, b)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4)]
                            .into_iter()
                            .enumerate()
                        {
                            stage_seconds[i] += (b - a).as_secs_f64();
                        }
                    }
                    Ok((stage_seconds, faces))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("benchmark worker panicked")))
            })
            .collect()
    });
    let mut stage_seconds = [0f64; 4];
    let mut faces = 0;
    for result in per_worker {
        let (seconds, count) = result?;
        stage_seconds
            .iter_mut()
            .zip(seconds)
            .for_each(|(total, s)| *total += s);
        faces += count;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = files.len().max(1) as f64;
    let ours = serde_json::json!({
        "images": files.len(), "faces": faces, "threads": threads, "workers": workers, "seconds": elapsed,
        "images_per_second": n / elapsed,
        "stage_ms": {
            "decode": 1000.0 * stage_seconds[0] / n, "detect": 1000.0 * stage_seconds[1] / n,
            "align": 1000.0 * stage_seconds[2] / n, "embed": 1000.0 * stage_seconds[3] / n,
        },
    });
    let analyzer = &analyzers[0];
    println!(
        "detector {} (input at most {}), recognizer {}, {} LFW images, {threads} threads in \
         {workers} worker(s) (stage ms: per image, summed over workers)",
        analyzer.detector_name(),
        config.pipeline.detector_input_pixels,
        analyzer.recognizer_name(),
        files.len()
    );
    print_pipeline_row("vigil (Rust)", &ours);
    if no_peer {
        return Ok(());
    }
    let list = std::env::temp_dir().join(format!("vigil-bench-{}.txt", std::process::id()));
    std::fs::write(
        &list,
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    )?;
    let models = context
        .config
        .models_dir
        .canonicalize()
        .unwrap_or(context.config.models_dir.clone());
    // the peer at its best: one image at a time with the same cores as intra-op threads (as
    // such scripts run), with one thread, and the way vigil runs — `workers` processes side
    // by side with threads / workers each; its best figure is the one compared
    let mut peer_runs = vec![(threads, 1)];
    if threads > 1 {
        peer_runs.push((1, 1));
    }
    if workers > 1 {
        peer_runs.push(((threads / workers).max(1), workers));
    }
    let mut best: Option<serde_json::Value> = None;
    for (peer_threads, peer_processes) in peer_runs {
        let peer = run_peer(
            context,
            "scripts/bench/photo_pipeline.py",
            &[
                "--models".into(),
                models.display().to_string(),
                "--detector".into(),
                analyzer.detector_name().to_string(),
                "--recognizer".into(),
                analyzer.recognizer_name().to_string(),
                "--detector-size".into(),
                config.pipeline.detector_input_pixels.to_string(),
                "--threshold".into(),
                analyzer.detection_threshold().to_string(),
                "--threads".into(),
                peer_threads.to_string(),
                "--processes".into(),
                peer_processes.to_string(),
                "--adaptive-min".into(),
                vigil_infer::analyzer::MIN_ADAPTIVE_INPUT_PIXELS.to_string(),
                "--list".into(),
                list.display().to_string(),
            ],
        );
        let peer = match peer {
            Ok(peer) => peer,
            Err(error) => {
                let _ = std::fs::remove_file(&list);
                return Err(error);
            }
        };
        let name = if peer_processes > 1 {
            format!("python, {peer_processes}×{peer_threads} thr")
        } else {
            format!("python, {peer_threads} thr")
        };
        print_pipeline_row(&name, &peer);
        let rate = |v: &serde_json::Value| v["images_per_second"].as_f64().unwrap_or(0.0);
        if best.as_ref().is_none_or(|b| rate(&peer) > rate(b)) {
            best = Some(peer);
        }
    }
    let _ = std::fs::remove_file(&list);
    if let Some(peer) = best {
        let ratio = ours["images_per_second"].as_f64().unwrap_or(0.0)
            / peer["images_per_second"].as_f64().unwrap_or(f64::NAN);
        println!(
            "ratio vigil / best python: {ratio:.2}x ({})",
            peer["peer"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

fn print_pipeline_row(name: &str, figures: &serde_json::Value) {
    let ms = |stage: &str| figures["stage_ms"][stage].as_f64().unwrap_or(f64::NAN);
    println!(
        "{name:<20} {:>8.1} images/s  faces {:>5}  decode {:>6.2} ms  detect {:>6.2} ms  align {:>6.2} ms  embed {:>6.2} ms",
        figures["images_per_second"].as_f64().unwrap_or(f64::NAN),
        figures["faces"].as_u64().unwrap_or(0),
        ms("decode"), ms("detect"), ms("align"), ms("embed")
    );
}
