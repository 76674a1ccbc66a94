//! `vigil bench alerts`: how long from a finished sighting to its alert on the SSE stream and at
//! a webhook receiver, and how many sightings per second alerting keeps up with.
//!
//! Real models embed unseen LFW photos of people on a watchlist (and of people on none); each
//! becomes a sighting that goes through the same calls as the camera path (store the sighting,
//! `VideoAnalysis::raise_alerts`), with the webhook dispatcher and its waker running as in
//! `vigil serve`, delivering to a receiver on 127.0.0.1.

use crate::BenchContext;
use anyhow::{bail, Context as _};
use clap::Args;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vigil_audit::{Actor, AuditAction, NewAuditEntry, Outcome, Target};
use vigil_base::{CameraId, Embedding, SubjectId};
use vigil_pipeline::lfw::LfwDataset;
use vigil_pipeline::video::VideoAnalysis;
use vigil_pipeline::NamedImage;
use vigil_store::{NewSighting, NewWatchEntry, SqliteStore, SubjectRef, VideoStore};

#[derive(Args)]
pub struct AlertBenchArgs {
    /// People on the watchlist (LFW identities with the most photos, 2 photos enrolled each).
    #[arg(long, default_value_t = 100)]
    pub watched: usize,
    /// Sightings sent through alerting (about half of watched people, half of strangers).
    #[arg(long, default_value_t = 400)]
    pub sightings: usize,
    /// Sightings per second to send; 0 sends them as fast as alerting takes them.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    #[arg(long)]
    pub lfw: Option<std::path::PathBuf>,
    /// Leave the dispatcher to its idle poll (5 s) instead of waking it on each alert: the
    /// behaviour before the waker, for comparison.
    #[arg(long)]
    pub no_waker: bool,
}

type Arrivals = Arc<Mutex<HashMap<i64, Instant>>>;

fn note(action: AuditAction) -> NewAuditEntry {
    NewAuditEntry {
        actor: Actor {
            user_id: None,
            user_name: "bench".into(),
        },
        action,
        target: Target {
            kind: "bench".into(),
            id: String::new(),
        },
        case_ref: Some("BENCH".into()),
        reason: "alert latency benchmark".into(),
        request: serde_json::json!({}),
        probe_image: None,
        outcome: Outcome::success(""),
    }
}

/// A webhook receiver: records when each `alert.raised` arrives, answers 200.
fn spawn_receiver(arrivals: Arrivals) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let arrivals = arrivals.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let trimmed = line.trim_end();
                        if trimmed.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = trimmed.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let at = Instant::now();
                    if let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) {
                        if event["event"] == "alert.raised" {
                            if let Some(id) = event["alert"]["id"].as_i64() {
                                if let Ok(mut arrivals) = arrivals.lock() {
                                    arrivals.insert(id, at);
                                }
                            }
                        }
                    }
                    let mut writer = &stream;
                    if writer
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok(url)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(name: &str, mut values_ms: Vec<f64>) -> serde_json::Value {
    values_ms.sort_by(f64::total_cmp);
    let line = serde_json::json!({
        "stage": name,
        "count": values_ms.len(),
        "p50_ms": percentile(&values_ms, 50.0),
        "p95_ms": percentile(&values_ms, 95.0),
        "p99_ms": percentile(&values_ms, 99.0),
        "max_ms": values_ms.last().copied().unwrap_or(f64::NAN),
    });
    println!(
        "  {name:<34} n={:<5} p50 {:>8.1} ms  p95 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms",
        values_ms.len(),
        percentile(&values_ms, 50.0),
        percentile(&values_ms, 95.0),
        percentile(&values_ms, 99.0),
        values_ms.last().copied().unwrap_or(f64::NAN)
    );
    line
}

pub fn run(context: &BenchContext<'_>, args: AlertBenchArgs) -> anyhow::Result<()> {
    let lfw = match &args.lfw {
        Some(path) => path.clone(),
        None => (context.shared_dir)()?.join("data").join("lfw"),
    };
    let dataset = LfwDataset::new(lfw)?;
    let identities = dataset.identities()?;
    let mut ranked: Vec<_> = identities.iter().filter(|(_, p)| p.len() >= 3).collect();
    ranked.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    if ranked.len() < args.watched {
        bail!("LFW has only {} identities with 3 photos", ranked.len());
    }
    let watched = &ranked[..args.watched];
    let strangers: Vec<_> = identities.iter().filter(|(_, p)| p.len() == 1).collect();

    // A scratch database of its own, never the real gallery.
    let scratch = context.config.data_dir.join("bench-alerts");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let database = scratch.join("vigil.db");
    let store = Arc::new(SqliteStore::open(&database)?);
    let service = Arc::new((context.service_on)(store.clone())?);
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    };
    let day = 86_400_000;
    store.open_case(
        &vigil_store::NewCase {
            reference: "BENCH".into(),
            purpose: "alert latency benchmark".into(),
            legal_basis: "benchmark".into(),
            owner: "bench".into(),
            members: Vec::new(),
            expires_at_ms: now_ms() + day,
            evidence_retention_days: None,
        },
        &note(AuditAction::CaseOpen),
        now_ms(),
    )?;
    let list = store.create_watchlist(
        "bench",
        None,
        context.config.matching.false_match_rate,
        "bench",
        &note(AuditAction::WatchlistAdd),
        now_ms(),
    )?;

    // The watchlist: two photos per person; later photos are the unseen probes.
    let bar = indicatif::ProgressBar::new(watched.len() as u64);
    let mut probes: Vec<(bool, Embedding)> = Vec::new();
    for (name, photos) in watched {
        bar.inc(1);
        let read = |n: usize| -> anyhow::Result<NamedImage> {
            let path = dataset.path_of(&photos[n]);
            Ok(NamedImage {
                name: path.display().to_string(),
                bytes: std::fs::read(&path).with_context(|| path.display().to_string())?,
            })
        };
        let Ok(report) = service.enroll(
            SubjectRef::ByName(format!("watch: {name}")),
            None,
            &[read(0)?, read(1)?],
        ) else {
            continue; // a photo without a usable face: leave the person out
        };
        store.add_watch_entry(
            &NewWatchEntry {
                watchlist: list.id,
                subject: SubjectId(report.subject.id),
                subject_name: name.to_string(),
                legal_basis: "benchmark".into(),
                case_ref: "BENCH".into(),
                responsible: "bench".into(),
                expires_at_ms: now_ms() + day / 2,
                created_by: "bench".into(),
            },
            &note(AuditAction::WatchlistAdd),
            now_ms(),
        )?;
        for photo in photos.iter().skip(2).take(3) {
            if let Ok((_, embedding)) =
                service.probe_embedding(&std::fs::read(dataset.path_of(photo))?)
            {
                probes.push((true, embedding));
            }
        }
    }
    bar.finish_and_clear();
    for (_, photos) in strangers.iter().take(args.sightings / 2) {
        if let Ok((_, embedding)) =
            service.probe_embedding(&std::fs::read(dataset.path_of(&photos[0]))?)
        {
            probes.push((false, embedding));
        }
    }
    // Interleave watched people and strangers, deterministically.
    let (mut on_list, mut off_list): (Vec<_>, Vec<_>) = probes.into_iter().partition(|p| p.0);
    let mut sequence = Vec::new();
    while sequence.len() < args.sightings && (!on_list.is_empty() || !off_list.is_empty()) {
        if let Some(probe) = on_list.pop() {
            sequence.push(probe);
        }
        if let Some(probe) = off_list.pop() {
            sequence.push(probe);
        }
    }

    // Delivery as in `vigil serve`: the dispatcher and its waker; and an SSE-side subscriber.
    let webhook_arrivals: Arrivals = Arc::default();
    let url = spawn_receiver(webhook_arrivals.clone())?;
    // The receiver is on 127.0.0.1, which webhooks reach only when allowed (design 010).
    let webhook_targets = vigil_notify::TargetPolicy::allowing(["127.0.0.1"]);
    store.set_webhook_targets(webhook_targets.clone());
    store.create_webhook(
        &vigil_notify::NewSubscription {
            url,
            secret: vigil_notify::generate_secret()
                .map_err(|e| anyhow::anyhow!("drawing a webhook secret: {e}"))?,
            event_kinds: vec!["alert.raised".into()],
            enabled: true,
            description: "bench receiver".into(),
        },
        &note(AuditAction::ConfigChange),
        now_ms(),
    )?;
    let video_store: Arc<dyn VideoStore> = store.clone();
    let analysis = VideoAnalysis::new(
        service.clone(),
        video_store,
        VideoAnalysis::tracking_from_table(&Default::default())?,
        false,
        None,
    )?;
    let dispatcher = vigil_notify::Dispatcher::open(
        &database,
        vigil_notify::DispatcherOptions {
            targets: webhook_targets,
            ..Default::default()
        },
    )?
    .spawn()?;
    if !args.no_waker {
        (context.spawn_webhook_waker)(&analysis, dispatcher.waker());
    }
    let stream_arrivals: Arrivals = Arc::default();
    {
        let mut alerts = analysis.subscribe_alerts();
        let arrivals = stream_arrivals.clone();
        std::thread::spawn(move || {
            while let Ok(alert) = alerts.blocking_recv() {
                if let Ok(mut arrivals) = arrivals.lock() {
                    arrivals.insert(alert.id, Instant::now());
                }
            }
        });
    }

    println!(
        "vigil bench alerts: {} watched people ({} entries), {} sightings ({} of watched people), \
         rate {}, recognizer {}",
        watched.len(),
        store.active_watch_entries(now_ms())?.len(),
        sequence.len(),
        sequence.iter().filter(|p| p.0).count(),
        if args.rate > 0.0 {
            format!("{}/s", args.rate)
        } else {
            "flat out".into()
        },
        service.model()
    );
    let camera = CameraId::parse("bench")?;
    let mut sent: HashMap<i64, Instant> = HashMap::new();
    let mut raise_ms = Vec::new();
    let mut raised_on_list = 0usize;
    let mut raised_on_strangers = 0usize;
    let mut watched_sightings = 0usize;
    let start = Instant::now();
    for (n, (on_list, embedding)) in sequence.iter().enumerate() {
        if args.rate > 0.0 {
            let due = start + Duration::from_secs_f64(n as f64 / args.rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let t0 = Instant::now();
        let at = now_ms();
        let id = analysis.store().insert_sighting(&NewSighting {
            camera: camera.clone(),
            track: n as u64,
            started_at_ms: at - 2000,
            ended_at_ms: at,
            best_at_ms: at - 1000,
            observations: 20,
            end_reason: "lost".into(),
            quality: 0.9,
            detector_score: 0.9,
            bbox: [0.0, 0.0, 112.0, 112.0],
            frame_width: 1280,
            frame_height: 720,
            crop_jpeg: vec![0xff, 0xd8, 0xff, 0xd9],
            embeddings: vec![(embedding.clone(), 0.9)],
            trajectory: Vec::new(),
            candidates: Vec::new(),
        })?;
        let alerts = analysis.raise_alerts(id, &[embedding], at)?;
        raise_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        if *on_list {
            watched_sightings += 1;
            raised_on_list += usize::from(!alerts.is_empty());
        } else {
            raised_on_strangers += alerts.len();
        }
        for alert in alerts {
            sent.insert(alert.id, t0);
        }
    }
    let elapsed = start.elapsed();
    // Wait for the last deliveries.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let delivered = webhook_arrivals.lock().map(|a| a.len()).unwrap_or(0);
        if delivered >= sent.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(dispatcher);
    let _ = std::fs::remove_dir_all(&scratch);
    let latencies = |arrivals: &Arrivals| -> Vec<f64> {
        let arrivals = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
        sent.iter()
            .filter_map(|(id, t0)| arrivals.get(id).map(|at| at.duration_since(*t0)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect()
    };
    let throughput = sequence.len() as f64 / elapsed.as_secs_f64();
    println!(
        "  sent {} sightings in {:.2} s: {:.0} sightings/s; alerts on {}/{} watched people's \
         sightings, {} on strangers'",
        sequence.len(),
        elapsed.as_secs_f64(),
        throughput,
        raised_on_list,
        watched_sightings,
        raised_on_strangers
    );
    let stages = vec![
        summary("sighting → alert committed", raise_ms),
        summary(
            "sighting → alert on the SSE stream",
            latencies(&stream_arrivals),
        ),
        summary("sighting → webhook received", latencies(&webhook_arrivals)),
    ];
    let delivered = webhook_arrivals.lock().map(|a| a.len()).unwrap_or(0);
    if delivered < sent.len() {
        println!(
            "  {} of {} alerts not delivered within 30 s",
            sent.len() - delivered,
            sent.len()
        );
    }
    let report = serde_json::json!({
        "watched": watched.len(),
        "sightings": sequence.len(),
        "sightings_per_second": throughput,
        "alerts": sent.len(),
        "alerts_on_strangers": raised_on_strangers,
        "stages": stages,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
