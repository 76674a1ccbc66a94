//! `vigil bench search`: exact 1:N search queries/s on synthetic data, measured in the same run
//! as faiss-cpu `IndexFlatIP` (the Python peer) on the same rows, queries and threads.

use crate::peer::run_peer;
use crate::BenchContext;
use std::path::Path;

pub fn run(
    context: &BenchContext<'_>,
    rows: &[usize],
    threads: usize,
    queries: usize,
    k: usize,
    no_peer: bool,
) -> anyhow::Result<()> {
    let scratch = context.config.data_dir.join("cache").join("bench-search");
    for &n in rows {
        let dump: Option<&Path> = if no_peer { None } else { Some(&scratch) };
        let config = crate::exact::ExactBenchConfig {
            rows: n,
            dimension: 512,
            queries,
            k,
            threads,
            batch_sizes: vec![64, 256],
            dump_dir: dump.map(Path::to_path_buf),
        };
        let ours = crate::exact::run_exact(&config)?;
        println!("{n} rows × 512, k={k}, {threads} threads, {queries} queries");
        let peer = if no_peer {
            None
        } else {
            Some(run_peer(
                context,
                "scripts/bench/faiss_flat.py",
                &[
                    scratch.display().to_string(),
                    "--threads".into(),
                    threads.to_string(),
                    "--k".into(),
                    k.to_string(),
                    "--batch-sizes".into(),
                    "64,256".into(),
                ],
            )?)
        };
        let _ = std::fs::remove_dir_all(&scratch);
        println!(
            "  {:<12} {:>14} {:>14} {:>8} {:>10}",
            "mode", "vigil q/s", "faiss q/s", "ratio", "vigil GB/s"
        );
        for figure in &ours {
            let theirs = peer.as_ref().and_then(|p| {
                p["figures"].as_array()?.iter().find(|f| {
                    f["batch"].as_u64() == Some(figure.batch as u64)
                        && (f["mode"] == "single") == (figure.batch == 1)
                })
            });
            let faiss = theirs.and_then(|f| f["queries_per_second"].as_f64());
            println!(
                "  {:<12} {:>14.1} {:>14} {:>8} {:>10.1}",
                if figure.batch == 1 {
                    "single".to_string()
                } else {
                    format!("batch {}", figure.batch)
                },
                figure.queries_per_second,
                faiss.map_or("-".into(), |f| format!("{f:.1}")),
                faiss.map_or("-".into(), |f| format!(
                    "{:.2}x",
                    figure.queries_per_second / f
                )),
                figure.scanned_gigabytes_per_second
            );
        }
        if let Some(peer) = &peer {
            println!("  peer: {}", peer["engine"].as_str().unwrap_or("faiss"));
        }
    }
    Ok(())
}
