//! `vigil bench live`: what one viewer of a camera's live picture costs the server.
//!
//! A watched camera costs a copy of each analysed frame (the analysis thread keeps it for the
//! viewer) and, per picture the viewer asks for, drawing the boxes and a JPEG encode. Both are
//! measured here on real frames of a shared video at the analysis size, on one thread, beside
//! the peer: OpenCV's `cv2.imencode` (libjpeg-turbo) at the same quality on the same frames, one
//! thread, in the project's `.venv`.

use crate::peer::run_peer;
use crate::BenchContext;
use anyhow::{bail, Context as _};
use clap::Args;
use std::path::Path;
use std::process::Command;
use std::time::Instant;
use vigil_pipeline::video::live::{LiveFace, LiveFrame};

#[derive(Debug, Args)]
pub struct LiveBenchArgs {
    /// Frames decoded from the video and encoded, each `--rounds` times.
    #[arg(long, default_value_t = 60)]
    pub frames: usize,
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// The analysis size (`analysis_width` × the video's aspect).
    #[arg(long, default_value_t = 640)]
    pub width: u32,
    /// Pictures per second a viewer asks for (the console asks for 2).
    #[arg(long, default_value_t = 2.0)]
    pub pictures_per_second: f64,
    /// Analysed frames per second of the watched camera (copied while watched).
    #[arg(long, default_value_t = 6.0)]
    pub analysed_fps: f64,
    #[arg(long)]
    pub no_peer: bool,
}

pub fn run(context: &BenchContext<'_>, args: LiveBenchArgs) -> anyhow::Result<()> {
    let video = (context.shared_dir)()?.join("data/video/face-demographics-walking.mp4");
    let folder = tempfile_dir()?;
    extract_frames(
        &context.config.video.ffmpeg,
        &video,
        &folder,
        args.width,
        args.frames,
    )?;
    let mut frames = Vec::new();
    // A short video gives fewer frames than asked: measure what there is.
    for index in 1..=args.frames {
        let path = folder.join(format!("frame{index:04}.png"));
        if !path.exists() {
            break;
        }
        let image = image::open(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .to_rgb8();
        frames.push(image);
    }
    if frames.is_empty() {
        bail!("no frames decoded from {}", video.display());
    }
    let (width, height) = (frames[0].width(), frames[0].height());
    // Two faces boxed, as a typical scene of this video has.
    let faces = vec![
        LiveFace {
            track: 1,
            bbox: [
                width as f32 * 0.2,
                height as f32 * 0.2,
                width as f32 * 0.32,
                height as f32 * 0.45,
            ],
            confirmed: true,
        },
        LiveFace {
            track: 2,
            bbox: [
                width as f32 * 0.6,
                height as f32 * 0.25,
                width as f32 * 0.7,
                height as f32 * 0.5,
            ],
            confirmed: false,
        },
    ];

    // The analysis thread's share: one copy per analysed frame while watched.
    let started = Instant::now();
    let mut copied = 0usize;
    for _ in 0..args.rounds {
        for frame in &frames {
            let copy = frame.as_raw().clone();
            copied += copy.len();
            std::hint::black_box(copy);
        }
    }
    let copy_ms = started.elapsed().as_secs_f64() * 1e3 / (args.rounds * frames.len()) as f64;

    // The viewer's request: draw and encode.
    let pictures: Vec<LiveFrame> = frames
        .iter()
        .map(|frame| {
            let mut picture = LiveFrame::new(width, height, 0, frame.as_raw().clone(), &[]);
            picture.faces = faces.clone();
            picture
        })
        .collect();
    let started = Instant::now();
    let mut bytes = 0usize;
    for _ in 0..args.rounds {
        for picture in &pictures {
            bytes += picture.to_jpeg()?.len();
        }
    }
    let count = (args.rounds * pictures.len()) as f64;
    let encode_ms = started.elapsed().as_secs_f64() * 1e3 / count;
    let per_viewer_percent =
        (encode_ms * args.pictures_per_second + copy_ms * args.analysed_fps) / 10.0;
    let mut report = serde_json::json!({
        "frames": frames.len(),
        "rounds": args.rounds,
        "size": format!("{width}x{height}"),
        "vigil_copy_ms_per_frame": round(copy_ms),
        "vigil_draw_and_encode_ms_per_picture": round(encode_ms),
        "vigil_mean_jpeg_bytes": (bytes as f64 / count).round(),
        "pictures_per_second": args.pictures_per_second,
        "analysed_fps": args.analysed_fps,
        "vigil_cpu_percent_of_one_core_per_viewer": round(per_viewer_percent),
        "copied_bytes": copied,
    });
    if !args.no_peer {
        let peer = run_peer(
            context,
            "scripts/bench/live_encode.py",
            &[
                folder.display().to_string(),
                args.frames.to_string(),
                args.rounds.to_string(),
            ],
        )?;
        report["peer"] = peer.clone();
        if let Some(peer_ms) = peer["encode_ms_per_picture"].as_f64() {
            report["vigil_encode_time_over_peer"] = round(encode_ms / peer_ms).into();
        }
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    let _ = std::fs::remove_dir_all(&folder);
    Ok(())
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let folder = std::env::temp_dir().join(format!("vigil-bench-live-{}", std::process::id()));
    std::fs::create_dir_all(&folder)?;
    Ok(folder)
}

/// The first `count` frames of `video`, scaled to `width` (even height kept to the aspect), as
/// PNG files `frame0001.png`… — lossless, so both sides encode the same pixels.
fn extract_frames(
    ffmpeg: &Path,
    video: &Path,
    folder: &Path,
    width: u32,
    count: usize,
) -> anyhow::Result<()> {
    let status = Command::new(ffmpeg)
        .args(["-v", "error", "-i"])
        .arg(video)
        .args([
            "-vf",
            &format!("scale={width}:-2"),
            "-frames:v",
            &count.to_string(),
        ])
        .arg(folder.join("frame%04d.png"))
        .status()
        .context("running ffmpeg")?;
    if !status.success() {
        bail!("ffmpeg could not decode {}", video.display());
    }
    Ok(())
}
