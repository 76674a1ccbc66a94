//! Benchmark harnesses, kept out of the product crates: the `vigil bench` verbs (photo
//! pipeline, exact search, live video, alerts), each measured in the same run as its peer, and
//! the index benchmarks on synthetic data with the scale simulation (`examples/bench_exact.rs`,
//! `examples/bench_index.rs`, `examples/shard_sim.rs`, run by `scripts/bench/*.sh`).
//!
//! The harnesses use only the product crates' public APIs. What only the `vigil` binary knows
//! (its loaded configuration, how it builds analyzers and the service, where the shared data
//! are, its webhook waker) comes in a [`BenchContext`] that the binary fills.
//!
//! `anyhow` here: the `vigil bench` runners are a harness at the binary's edge, not a product
//! library (the index harnesses keep a typed [`BenchError`]).

pub mod alerts;
pub mod exact;
pub mod live;
mod peer;
pub mod pipeline;
pub mod search;
pub mod segmented;
pub mod synthetic;
pub mod video;

use clap::Subcommand;
use std::path::PathBuf;
use std::sync::Arc;
use vigil_base::config::VigilConfig;
use vigil_index::IndexError;
use vigil_infer::FaceAnalyzer;
use vigil_notify::DispatcherWaker;
use vigil_pipeline::video::VideoAnalysis;
use vigil_pipeline::FaceService;
use vigil_store::FaceStore;

/// What a benchmark needs from the `vigil` binary, filled by it.
pub struct BenchContext<'a> {
    /// The configuration `vigil` loaded (file, then `VIGIL_*`).
    pub config: VigilConfig,
    /// Cores this process may use: `workers` resolve against it, and CPU figures are in
    /// percent of one of them.
    pub cores: usize,
    /// The repository root (`scripts/dev` and the Python peers); `None` when it cannot be
    /// found, which only a benchmark run with its peer refuses.
    pub repository_root: Option<PathBuf>,
    /// The shared data folder (`../shared` next to the repository, or `VIGIL_SHARED_DIR`),
    /// looked up only by a benchmark that reads LFW without an explicit folder.
    pub shared_dir: &'a dyn Fn() -> anyhow::Result<PathBuf>,
    /// An analyzer for this configuration, loaded as `vigil` loads one (threads resolved
    /// against the cores, the models folder checked).
    pub analyzer_for: &'a dyn Fn(&VigilConfig) -> anyhow::Result<FaceAnalyzer>,
    /// The service as `vigil serve` builds it (its workers' analyzers, the recognizer's
    /// calibration, the matching settings), over the given store.
    pub service_on: &'a dyn Fn(Arc<dyn FaceStore>) -> anyhow::Result<FaceService>,
    /// Starts `vigil serve`'s webhook waker: wakes the dispatcher on each alert.
    pub spawn_webhook_waker: &'a dyn Fn(&VideoAnalysis, DispatcherWaker),
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Photo pipeline images/s and per-stage ms on LFW images vs Python onnxruntime + OpenCV.
    Pipeline {
        #[arg(long, default_value_t = 1000)]
        images: usize,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Images processed side by side, each worker with threads / workers intra-op threads
        /// (0 = one worker per thread, as `vigil serve` runs by default).
        #[arg(long, default_value_t = 0)]
        workers: usize,
        /// Skip the Python peer.
        #[arg(long)]
        no_peer: bool,
    },
    /// Exact 1:N search queries/s vs faiss-cpu IndexFlatIP on the same data and threads.
    Search {
        #[arg(long, value_delimiter = ',', default_values_t = [100_000usize, 1_000_000])]
        rows: Vec<usize>,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 200)]
        queries: usize,
        #[arg(long, default_value_t = 10)]
        k: usize,
        #[arg(long)]
        no_peer: bool,
    },
    /// Live cameras: how many 720p streams keep up at 10 analysed fps with motion gating on
    /// and off, CPU per camera vs ffmpeg decoding alone, sighting latency.
    Video(video::VideoBenchArgs),
    /// Alert latency: sighting → alert committed, on the SSE stream and at a webhook receiver,
    /// and the sightings per second alerting keeps up with.
    Alerts(alerts::AlertBenchArgs),
    /// What one viewer of a camera's live picture costs: frame copy and draw + JPEG encode per
    /// picture vs OpenCV's imencode on the same frames.
    Live(live::LiveBenchArgs),
}

/// Runs one `vigil bench` verb.
pub fn run(context: &BenchContext<'_>, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Pipeline {
            images,
            threads,
            workers,
            no_peer,
        } => pipeline::run(context, images, threads, workers, no_peer),
        BenchCommand::Search {
            rows,
            threads,
            queries,
            k,
            no_peer,
        } => search::run(context, &rows, threads, queries, k, no_peer),
        BenchCommand::Video(args) => video::run(context, args),
        BenchCommand::Alerts(args) => alerts::run(context, args),
        BenchCommand::Live(args) => live::run(context, args),
    }
}

/// Errors of the index harnesses (synthetic data, exact and segmented index benchmarks).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("benchmark configuration is invalid: {0}")]
    Config(String),
    #[error("cannot write benchmark data to {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the search thread pool: {0}")]
    ThreadPool(String),
    #[error(transparent)]
    Index(#[from] IndexError),
}
