//! Segmented-index benchmark; prints JSON. Example:
//! `cargo run --release -p vigil-bench --example bench_index -- --rows 1000000 --threads 2 --dump target/bench-dump`
//! then `scripts/bench/index_peers.py target/bench-dump --threads 2` for faiss and hnswlib
//! (`scripts/bench/index.sh` runs both).

use std::path::PathBuf;
use std::process::ExitCode;
use vigil_bench::exact::measure_read_bandwidth;
use vigil_bench::segmented::{run_index_bench, IndexBenchConfig};

const USAGE: &str = "bench_index [--rows N] [--queries Q] [--threads T] [--k K] [--dir DIR] \
                     [--dump DIR] [--mated DIR] [--rows-file F] [--lists L] [--sub-quantizers M] \
                     [--nprobe 8,16,32] [--rerank R] [--int8-rerank-factor F] \
                     [--match-threshold COSINE]";

fn number(flag: &str, value: Option<String>) -> Result<usize, String> {
    let value = value.ok_or(format!("{flag} needs a value"))?;
    value
        .parse()
        .map_err(|_| format!("{flag}: {value} is not a whole number"))
}

fn parse() -> Result<IndexBenchConfig, String> {
    let mut config = IndexBenchConfig::default();
    let mut arguments = std::env::args().skip(1);
    while let Some(flag) = arguments.next() {
        match flag.as_str() {
            "--rows" => config.rows = number(&flag, arguments.next())?,
            "--queries" => config.queries = number(&flag, arguments.next())?,
            "--threads" => config.threads = number(&flag, arguments.next())?,
            "--k" => config.k = number(&flag, arguments.next())?,
            "--lists" => config.lists = Some(number(&flag, arguments.next())?),
            "--sub-quantizers" => config.sub_quantizers = number(&flag, arguments.next())?,
            "--rerank" => config.rerank = number(&flag, arguments.next())?,
            "--int8-rerank-factor" => config.int8_rerank_factor = number(&flag, arguments.next())?,
            "--match-threshold" => {
                let value = arguments.next().ok_or("--match-threshold needs a cosine")?;
                config.match_threshold = value
                    .parse()
                    .map_err(|_| format!("--match-threshold: {value} is not a number"))?;
            }
            "--nprobe" => {
                let list = arguments.next().ok_or("--nprobe needs a value")?;
                config.nprobes = list
                    .split(',')
                    .filter(|part| !part.is_empty())
                    .map(|part| number(&flag, Some(part.to_string())))
                    .collect::<Result<_, _>>()?;
            }
            "--dir" => {
                config.index_dir = PathBuf::from(arguments.next().ok_or("--dir needs a folder")?)
            }
            "--dump" => {
                config.dump_dir = Some(PathBuf::from(
                    arguments.next().ok_or("--dump needs a folder")?,
                ))
            }
            "--rows-file" => {
                config.rows_file = Some(PathBuf::from(
                    arguments.next().ok_or("--rows-file needs a file")?,
                ))
            }
            "--mated" => {
                config.mated_dir = Some(PathBuf::from(
                    arguments.next().ok_or("--mated needs a folder")?,
                ))
            }
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    Ok(config)
}

fn main() -> ExitCode {
    let config = match parse() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let bandwidth = match measure_read_bandwidth(1 << 30, config.threads, 5) {
        Ok(figure) => figure,
        Err(error) => {
            eprintln!("bandwidth probe failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    match run_index_bench(&config, &mut |line| eprintln!("vigil: {line}")) {
        Ok(report) => {
            let json = serde_json::json!({
                "engine": "vigil-index segmented",
                "config": config,
                "read_bandwidth": bandwidth,
                "report": report,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("benchmark failed: {error}");
            ExitCode::FAILURE
        }
    }
}
