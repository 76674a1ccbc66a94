//! Helpers shared by the integration test and the `track_video` example: shared data paths,
//! the onnxruntime library, ffmpeg frame decoding and the per-frame analysis loop the pipeline
//! will run (gate → detect → analyse → track).
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use vigil_base::config::{PipelineConfig, QualityConfig};
use vigil_infer::{AnalyzerSettings, BoundingBox, DecodedImage, FaceAnalyzer};
use vigil_track::{FaceObservation, FinishedTrack, MotionGate, TrackConfig, Tracker};

pub fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// A `.venv` onnxruntime above the crate, else None (the runtime then honours ORT_DYLIB_PATH).
pub fn onnxruntime_library() -> Option<PathBuf> {
    if std::env::var_os("ORT_DYLIB_PATH").is_some() {
        return None;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find_map(|dir| {
            let lib = dir.join(".venv/lib");
            let python = std::fs::read_dir(&lib)
                .ok()?
                .flatten()
                .find(|e| e.file_name().to_string_lossy().starts_with("python3"))?;
            let capi = python.path().join("site-packages/onnxruntime/capi");
            let mut found: Vec<PathBuf> = std::fs::read_dir(capi)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so"))
                })
                .collect();
            found.sort();
            found.pop()
        })
}

/// The default detector/recognizer pair with default thresholds.
pub fn analyzer(threads: usize) -> Result<FaceAnalyzer, vigil_infer::InferError> {
    let pipeline = PipelineConfig::default();
    FaceAnalyzer::new(AnalyzerSettings {
        models_dir: shared().join("models"),
        detector: pipeline.detector.clone(),
        recognizer: pipeline.recognizer.clone(),
        threads,
        pipeline,
        quality: QualityConfig::default(),
        onnxruntime_library: onnxruntime_library(),
        video_detector: None,
    })
}

type Error = Box<dyn std::error::Error>;

fn probe_size(video: &Path) -> Result<(u32, u32), Error> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(video)
        .output()?;
    let text = String::from_utf8(output.stdout)?;
    let mut parts = text.trim().split(',');
    match (parts.next(), parts.next()) {
        (Some(width), Some(height)) => Ok((width.parse()?, height.parse()?)),
        _ => Err(format!("ffprobe found no video stream in {}", video.display()).into()),
    }
}

/// Decodes `video` at `fps` frames per second with the ffmpeg CLI, scaled down to at most
/// `max_width` pixels wide, and calls `frame` with each frame and its time from the start.
pub fn for_each_frame(
    video: &Path,
    fps: u32,
    max_width: Option<u32>,
    mut frame: impl FnMut(i64, DecodedImage) -> Result<(), Error>,
) -> Result<usize, Error> {
    let (source_width, source_height) = probe_size(video)?;
    let (width, height) = match max_width {
        Some(max) if source_width > max => {
            // Even sizes keep the scaler and the raw frame size in agreement.
            let height = (source_height as u64 * max as u64 / source_width as u64) as u32 & !1;
            (max & !1, height.max(2))
        }
        _ => (source_width, source_height),
    };
    let mut child = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(video)
        .args(["-vf", &format!("fps={fps},scale={width}:{height}")])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdout = child.stdout.take().ok_or("ffmpeg has no stdout")?;
    let frame_bytes = width as usize * height as usize * 3;
    let mut index = 0usize;
    loop {
        let mut rgb = vec![0u8; frame_bytes];
        match stdout.read_exact(&mut rgb) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
        let at_ms = index as i64 * 1000 / fps as i64;
        frame(at_ms, DecodedImage::from_rgb(width, height, rgb)?)?;
        index += 1;
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("ffmpeg failed on {}: {status}", video.display()).into());
    }
    Ok(index)
}

/// The caller's best-shot payload: the face region of the frame (box grown by a quarter),
/// packed RGB.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceCrop {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

pub fn crop(image: &DecodedImage, bbox: &BoundingBox) -> FaceCrop {
    let [cx, cy] = bbox.center();
    let grown = BoundingBox::from_centre(cx, cy, bbox.width() * 1.25, bbox.height() * 1.25);
    let x1 = grown.x1.clamp(0.0, image.width as f32) as usize;
    let x2 = grown.x2.clamp(0.0, image.width as f32) as usize;
    let y1 = grown.y1.clamp(0.0, image.height as f32) as usize;
    let y2 = grown.y2.clamp(0.0, image.height as f32) as usize;
    let stride = image.width as usize * 3;
    let mut rgb = Vec::with_capacity((x2 - x1) * (y2 - y1) * 3);
    for y in y1..y2 {
        rgb.extend_from_slice(&image.rgb[y * stride + x1 * 3..y * stride + x2 * 3]);
    }
    FaceCrop {
        width: (x2 - x1) as u32,
        height: (y2 - y1) as u32,
        rgb,
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Frames analysed per second.
    pub fps: u32,
    /// Frames wider than this are scaled down before analysis.
    pub max_width: Option<u32>,
    /// Detection frames in this time range report no face (a simulated occlusion).
    pub blackout_ms: Option<std::ops::Range<i64>>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct RunStats {
    pub frames: usize,
    pub detected_frames: usize,
    pub faces: usize,
    pub detect_seconds: f64,
    pub analyze_seconds: f64,
}

/// The analysis loop for one video: motion gate, detection and analysis on the frames it
/// lets through, tracking, and a flush at the end. `on_frame` sees each detected frame's
/// faces and the tracker after its update (for printing).
pub fn track_video(
    analyzer: &FaceAnalyzer,
    config: &TrackConfig,
    video: &Path,
    options: &RunOptions,
    mut on_frame: impl FnMut(i64, &[FaceObservation<FaceCrop>], &Tracker<FaceCrop>),
) -> Result<(Vec<FinishedTrack<FaceCrop>>, RunStats), Error> {
    let mut gate = MotionGate::new(config.motion.clone())?;
    let mut tracker: Tracker<FaceCrop> = Tracker::new(config.tracker.clone())?;
    let mut finished = Vec::new();
    let mut stats = RunStats::default();
    let mut last_ms = 0;
    stats.frames = for_each_frame(video, options.fps, options.max_width, |at_ms, image| {
        last_ms = at_ms;
        let decision = gate.check((&image).into(), at_ms, tracker.has_tracks())?;
        if !decision.detect {
            finished.extend(tracker.update_static(at_ms));
            return Ok(());
        }
        stats.detected_frames += 1;
        let started = std::time::Instant::now();
        let detections = analyzer.detect(&image)?;
        stats.detect_seconds += started.elapsed().as_secs_f64();
        let started = std::time::Instant::now();
        let faces = analyzer.analyze_detections(&image, detections)?;
        stats.analyze_seconds += started.elapsed().as_secs_f64();
        stats.faces += faces.len();
        let hidden = options
            .blackout_ms
            .as_ref()
            .is_some_and(|range| range.contains(&at_ms));
        let observations: Vec<FaceObservation<FaceCrop>> = faces
            .iter()
            .filter(|_| !hidden)
            .map(|face| FaceObservation::from_analyzed(face, crop(&image, &face.detection.bbox)))
            .collect();
        let shown = observations.clone();
        finished.extend(tracker.update(at_ms, observations));
        on_frame(at_ms, &shown, &tracker);
        Ok(())
    })?;
    finished.extend(tracker.flush(last_ms));
    Ok((finished, stats))
}

/// One line per finished track.
pub fn describe(track: &FinishedTrack<FaceCrop>) -> String {
    let best = &track.best_shot;
    format!(
        "track {} seg {} {:>5}–{:>5} ms  {:>3} obs  best q={:.2} usable={} at {} ms ({}x{} crop)  \
         {} embeddings  {} trajectory points  end={:?}  merged={:?}",
        track.track_id,
        track.segment,
        track.first_seen_ms,
        track.last_seen_ms,
        track.observations,
        best.observation.quality_score,
        best.observation.usable,
        best.at_ms,
        best.observation.payload.width,
        best.observation.payload.height,
        track.top_embeddings.len(),
        track.trajectory.len(),
        track.end_reason,
        track.merged_track_ids,
    )
}
