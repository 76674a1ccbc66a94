//! Exact-search benchmark on deterministic synthetic data, and a memory-bandwidth probe.
//!
//! The data are clustered unit vectors (random centres plus noise, normalised), like a gallery
//! of several photos per person ([`SyntheticVectors`]). `run_exact` can dump rows, queries and
//! its own top-k as raw little-endian files so `scripts/bench/faiss_flat.py` measures faiss on
//! identical data and checks that both agree.

use crate::synthetic::SyntheticVectors;
use crate::BenchError;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use vigil_base::{Embedding, TemplateId};
use vigil_index::{ExactIndex, TemplateHit};

/// Rows generated before their insertion is timed, so generation stays out of `build_seconds`.
const BUILD_CHUNK_ROWS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExactBenchConfig {
    pub rows: usize,
    pub dimension: usize,
    pub queries: usize,
    pub k: usize,
    /// Search threads; 0 means one per core.
    pub threads: usize,
    /// Batch sizes measured after the single-query loop.
    pub batch_sizes: Vec<usize>,
    /// Where to write rows, queries and ground truth for the faiss peer.
    pub dump_dir: Option<PathBuf>,
}

impl Default for ExactBenchConfig {
    fn default() -> Self {
        Self {
            rows: 100_000,
            dimension: 512,
            queries: 256,
            k: 10,
            threads: 0,
            batch_sizes: vec![64, 256],
            dump_dir: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchMode {
    /// One query per call.
    Single,
    /// `batch` queries per call.
    Batch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchFigure {
    pub mode: BenchMode,
    pub batch: usize,
    pub threads: usize,
    pub rows: usize,
    pub dimension: usize,
    pub k: usize,
    pub queries_per_second: f64,
    /// Row bytes scanned per second: calls per second × rows × dimension × 4.
    pub scanned_gigabytes_per_second: f64,
    pub build_seconds: f64,
    /// Fraction of queries whose top-1 template equals the single-query search's.
    pub top1_agreement_with_single: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BandwidthFigure {
    pub buffer_bytes: usize,
    pub threads: usize,
    /// Best of the repeats, 10^9 bytes per second.
    pub gigabytes_per_second: f64,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BenchError + '_ {
    move |source| BenchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn create(path: &Path) -> Result<BufWriter<File>, BenchError> {
    Ok(BufWriter::with_capacity(
        1 << 20,
        File::create(path).map_err(io_error(path))?,
    ))
}

fn write_f32s(writer: &mut impl Write, values: &[f32], path: &Path) -> Result<(), BenchError> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    writer.write_all(&bytes).map_err(io_error(path))
}

fn validate(config: &ExactBenchConfig) -> Result<(), BenchError> {
    let positive = [
        ("rows", config.rows),
        ("dimension", config.dimension),
        ("queries", config.queries),
        ("k", config.k),
    ];
    for (name, value) in positive {
        if value == 0 {
            return Err(BenchError::Config(format!("{name} must be positive")));
        }
    }
    if config.batch_sizes.contains(&0) {
        return Err(BenchError::Config("batch sizes must be positive".into()));
    }
    Ok(())
}

/// Builds an index of `config.rows` synthetic rows and measures single-query and batched
/// search throughput on a pool of `config.threads` threads.
pub fn run_exact(config: &ExactBenchConfig) -> Result<Vec<BenchFigure>, BenchError> {
    validate(config)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads)
        .build()
        .map_err(|error| BenchError::ThreadPool(error.to_string()))?;
    let threads = pool.current_num_threads();
    let data = SyntheticVectors::new(config.dimension, config.rows);
    if let Some(dir) = &config.dump_dir {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    }

    let (index, build_seconds) = build_index(&data, config, &pool)?;
    let queries: Vec<Embedding> = (0..config.queries)
        .map(|q| data.query(q))
        .collect::<Result<_, _>>()?;

    // warm-up: page in the rows and start the pool's threads
    pool.install(|| index.search(&queries[0], config.k))?;

    let started = Instant::now();
    let ground_truth: Vec<Vec<TemplateHit>> = pool.install(|| {
        queries
            .iter()
            .map(|query| index.search(query, config.k))
            .collect::<Result<_, _>>()
    })?;
    let single_seconds = started.elapsed().as_secs_f64();

    let figure = |mode, batch: usize, seconds: f64, agreement: f64| {
        let queries_per_second = config.queries as f64 / seconds;
        BenchFigure {
            mode,
            batch,
            threads,
            rows: config.rows,
            dimension: config.dimension,
            k: config.k,
            queries_per_second,
            scanned_gigabytes_per_second: queries_per_second / batch as f64
                * (config.rows * config.dimension * 4) as f64
                / 1e9,
            build_seconds,
            top1_agreement_with_single: agreement,
        }
    };
    let mut figures = vec![figure(BenchMode::Single, 1, single_seconds, 1.0)];
    for &batch in &config.batch_sizes {
        let started = Instant::now();
        let mut results: Vec<Vec<TemplateHit>> = Vec::with_capacity(queries.len());
        for chunk in queries.chunks(batch) {
            results.extend(pool.install(|| index.search_batch(chunk, config.k))?);
        }
        let seconds = started.elapsed().as_secs_f64();
        figures.push(figure(
            BenchMode::Batch,
            batch,
            seconds,
            top1_agreement(&ground_truth, &results),
        ));
    }

    if let Some(dir) = &config.dump_dir {
        dump_queries_and_truth(dir, config, &queries, &ground_truth)?;
    }
    Ok(figures)
}

/// Generates the rows (dumping them as they are made) and times only their insertion.
fn build_index(
    data: &SyntheticVectors,
    config: &ExactBenchConfig,
    pool: &rayon::ThreadPool,
) -> Result<(ExactIndex, f64), BenchError> {
    let rows_path = config.dump_dir.as_ref().map(|dir| dir.join("rows.f32"));
    let mut rows_writer = rows_path.as_deref().map(create).transpose()?;
    let mut index = ExactIndex::with_capacity(data.model().clone(), config.dimension, config.rows);
    let mut build_seconds = 0.0;
    for chunk_start in (0..config.rows).step_by(BUILD_CHUNK_ROWS) {
        let chunk_end = (chunk_start + BUILD_CHUNK_ROWS).min(config.rows);
        let chunk: Vec<Embedding> = pool.install(|| {
            (chunk_start..chunk_end)
                .into_par_iter()
                .map(|row| data.row(row))
                .collect::<Result<Vec<_>, _>>()
        })?;
        let started = Instant::now();
        for (offset, embedding) in chunk.iter().enumerate() {
            let row = chunk_start + offset;
            index.insert(TemplateId(row as i64), data.subject_of(row), embedding)?;
        }
        build_seconds += started.elapsed().as_secs_f64();
        if let (Some(writer), Some(path)) = (rows_writer.as_mut(), rows_path.as_deref()) {
            for embedding in &chunk {
                write_f32s(writer, embedding.values(), path)?;
            }
        }
    }
    if let (Some(mut writer), Some(path)) = (rows_writer, rows_path.as_deref()) {
        writer.flush().map_err(io_error(path))?;
    }
    Ok((index, build_seconds))
}

fn top1_agreement(reference: &[Vec<TemplateHit>], measured: &[Vec<TemplateHit>]) -> f64 {
    let agreeing = reference
        .iter()
        .zip(measured)
        .filter(|(r, m)| match (r.first(), m.first()) {
            // a different template at the same score (to rounding) is a tie, not an error
            (Some(r), Some(m)) => r.template == m.template || (r.score - m.score).abs() < 1e-5,
            (None, None) => true,
            _ => false,
        })
        .count();
    agreeing as f64 / reference.len().max(1) as f64
}

/// Files: `queries.f32` (queries × dimension), `truth_templates.i64` and `truth_scores.f32`
/// (queries × k, template id = row number, -1 / NaN where fewer than k rows), `meta.json`.
fn dump_queries_and_truth(
    dir: &Path,
    config: &ExactBenchConfig,
    queries: &[Embedding],
    ground_truth: &[Vec<TemplateHit>],
) -> Result<(), BenchError> {
    let path = dir.join("queries.f32");
    let mut writer = create(&path)?;
    for query in queries {
        write_f32s(&mut writer, query.values(), &path)?;
    }
    writer.flush().map_err(io_error(&path))?;

    let templates_path = dir.join("truth_templates.i64");
    let scores_path = dir.join("truth_scores.f32");
    let mut templates = create(&templates_path)?;
    let mut scores = create(&scores_path)?;
    for hits in ground_truth {
        for rank in 0..config.k {
            let (template, score) = hits
                .get(rank)
                .map_or((-1, f32::NAN), |h| (h.template.0, h.score));
            templates
                .write_all(&template.to_le_bytes())
                .map_err(io_error(&templates_path))?;
            scores
                .write_all(&score.to_le_bytes())
                .map_err(io_error(&scores_path))?;
        }
    }
    templates.flush().map_err(io_error(&templates_path))?;
    scores.flush().map_err(io_error(&scores_path))?;

    let meta_path = dir.join("meta.json");
    let meta = serde_json::json!({
        "rows": config.rows,
        "dimension": config.dimension,
        "queries": config.queries,
        "k": config.k,
        "format": "little-endian f32 rows.f32 / queries.f32 / truth_scores.f32, i64 truth_templates.i64",
    });
    std::fs::write(&meta_path, meta.to_string()).map_err(io_error(&meta_path))
}

/// Streams a `buffer_bytes` buffer through `threads` threads summing it, best of `repeats`:
/// the ceiling for a scan that reads every row once per query.
pub fn measure_read_bandwidth(
    buffer_bytes: usize,
    threads: usize,
    repeats: usize,
) -> Result<BandwidthFigure, BenchError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|error| BenchError::ThreadPool(error.to_string()))?;
    let threads = pool.current_num_threads();
    let words = (buffer_bytes / 8).max(8);
    let buffer: Vec<u64> = (0..words as u64).collect();
    let chunk_words = words.div_ceil(threads * 4);
    let mut best_seconds = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let started = Instant::now();
        let total: u64 = pool.install(|| {
            buffer
                .par_chunks(chunk_words)
                .map(sum_words)
                .reduce(|| 0, u64::wrapping_add)
        });
        std::hint::black_box(total);
        best_seconds = best_seconds.min(started.elapsed().as_secs_f64());
    }
    Ok(BandwidthFigure {
        buffer_bytes: words * 8,
        threads,
        gigabytes_per_second: (words * 8) as f64 / best_seconds / 1e9,
    })
}

/// Eight independent lanes so the loop vectorises and is limited by memory, not by additions.
fn sum_words(words: &[u64]) -> u64 {
    let mut lanes = [0u64; 8];
    let mut chunks = words.chunks_exact(8);
    for chunk in &mut chunks {
        for lane in 0..8 {
            lanes[lane] = lanes[lane].wrapping_add(chunk[lane]);
        }
    }
    let rest = chunks
        .remainder()
        .iter()
        .fold(0u64, |sum, word| sum.wrapping_add(*word));
    lanes.iter().fold(rest, |sum, lane| sum.wrapping_add(*lane))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_exact_reports_every_mode_and_dumps_consistent_files() {
        let dir = std::env::temp_dir().join(format!("vigil-index-bench-{}", std::process::id()));
        let config = ExactBenchConfig {
            rows: 3000,
            dimension: 24,
            queries: 40,
            k: 5,
            threads: 2,
            batch_sizes: vec![8, 64],
            dump_dir: Some(dir.clone()),
        };
        let figures = run_exact(&config).unwrap();
        assert_eq!(figures.len(), 3);
        assert_eq!(figures[0].mode, BenchMode::Single);
        assert_eq!((figures[1].mode, figures[1].batch), (BenchMode::Batch, 8));
        assert!(figures
            .iter()
            .all(|f| f.queries_per_second > 0.0 && f.threads == 2));
        assert!(figures.iter().all(|f| f.top1_agreement_with_single == 1.0));
        let rows = std::fs::read(dir.join("rows.f32")).unwrap();
        assert_eq!(rows.len(), 3000 * 24 * 4);
        let truth = std::fs::read(dir.join("truth_templates.i64")).unwrap();
        assert_eq!(truth.len(), 40 * 5 * 8);
        // the dumped top-1 of query 0 really is the best row of the dumped data
        let row_values: Vec<f32> = rows
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let query = std::fs::read(dir.join("queries.f32")).unwrap();
        let query: Vec<f32> = query[..24 * 4]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let best = row_values
            .chunks_exact(24)
            .map(|row| row.iter().zip(&query).map(|(a, b)| a * b).sum::<f32>())
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(row, _)| row as i64)
            .unwrap();
        let mut top1 = [0u8; 8];
        top1.copy_from_slice(&truth[..8]);
        assert_eq!(i64::from_le_bytes(top1), best);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn invalid_configuration_is_reported_not_run() {
        let config = ExactBenchConfig {
            rows: 0,
            ..ExactBenchConfig::default()
        };
        assert!(matches!(run_exact(&config), Err(BenchError::Config(_))));
        let config = ExactBenchConfig {
            batch_sizes: vec![0],
            ..ExactBenchConfig::default()
        };
        assert!(matches!(run_exact(&config), Err(BenchError::Config(_))));
    }

    #[test]
    fn bandwidth_probe_sums_the_whole_buffer() {
        assert_eq!(sum_words(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), 55);
        let figure = measure_read_bandwidth(1 << 20, 2, 2).unwrap();
        assert_eq!(figure.buffer_bytes, 1 << 20);
        assert!(figure.gigabytes_per_second > 0.0);
    }
}
