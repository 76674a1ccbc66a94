//! Exact-search benchmark; prints JSON. Example:
//! `cargo run --release -p vigil-bench --example bench_exact -- --rows 100000 --threads 2 --dump /tmp/vigil-bench`
//! then `python scripts/bench/faiss_flat.py /tmp/vigil-bench --threads 2` for the faiss peer.

use std::path::PathBuf;
use std::process::ExitCode;
use vigil_bench::exact::{measure_read_bandwidth, run_exact, ExactBenchConfig};

const USAGE: &str = "bench_exact [--rows N] [--dimension D] [--queries Q] [--threads T] [--k K] \
                     [--batch 64,256] [--dump DIR] [--bandwidth-mib MIB]";

fn parse_number(flag: &str, value: Option<String>) -> Result<usize, String> {
    let value = value.ok_or(format!("{flag} needs a value"))?;
    value
        .parse()
        .map_err(|_| format!("{flag}: {value} is not a whole number"))
}

fn parse() -> Result<(ExactBenchConfig, Option<usize>), String> {
    let mut config = ExactBenchConfig::default();
    let mut bandwidth_mib = None;
    let mut arguments = std::env::args().skip(1);
    while let Some(flag) = arguments.next() {
        match flag.as_str() {
            "--rows" => config.rows = parse_number(&flag, arguments.next())?,
            "--dimension" => config.dimension = parse_number(&flag, arguments.next())?,
            "--queries" => config.queries = parse_number(&flag, arguments.next())?,
            "--threads" => config.threads = parse_number(&flag, arguments.next())?,
            "--k" => config.k = parse_number(&flag, arguments.next())?,
            "--batch" => {
                let list = arguments.next().ok_or("--batch needs a value")?;
                config.batch_sizes = list
                    .split(',')
                    .filter(|part| !part.is_empty())
                    .map(|part| parse_number(&flag, Some(part.to_string())))
                    .collect::<Result<_, _>>()?;
            }
            "--dump" => {
                config.dump_dir = Some(PathBuf::from(
                    arguments.next().ok_or("--dump needs a folder")?,
                ))
            }
            "--bandwidth-mib" => bandwidth_mib = Some(parse_number(&flag, arguments.next())?),
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    Ok((config, bandwidth_mib))
}

fn main() -> ExitCode {
    let (config, bandwidth_mib) = match parse() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let bandwidth =
        match bandwidth_mib.map(|mib| measure_read_bandwidth(mib << 20, config.threads, 5)) {
            Some(Err(error)) => {
                eprintln!("bandwidth probe failed: {error}");
                return ExitCode::FAILURE;
            }
            other => other.and_then(Result::ok),
        };
    match run_exact(&config) {
        Ok(figures) => {
            let report = serde_json::json!({
                "engine": "vigil-index exact",
                "config": config,
                "figures": figures,
                "read_bandwidth": bandwidth,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("benchmark failed: {error}");
            ExitCode::FAILURE
        }
    }
}
