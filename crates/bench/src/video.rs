//! `vigil bench video`: how many live 720p cameras this machine analyses at 10 fps, with the
//! motion gate on and off; the CPU each camera costs against ffmpeg decoding the same stream
//! alone (measured in the same run); and how long a sighting takes to be published.
//!
//! The source is a composed test video (LFW faces crossing a 1280×720 frame, re-timed to a
//! camera's frame rate) served over RTSP by GStreamer's server as it is in the file, so the
//! server only packetises: the machine's CPU goes to what is measured, not to encoding. Each
//! camera opens its own session, cameras joining a little apart so their scenes are out of
//! step, as real cameras are. The pipeline runs in this process exactly as `vigil serve`
//! runs it (FaceService with the configured analyzers, VideoAnalysis, CameraManager).

mod cpu;
mod judge;

use crate::BenchContext;
use anyhow::{bail, Context as _};
use cpu::{child_pids, cpu_between, load_average, wait_for_quiet, CpuSnapshot, CpuUse};
use judge::{judge, Judgement};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::TryRecvError;
use vigil_base::{CameraConfig, CameraId};
use vigil_ingest::{CameraManager, CameraStatus};
use vigil_pipeline::video::{SightingView, VideoAnalysis};
use vigil_pipeline::NamedImage;
use vigil_store::{SqliteStore, SubjectRef, VideoStore};
use vigil_testbed::lfw_video::{self, Scene};
use vigil_testbed::RtspServer;

/// A configuration keeps up when fewer than this fraction of decoded frames are dropped...
const MAX_DROP_FRACTION: f64 = 0.05;
/// ...the decoders deliver at least this fraction of the requested rate...
const MIN_DECODED_FRACTION: f64 = 0.95;
/// ...and the machine is not pegged (busy fraction of all cores).
const MAX_MACHINE_BUSY: f64 = 0.95;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GatingChoice {
    On,
    Off,
    Both,
}

#[derive(clap::Args)]
pub struct VideoBenchArgs {
    /// Camera counts to try, in order; each gating mode stops after the first count it cannot
    /// keep up with.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2, 4, 6, 8, 10, 12, 16])]
    pub cameras: Vec<usize>,
    /// Measured seconds per configuration, after the warm-up.
    #[arg(long, default_value_t = 40)]
    pub seconds: u64,
    /// Seconds after the last camera joined before measuring.
    #[arg(long, default_value_t = 8)]
    pub warmup: u64,
    /// Analysed frames per second per camera.
    #[arg(long, default_value_t = 10.0)]
    pub fps: f32,
    /// Analysis width (the source is 1280×720).
    #[arg(long, default_value_t = 1280)]
    pub width: u32,
    /// Frame rate of the camera stream.
    #[arg(long, default_value_t = 25)]
    pub source_fps: u32,
    /// Seconds of empty frame before each person crosses (0.5 = faces on screen 80 % of the
    /// time; larger is closer to a quiet corridor).
    #[arg(long, default_value_t = 0.5)]
    pub gap_seconds: f32,
    #[arg(long, value_enum, default_value_t = GatingChoice::Both)]
    pub gating: GatingChoice,
    /// ffmpeg processes decoding the stream alone, side by side, for the peer figure.
    #[arg(long, default_value_t = 2)]
    pub peer_streams: usize,
    /// Before each configuration, wait (up to --quiet-wait seconds; 0 = start at once) until
    /// other processes use less than this many cores.
    #[arg(long, default_value_t = 0.25)]
    pub max_foreign_cores: f64,
    #[arg(long, default_value_t = 240)]
    pub quiet_wait: u64,
    /// Measure every count even after one did not keep up.
    #[arg(long)]
    pub no_stop: bool,
    /// LFW deep-funneled folder (default: ../shared/data/lfw/lfw-deepfunneled).
    #[arg(long)]
    pub lfw: Option<PathBuf>,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(context: &BenchContext<'_>, args: VideoBenchArgs) -> anyhow::Result<()> {
    if args.cameras.is_empty() || args.cameras.contains(&0) {
        bail!("--cameras needs counts of at least 1");
    }
    if args.fps.is_nan() || args.fps <= 0.0 || args.seconds == 0 || args.source_fps == 0 {
        bail!("--fps, --seconds and --source-fps must be positive");
    }
    let lfw = match &args.lfw {
        Some(path) => path.clone(),
        None => (context.shared_dir)()?.join("data/lfw/lfw-deepfunneled"),
    };
    let scratch = Scratch::new()?;

    // The stream: the standard scene re-timed, then repeated to outlast every session.
    let scene = retimed_scene(&lfw, args.source_fps, args.gap_seconds)?;
    let scene_seconds = scene.duration_seconds();
    let people_per_loop = scene.appearances.len();
    let once = scratch.path.join("scene.mp4");
    lfw_video::compose(&scene, &once).context("composing the test video")?;
    let stagger = stagger_seconds(scene_seconds, *args.cameras.iter().max().unwrap_or(&1));
    let session_seconds = stagger * 16.0 + (args.warmup + args.seconds) as f64 + 30.0;
    let repeats = (session_seconds / scene_seconds).ceil().max(1.0) as u32;
    let video = scratch.path.join("stream.mp4");
    repeat_video(&context.config.video.ffmpeg, &once, &video, repeats)?;
    let server = RtspServer::start(&[("/cam", video.as_path())], false)
        .context("starting the RTSP server (scripts/testbed/rtsp_server.py)")?;
    let url = server.url("/cam");
    let server_pid = child_pids()
        .into_iter()
        .find(|(_, comm)| comm != "ffmpeg")
        .map(|(pid, _)| pid);

    // The service as `vigil serve` builds it, over a scratch database with the scene's
    // people enrolled, so sightings are matched as in production.
    let store = Arc::new(SqliteStore::open(scratch.path.join("vigil.db"))?);
    let service = Arc::new((context.service_on)(store.clone())?);
    enrol_scene_people(&service, &lfw, &scene)?;
    service
        .warm_up(args.width, args.width * 9 / 16)
        .context("running the models once")?;
    let tracking = VideoAnalysis::tracking_from_table(&context.config.video.tracking)?;
    let max_age_ms = tracking.tracker.max_age_ms;

    let camera_template = CameraConfig {
        id: CameraId::parse("bench")?,
        url: url.clone(),
        analysis_fps: args.fps,
        analysis_width: Some(args.width),
        record: false,
        ..CameraConfig::default()
    };
    println!(
        "vigil bench video: {}×{} H.264 at {} fps over RTSP ({:.1} s scene, {} crossings, \
         {:.1} s empty before each), analysed at {} fps, width {}; video detector {} at {}, \
         recognizer {}, {} analyzer(s); {} s measured per configuration; tracker max_age {} ms",
        scene.width,
        scene.height,
        scene.fps,
        scene_seconds,
        people_per_loop,
        args.gap_seconds,
        args.fps,
        args.width,
        service.analyzer().video_detector().0,
        service.analyzer().video_detector().1,
        service.model(),
        context.config.resolved_workers(context.cores),
        args.seconds,
        max_age_ms
    );

    wait_for_quiet(
        args.max_foreign_cores,
        args.quiet_wait,
        server_pid,
        context.cores,
    );
    let peer = measure_peer(
        &context.config.video.ffmpeg,
        &camera_template,
        args.peer_streams.max(1),
        args.seconds,
        server_pid,
        context.cores,
    )?;
    println!(
        "ffmpeg alone: {} stream(s) decoding the same URL with vigil's arguments: {:.1} % of a \
         core per stream, {:.1} frames/s per stream (load {})",
        peer.streams, peer.cpu_per_stream, peer.fps_per_stream, peer.load
    );
    print_header();

    let modes: Vec<bool> = match args.gating {
        GatingChoice::On => vec![true],
        GatingChoice::Off => vec![false],
        GatingChoice::Both => vec![true, false],
    };
    let mut failed: HashMap<bool, bool> = HashMap::new();
    let mut runs = Vec::new();
    for &count in &args.cameras {
        for &gating in &modes {
            if !args.no_stop && failed.get(&gating).copied().unwrap_or(false) {
                continue;
            }
            wait_for_quiet(
                args.max_foreign_cores,
                args.quiet_wait,
                server_pid,
                context.cores,
            );
            let setup = RunSetup {
                context,
                service: &service,
                store: &store,
                camera: &camera_template,
                scratch: &scratch.path,
                server_pid,
                scene: &scene,
                stagger: stagger_seconds(scene_seconds, count),
                expected_per_camera: people_per_loop as f64 * args.seconds as f64 / scene_seconds,
                max_age_ms,
            };
            let mut result = measure(&setup, count, gating, &args)?;
            // someone else's build mid-measurement: wait for quiet and measure once more
            if result.cpu.foreign > 200.0 * args.max_foreign_cores {
                eprintln!(
                    "  other processes took {:.0} % of a core while measuring; once more",
                    result.cpu.foreign
                );
                wait_for_quiet(
                    args.max_foreign_cores,
                    args.quiet_wait,
                    server_pid,
                    context.cores,
                );
                result = measure(&setup, count, gating, &args)?;
            }
            print_row(&result, &peer);
            if !result.fits {
                failed.insert(gating, true);
            }
            runs.push(result);
        }
        if !args.no_stop
            && modes
                .iter()
                .all(|m| failed.get(m).copied().unwrap_or(false))
        {
            break;
        }
    }
    println!();
    for &gating in &modes {
        let best = runs
            .iter()
            .filter(|r| r.gating == gating && r.fits)
            .map(|r| r.cameras)
            .max();
        println!(
            "gating {}: {} camera(s) keep up",
            if gating { "on " } else { "off" },
            best.map_or("no".to_string(), |b| b.to_string())
        );
    }
    drop(server);
    if let Some(path) = &args.json {
        let report = serde_json::json!({
            "source": {
                "width": scene.width, "height": scene.height, "fps": scene.fps,
                "scene_seconds": scene_seconds, "crossings_per_scene": people_per_loop,
                "gap_seconds": args.gap_seconds, "transport": "rtsp/tcp, H.264 as in the file",
            },
            "analysis_fps": args.fps, "analysis_width": args.width, "seconds": args.seconds,
            "detector": service.analyzer().video_detector().0,
            "detector_input_pixels": service.analyzer().video_detector().1,
            "recognizer": service.model().to_string(),
            "workers": context.config.resolved_workers(context.cores),
            "cores": context.cores, "tracker_max_age_ms": max_age_ms,
            "ffmpeg_alone": peer.to_json(),
            "runs": runs.iter().map(|r| r.to_json(&peer)).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// A scratch folder removed when the benchmark ends, however it ends.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("vigil-bench-video-{}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The standard scene at `fps`, each crossing keeping its 2 s, `gap` seconds apart.
fn retimed_scene(lfw: &Path, fps: u32, gap: f32) -> anyhow::Result<Scene> {
    let mut scene = Scene::standard(lfw).context("building the LFW scene")?;
    let original = scene.fps as f32;
    let frames = |seconds: f32| (seconds * fps as f32).round() as u32;
    let mut t = gap.max(0.0);
    let mut index = 0;
    while index < scene.appearances.len() {
        // appearances that start together (the pair at the end) stay together
        let start = scene.appearances[index].start_frame;
        let group_end = scene.appearances[index..]
            .iter()
            .position(|a| a.start_frame != start)
            .map_or(scene.appearances.len(), |p| index + p);
        let mut longest = 0.0f32;
        for appearance in &mut scene.appearances[index..group_end] {
            let seconds = (appearance.end_frame - appearance.start_frame) as f32 / original;
            appearance.start_frame = frames(t);
            appearance.end_frame = frames(t + seconds);
            longest = longest.max(seconds);
        }
        t += longest + gap.max(0.0);
        index = group_end;
    }
    scene.fps = fps;
    scene.frame_count = frames(t);
    Ok(scene)
}

/// Cameras join this far apart, so their scenes are spread over one loop (at most 1.5 s).
fn stagger_seconds(scene_seconds: f64, cameras: usize) -> f64 {
    (scene_seconds / cameras.max(1) as f64).min(1.5)
}

/// `repeats` copies of `input` back to back, without re-encoding.
fn repeat_video(ffmpeg: &Path, input: &Path, output: &Path, repeats: u32) -> anyhow::Result<()> {
    let result = Command::new(ffmpeg)
        .args(["-v", "error", "-y", "-stream_loop"])
        .arg((repeats.saturating_sub(1)).to_string())
        .arg("-i")
        .arg(input)
        .args(["-c", "copy", "-movflags", "+faststart"])
        .arg(output)
        .output()
        .context("running ffmpeg to repeat the test video")?;
    if !result.status.success() {
        bail!(
            "ffmpeg could not repeat the test video: {}",
            String::from_utf8_lossy(&result.stderr)
        );
    }
    Ok(())
}

fn enrol_scene_people(
    service: &vigil_pipeline::FaceService,
    lfw: &Path,
    scene: &Scene,
) -> anyhow::Result<()> {
    // the scene's unenrolled person must match no one: that is judged too
    for person in scene
        .people()
        .into_iter()
        .filter(|p| !lfw_video::UNENROLLED_PEOPLE.contains(p))
    {
        // photos the scene does not show; some fail the quality gate (profile, blur), so
        // a few are tried, one enrolment each, until two are in
        let photos = [8, 4, 2, 1]
            .into_iter()
            .find_map(|count| lfw_video::enrolment_photos(lfw, scene, person, count).ok())
            .with_context(|| format!("no enrolment photo of {person}"))?;
        let mut enrolled = 0;
        for path in photos {
            let image = NamedImage {
                name: path.display().to_string(),
                bytes: std::fs::read(&path)
                    .with_context(|| format!("reading {}", path.display()))?,
            };
            let name = SubjectRef::ByName(person.replace('_', " "));
            if service.enroll(name, None, &[image]).is_ok() {
                enrolled += 1;
            }
            if enrolled == 2 {
                break;
            }
        }
        if enrolled == 0 {
            bail!("no photo of {person} passed the quality gate");
        }
    }
    Ok(())
}

// ---- the peer: ffmpeg decoding alone ----

struct PeerResult {
    streams: usize,
    cpu_per_stream: f64,
    fps_per_stream: f64,
    foreign: f64,
    load: String,
}

impl PeerResult {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "streams": self.streams, "cpu_percent_per_stream": self.cpu_per_stream,
            "frames_per_second_per_stream": self.fps_per_stream,
            "other_processes_percent": self.foreign, "load_average": self.load,
        })
    }
}

/// `streams` ffmpeg processes with exactly the decoder's arguments, their PPM output read and
/// discarded, measured for `seconds` after a short start.
fn measure_peer(
    ffmpeg: &Path,
    camera: &CameraConfig,
    streams: usize,
    seconds: u64,
    server_pid: Option<u32>,
    cores: usize,
) -> anyhow::Result<PeerResult> {
    let arguments = vigil_ingest::ffmpeg::decode_arguments(camera)?;
    let frame_bytes = {
        let width = camera.analysis_width.unwrap_or(1280) as u64;
        let height = width * 9 / 16;
        width * height * 3
    };
    let mut children = Vec::new();
    let mut readers = Vec::new();
    let counted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for _ in 0..streams {
        let mut child = Command::new(ffmpeg)
            .args(&arguments)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", ffmpeg.display()))?;
        let Some(mut stdout) = child.stdout.take() else {
            bail!("ffmpeg has no stdout");
        };
        // the same pipe as vigil's decoder gets, so ffmpeg writes its frames alike
        vigil_ingest::supervisor::widen_pipe(&stdout);
        children.push(child);
        let counted = counted.clone();
        readers.push(std::thread::spawn(move || {
            let mut buffer = vec![0u8; 1 << 20];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                counted.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }));
        std::thread::sleep(Duration::from_millis(700));
    }
    std::thread::sleep(Duration::from_secs(3));
    let start = CpuSnapshot::take();
    let bytes_before = counted.load(std::sync::atomic::Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(seconds));
    let end = CpuSnapshot::take();
    let bytes = counted.load(std::sync::atomic::Ordering::Relaxed) - bytes_before;
    let load = load_average();
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    for reader in readers {
        let _ = reader.join();
    }
    let cpu = cpu_between(&start, &end, server_pid, cores);
    let elapsed = (end.at - start.at).as_secs_f64();
    Ok(PeerResult {
        streams,
        cpu_per_stream: cpu.ffmpeg / streams as f64,
        fps_per_stream: bytes as f64 / frame_bytes as f64 / elapsed / streams as f64,
        foreign: cpu.foreign,
        load,
    })
}

// ---- one configuration ----

struct RunSetup<'a> {
    context: &'a BenchContext<'a>,
    service: &'a Arc<vigil_pipeline::FaceService>,
    store: &'a Arc<SqliteStore>,
    camera: &'a CameraConfig,
    scratch: &'a Path,
    server_pid: Option<u32>,
    scene: &'a Scene,
    stagger: f64,
    expected_per_camera: f64,
    max_age_ms: i64,
}

struct RunResult {
    cameras: usize,
    gating: bool,
    seconds: f64,
    decoded_fps: f64,
    analysed_fps: f64,
    drop_fraction: f64,
    restarts: u64,
    cpu: CpuUse,
    sightings: usize,
    expected_sightings: f64,
    matched: usize,
    judgement: Judgement,
    /// Last seen → published, ms.
    raw_latency: Vec<f64>,
    /// Published − (last seen + max_age): after the tracker may end the track, ms.
    after_end_latency: Vec<f64>,
    max_age_ms: i64,
    load_before: String,
    load_after: String,
    fits: bool,
}

fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    // nearest rank
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank - 1).copied()
}

impl RunResult {
    fn per_camera_cpu(&self) -> f64 {
        (self.cpu.process + self.cpu.ffmpeg) / self.cameras as f64
    }

    fn to_json(&self, peer: &PeerResult) -> serde_json::Value {
        let p = |values: &[f64], q: f64| percentile(values, q);
        serde_json::json!({
            "cameras": self.cameras, "motion_gating": self.gating, "seconds": self.seconds,
            "decoded_fps_per_camera": self.decoded_fps, "analysed_fps_per_camera": self.analysed_fps,
            "dropped_fraction": self.drop_fraction, "restarts": self.restarts,
            "cpu_percent": {
                "vigil_process": self.cpu.process, "vigil_ffmpeg": self.cpu.ffmpeg,
                "vigil_total": self.cpu.process + self.cpu.ffmpeg,
                "per_camera": self.per_camera_cpu(),
                "ffmpeg_alone_per_camera": peer.cpu_per_stream,
                "analysis_adds_per_camera": self.per_camera_cpu() - peer.cpu_per_stream,
                "rtsp_server": self.cpu.server, "other_processes": self.cpu.foreign,
                "machine_busy_fraction_percent": self.cpu.machine_busy,
            },
            "sightings": self.sightings, "expected_sightings": self.expected_sightings,
            "sightings_with_candidate": self.matched,
            "crossings_expected": self.judgement.expected,
            "sightings_found": self.judgement.found,
            "crossings_missed": self.judgement.missed,
            "sightings_named_correctly": self.judgement.named,
            "sightings_named_wrongly": self.judgement.wrong,
            "sightings_unnamed": self.judgement.unnamed,
            "sightings_duplicated": self.judgement.duplicates,
            "sightings_unexplained": self.judgement.unexplained,
            "latency_ms": {
                "definition": "raw: publication - last_seen (ended_at_ms); after_end: raw - tracker max_age_ms",
                "tracker_max_age_ms": self.max_age_ms,
                "raw_p50": p(&self.raw_latency, 50.0), "raw_p95": p(&self.raw_latency, 95.0),
                "after_end_p50": p(&self.after_end_latency, 50.0),
                "after_end_p95": p(&self.after_end_latency, 95.0),
                "after_end_max": self.after_end_latency.iter().copied().reduce(f64::max),
            },
            "load_average_before": self.load_before, "load_average_after": self.load_after,
            "keeps_up": self.fits,
        })
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn totals(statuses: &[CameraStatus]) -> (u64, u64, u64, u64) {
    statuses.iter().fold((0, 0, 0, 0), |(f, a, d, r), s| {
        (
            f + s.frames,
            a + s.frames_analysed,
            d + s.frames_dropped,
            r + s.restarts,
        )
    })
}

fn measure(
    setup: &RunSetup<'_>,
    count: usize,
    gating: bool,
    args: &VideoBenchArgs,
) -> anyhow::Result<RunResult> {
    let context = setup.context;
    let video_store: Arc<dyn VideoStore> = setup.store.clone();
    // parsed again per run: this crate names no type of the tracking crate
    let tracking = VideoAnalysis::tracking_from_table(&context.config.video.tracking)?;
    // Each run gets its own sightings index, so runs do not see each other's sightings.
    let index_dir = setup.scratch.join(format!(
        "index-{count}-{}",
        if gating { "gated" } else { "ungated" }
    ));
    let analysis = VideoAnalysis::new(
        setup.service.clone(),
        video_store.clone(),
        tracking,
        gating,
        Some(&index_dir),
    )?;
    let mut events = analysis.subscribe();
    let mut video = context.config.video.clone();
    video.min_free_bytes = 0;
    let manager = CameraManager::new(
        video,
        setup.scratch.join("recordings"),
        video_store,
        Arc::new(analysis.as_ref().clone()),
    )?;
    let load_before = load_average();
    for index in 0..count {
        let camera = CameraConfig {
            id: CameraId::parse(&format!("cam{index}"))?,
            ..setup.camera.clone()
        };
        manager.add(camera)?;
        std::thread::sleep(Duration::from_secs_f64(setup.stagger));
    }
    // drain what the warm-up publishes: start-up is not what is measured
    let warm_until = Instant::now() + Duration::from_secs(args.warmup);
    while Instant::now() < warm_until {
        while events.try_recv().is_ok() {}
        std::thread::sleep(Duration::from_millis(20));
    }
    while events.try_recv().is_ok() {}

    let before = manager.statuses();
    let frame_ms = 1000.0 / args.fps as f64;
    // where each camera's session started on the wall clock: the decoder stamps frame i of a
    // run `anchor + i · frame_ms`, so the scene's frame 0 is the last frame less the others
    let origins: HashMap<String, i64> = before
        .iter()
        .filter_map(|status| {
            let last = status.last_frame_ms?;
            let elapsed = (status.frames.saturating_sub(1) as f64 * frame_ms).round() as i64;
            Some((status.id.0.clone(), last - elapsed))
        })
        .collect();
    let cpu_start = CpuSnapshot::take();
    let window_start_ms = now_ms();
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let mut received: Vec<(i64, Arc<SightingView>)> = Vec::new();
    while Instant::now() < until {
        loop {
            match events.try_recv() {
                Ok(view) => received.push((now_ms(), view)),
                Err(TryRecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let cpu_end = CpuSnapshot::take();
    let window_ms = window_start_ms..now_ms();
    let after = manager.statuses();
    let load_after = load_average();
    manager.shutdown();
    drop(manager);
    drop(analysis);
    // The analysis threads finish the frames left in their mailboxes and flush their tracks;
    // the event channel closes when the last one exits. Waiting keeps that work out of the
    // next configuration's figures.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match events.try_recv() {
            Err(TryRecvError::Closed) => break,
            Err(TryRecvError::Empty) if Instant::now() >= deadline => {
                eprintln!("  analysis threads still running 60 s after shutdown");
                break;
            }
            Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(20)),
            Ok(_) | Err(TryRecvError::Lagged(_)) => {}
        }
    }
    // let the decoders exit, so the next configuration counts only its own
    let gone = Instant::now() + Duration::from_secs(10);
    while Instant::now() < gone && child_pids().iter().any(|(_, comm)| comm == "ffmpeg") {
        std::thread::sleep(Duration::from_millis(100));
    }

    let seconds = (cpu_end.at - cpu_start.at).as_secs_f64();
    let (f0, a0, d0, r0) = totals(&before);
    let (f1, a1, d1, r1) = totals(&after);
    let decoded = f1.saturating_sub(f0);
    let analysed = a1.saturating_sub(a0);
    let dropped = d1.saturating_sub(d0);
    let cpu = cpu_between(&cpu_start, &cpu_end, setup.server_pid, context.cores);
    // only tracks that ended because the person left: a max_duration cut is not an end
    let lost: Vec<&(i64, Arc<SightingView>)> = received
        .iter()
        .filter(|(_, v)| v.end_reason == "lost")
        .collect();
    let raw_latency: Vec<f64> = lost
        .iter()
        .map(|(at, v)| (at - v.ended_at_ms) as f64)
        .collect();
    let after_end_latency = raw_latency
        .iter()
        .map(|raw| raw - setup.max_age_ms as f64)
        .collect();
    let decoded_fps = decoded as f64 / count as f64 / seconds;
    let drop_fraction = if decoded == 0 {
        1.0
    } else {
        dropped as f64 / decoded as f64
    };
    let fits = drop_fraction < MAX_DROP_FRACTION
        && decoded_fps >= MIN_DECODED_FRACTION * args.fps as f64
        && cpu.machine_busy < MAX_MACHINE_BUSY * 100.0;
    Ok(RunResult {
        cameras: count,
        gating,
        seconds,
        decoded_fps,
        analysed_fps: analysed as f64 / count as f64 / seconds,
        drop_fraction,
        restarts: r1.saturating_sub(r0),
        cpu,
        sightings: received.len(),
        expected_sightings: setup.expected_per_camera * count as f64,
        matched: received
            .iter()
            .filter(|(_, v)| !v.candidates.is_empty())
            .count(),
        judgement: judge(
            setup.scene,
            &origins,
            window_ms,
            setup.max_age_ms,
            received.iter().map(|(_, v)| v.as_ref()),
        ),
        raw_latency,
        after_end_latency,
        max_age_ms: setup.max_age_ms,
        load_before,
        load_after,
        fits,
    })
}

fn print_header() {
    println!(
        "{:>4} {:>6} {:>7} {:>7} {:>6} {:>8} {:>7} {:>7} {:>7} {:>6} {:>6} {:>16} {:>11} {:>11} {:>5}",
        "cams",
        "gating",
        "dec/s",
        "anl/s",
        "drop%",
        "CPU%",
        "/cam",
        "ffm/cam",
        "adds",
        "srv%",
        "other%",
        "sight/exp fnd/ok/bad",
        "raw p50/95",
        "end p50/95",
        "fits"
    );
}

fn print_row(result: &RunResult, peer: &PeerResult) {
    let ms = |values: &[f64], q: f64| {
        percentile(values, q).map_or("-".to_string(), |v| format!("{:.0}", v.max(0.0)))
    };
    println!(
        "{:>4} {:>6} {:>7.2} {:>7.2} {:>6.1} {:>8.1} {:>7.1} {:>7.1} {:>7.1} {:>6.1} {:>6.1} {:>16} {:>11} {:>11} {:>5}",
        result.cameras,
        if result.gating { "on" } else { "off" },
        result.decoded_fps,
        result.analysed_fps,
        100.0 * result.drop_fraction,
        result.cpu.process + result.cpu.ffmpeg,
        result.per_camera_cpu(),
        result.cpu.ffmpeg / result.cameras as f64,
        result.per_camera_cpu() - peer.cpu_per_stream,
        result.cpu.server,
        result.cpu.foreign,
        format!(
            "{}/{} {}/{}/{}",
            result.sightings,
            result.judgement.expected,
            result.judgement.found,
            result.judgement.named,
            result.judgement.wrong
        ),
        format!(
            "{}/{}",
            ms(&result.raw_latency, 50.0),
            ms(&result.raw_latency, 95.0)
        ),
        format!(
            "{}/{}",
            ms(&result.after_end_latency, 50.0),
            ms(&result.after_end_latency, 95.0)
        ),
        if result.fits { "yes" } else { "no" }
    );
    let j = &result.judgement;
    if j.missed + j.unnamed + j.duplicates + j.unexplained > 0 {
        println!(
            "     ({} expected crossing(s) without a sighting, {} unnamed, {} duplicate(s), \
             {} unexplained)",
            j.missed, j.unnamed, j.duplicates, j.unexplained
        );
    }
    if result.restarts > 0 {
        println!(
            "     ({} decoder restart(s) while measuring)",
            result.restarts
        );
    }
}
