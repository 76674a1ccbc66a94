//! Scale simulation: N local shard processes (this binary with `--serve`), each holding its
//! slice of generated data in a `SegmentedIndex`, and a coordinator that fans each query out
//! over TCP (127.0.0.1) and merges the shards' top-k. Prints one JSON line per
//! (shard count, rows per shard) with end-to-end latency percentiles, the slowest shard's own
//! search time, and the coordinator's fan-out + merge overhead. Example:
//! `cargo run --release -p vigil-bench --example shard_sim -- --shards 1,2,4 --rows-per-shard 100000`

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Instant;
use vigil_base::SubjectId;
use vigil_bench::synthetic::SyntheticVectors;
use vigil_index::shard::{
    merge_top_k, read_response, serve_connection, write_request, ShardRequest,
};
use vigil_index::{
    CameraId, EntryKind, EntryMeta, IvfPqParams, SearchMethod, SegmentedIndex, SegmentedOptions,
};

const DIMENSION: usize = 512;

struct Settings {
    shard_counts: Vec<usize>,
    rows_per_shard: Vec<usize>,
    queries: usize,
    k: usize,
    threads_per_shard: usize,
    method: SearchMethod,
    work_dir: PathBuf,
}

fn list(value: Option<String>, flag: &str) -> Result<Vec<usize>, String> {
    value
        .ok_or(format!("{flag} needs a value"))?
        .split(',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse()
                .map_err(|_| format!("{flag}: {part} is not a number"))
        })
        .collect()
}

fn method(name: &str) -> Result<SearchMethod, String> {
    match name {
        "exact" => Ok(SearchMethod::Exact),
        "int8" => Ok(SearchMethod::Int8 { rerank_factor: 4 }),
        "ann" => Ok(SearchMethod::Ann {
            nprobe: 16,
            rerank: 100,
        }),
        other => Err(format!("unknown method {other} (exact, int8, ann)")),
    }
}

fn options(rows: usize, threads: usize, method: SearchMethod) -> SegmentedOptions {
    SegmentedOptions {
        seal_rows: rows,
        segment_span_ms: i64::MAX,
        ann_min_rows: if matches!(method, SearchMethod::Ann { .. }) {
            1
        } else {
            usize::MAX
        },
        ann_params: Some(IvfPqParams {
            sub_quantizers: 64,
            ..IvfPqParams::for_rows(rows, DIMENSION)
        }),
        compact_dead_fraction: 0.2,
        threads,
    }
}

/// Shard mode: build rows `first..first + rows` of a gallery of `total` rows, listen, print
/// the port, answer one coordinator connection.
fn serve(arguments: &[String]) -> Result<(), String> {
    let value = |flag: &str| -> Result<usize, String> {
        let at = arguments
            .iter()
            .position(|a| a == flag)
            .ok_or(format!("missing {flag}"))?;
        arguments
            .get(at + 1)
            .and_then(|v| v.parse().ok())
            .ok_or(format!("{flag} needs a number"))
    };
    let (first, rows, total, threads) = (
        value("--first")?,
        value("--rows")?,
        value("--total")?,
        value("--threads")?,
    );
    let method_name = arguments
        .iter()
        .position(|a| a == "--method")
        .and_then(|at| arguments.get(at + 1))
        .ok_or("missing --method")?;
    let method = method(method_name)?;
    let dir = arguments
        .iter()
        .position(|a| a == "--dir")
        .and_then(|at| arguments.get(at + 1))
        .ok_or("missing --dir")?;
    let synthetic = SyntheticVectors::new(DIMENSION, total);
    let entries = (first..first + rows).filter_map(|row| {
        let values = synthetic.row(row).ok()?.values().to_vec();
        let meta = EntryMeta {
            id: row as u64,
            kind: EntryKind::SIGHTING,
            subject: Some(SubjectId(synthetic.subject_of(row).0)),
            camera: Some(CameraId((row % 64) as u64)),
            timestamp_ms: row as i64,
        };
        Some((meta, values))
    });
    let index = SegmentedIndex::rebuild(
        &PathBuf::from(dir),
        synthetic.model().clone(),
        DIMENSION,
        options(rows, threads, method),
        entries,
        &mut |_| {},
    )
    .map_err(|error| error.to_string())?;
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|error| error.to_string())?;
    let port = listener
        .local_addr()
        .map_err(|error| error.to_string())?
        .port();
    println!("LISTENING {port}");
    let (mut stream, _) = listener.accept().map_err(|error| error.to_string())?;
    stream
        .set_nodelay(true)
        .map_err(|error| error.to_string())?;
    serve_connection(&mut stream, &index).map_err(|error| error.to_string())
}

struct ShardProcess {
    child: Child,
    stream: TcpStream,
}

impl Drop for ShardProcess {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        let _ = self.child.wait();
    }
}

fn start_shards(
    settings: &Settings,
    shards: usize,
    rows: usize,
) -> Result<Vec<ShardProcess>, String> {
    let executable = std::env::current_exe().map_err(|error| error.to_string())?;
    let method_name = match settings.method {
        SearchMethod::Exact => "exact",
        SearchMethod::Int8 { .. } => "int8",
        SearchMethod::Ann { .. } => "ann",
    };
    let mut children = Vec::new();
    for shard in 0..shards {
        let dir = settings.work_dir.join(format!("shard-{shard}"));
        let child = Command::new(&executable)
            .args(["--serve", "--method", method_name])
            .args([
                "--first",
                &(shard * rows).to_string(),
                "--rows",
                &rows.to_string(),
            ])
            .args(["--total", &(shards * rows).to_string()])
            .args(["--threads", &settings.threads_per_shard.to_string()])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|error| error.to_string())?;
        children.push(child);
    }
    let mut processes = Vec::new();
    for mut child in children {
        let stdout = child.stdout.take().ok_or("no shard stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|error| error.to_string())?;
        let port: u16 = line
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|port| port.parse().ok())
            .ok_or(format!("shard said {line:?}"))?;
        let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|error| error.to_string())?;
        stream
            .set_nodelay(true)
            .map_err(|error| error.to_string())?;
        processes.push(ShardProcess { child, stream });
    }
    Ok(processes)
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

fn coordinate(
    settings: &Settings,
    shards: usize,
    rows: usize,
) -> Result<serde_json::Value, String> {
    let started = Instant::now();
    let mut processes = start_shards(settings, shards, rows)?;
    let build_seconds = started.elapsed().as_secs_f64();
    let synthetic = SyntheticVectors::new(DIMENSION, shards * rows);
    let mut latencies_ms = Vec::new();
    let mut slowest_shard_ms = Vec::new();
    for query in 0..settings.queries + 1 {
        let values = synthetic
            .query(query)
            .map_err(|e| e.to_string())?
            .values()
            .to_vec();
        let request = ShardRequest {
            k: settings.k as u32,
            method: settings.method,
            query: values,
        };
        let sent = Instant::now();
        for process in &mut processes {
            write_request(&mut process.stream, &request).map_err(|e| e.to_string())?;
        }
        let mut hits = Vec::with_capacity(shards);
        let mut slowest = 0u64;
        for process in &mut processes {
            let response = read_response(&mut process.stream).map_err(|e| e.to_string())?;
            slowest = slowest.max(response.search_micros);
            hits.push(response.hits);
        }
        let merged = merge_top_k(&hits, settings.k);
        std::hint::black_box(merged);
        if query > 0 {
            // query 0 warms the shards up
            latencies_ms.push(sent.elapsed().as_secs_f64() * 1e3);
            slowest_shard_ms.push(slowest as f64 / 1e3);
        }
    }
    drop(processes);
    let mut sorted = latencies_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let overhead: Vec<f64> = latencies_ms
        .iter()
        .zip(&slowest_shard_ms)
        .map(|(total, shard)| total - shard)
        .collect();
    Ok(serde_json::json!({
        "shards": shards,
        "rows_per_shard": rows,
        "total_rows": shards * rows,
        "build_seconds": build_seconds,
        "p50_ms": percentile(&sorted, 0.5),
        "p95_ms": percentile(&sorted, 0.95),
        "p99_ms": percentile(&sorted, 0.99),
        "mean_slowest_shard_search_ms": mean(&slowest_shard_ms),
        "mean_fanout_merge_overhead_ms": mean(&overhead),
    }))
}

fn parse(arguments: &[String]) -> Result<Settings, String> {
    let mut settings = Settings {
        shard_counts: vec![1, 2, 4],
        rows_per_shard: vec![100_000],
        queries: 200,
        k: 10,
        threads_per_shard: 1,
        method: SearchMethod::Int8 { rerank_factor: 4 },
        work_dir: std::env::temp_dir().join("vigil-shard-sim"),
    };
    let mut iterator = arguments.iter().cloned();
    while let Some(flag) = iterator.next() {
        match flag.as_str() {
            "--shards" => settings.shard_counts = list(iterator.next(), &flag)?,
            "--rows-per-shard" => settings.rows_per_shard = list(iterator.next(), &flag)?,
            "--queries" => {
                settings.queries = *list(iterator.next(), &flag)?.first().ok_or("--queries")?
            }
            "--threads-per-shard" => {
                settings.threads_per_shard = *list(iterator.next(), &flag)?
                    .first()
                    .ok_or("--threads-per-shard")?
            }
            "--method" => {
                settings.method = method(&iterator.next().ok_or("--method needs a value")?)?
            }
            "--work-dir" => {
                settings.work_dir =
                    PathBuf::from(iterator.next().ok_or("--work-dir needs a folder")?)
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if settings.queries == 0
        || settings.shard_counts.contains(&0)
        || settings.rows_per_shard.contains(&0)
    {
        return Err("queries, shard counts and rows must be positive".into());
    }
    Ok(settings)
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if arguments.first().map(String::as_str) == Some("--serve") {
        return match serve(&arguments) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("shard: {message}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match parse(&arguments) {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    for &rows in &settings.rows_per_shard {
        for &shards in &settings.shard_counts {
            match coordinate(&settings, shards, rows) {
                Ok(line) => println!("{line}"),
                Err(message) => {
                    eprintln!("simulation failed: {message}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&settings.work_dir);
    ExitCode::SUCCESS
}
