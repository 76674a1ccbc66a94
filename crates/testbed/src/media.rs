//! What ffprobe and ffmpeg say about a file or a stream: the checks the tests make on sources.

use crate::process::run_tool;
use crate::{Error, Result};
use serde::Deserialize;
use std::time::Duration;

const TOOL_LIMIT: Duration = Duration::from_secs(60);

/// The first video stream of an input, as ffprobe reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoProbe {
    /// ffmpeg's codec name: `h264`, `mpeg4`, `mjpeg`, ...
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// The container's duration, where it has one (files, VOD playlists).
    pub duration_seconds: Option<f64>,
    /// Frames counted from the header, where the container says (mp4 does).
    pub frame_count: Option<u64>,
}

#[derive(Deserialize)]
struct ProbeOutput {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    nb_frames: Option<String>,
}

#[derive(Deserialize)]
struct ProbeFormat {
    duration: Option<String>,
}

/// Probes a file or URL (at most 60 s). `input_options` go before `-i` (e.g. `["-rtsp_transport", "udp"]`).
pub fn probe(input: &str, input_options: &[&str]) -> Result<VideoProbe> {
    let mut args: Vec<String> = ["-v", "error"]
        .iter()
        .chain(input_options)
        .map(|s| s.to_string())
        .collect();
    args.extend(["-show_streams", "-show_format", "-of", "json", "-i", input].map(String::from));
    let output = run_tool("ffprobe", &args, TOOL_LIMIT)?;
    let parsed: ProbeOutput = serde_json::from_slice(&output).map_err(|e| Error::ToolFailed {
        program: "ffprobe".into(),
        detail: format!("unreadable JSON: {e}"),
    })?;
    let video = parsed
        .streams
        .into_iter()
        .find(|s| s.codec_type.as_deref() == Some("video"))
        .ok_or_else(|| Error::ToolFailed {
            program: "ffprobe".into(),
            detail: format!("{input} has no video stream"),
        })?;
    Ok(VideoProbe {
        codec: video.codec_name.unwrap_or_default(),
        width: video.width.unwrap_or(0),
        height: video.height.unwrap_or(0),
        duration_seconds: parsed
            .format
            .and_then(|f| f.duration)
            .and_then(|d| d.parse().ok()),
        frame_count: video.nb_frames.and_then(|n| n.parse().ok()),
    })
}

/// Decodes (at most 60 s) up to `max_frames` frames of the first video stream (all when None) and returns how
/// many decoded; fails if ffmpeg reports any error (with `-xerror`, decoding errors count).
pub fn count_frames(input: &str, input_options: &[&str], max_frames: Option<u64>) -> Result<u64> {
    let mut args: Vec<String> = ["-v", "error", "-xerror", "-nostdin"]
        .iter()
        .chain(input_options)
        .map(|s| s.to_string())
        .collect();
    args.extend(["-i", input, "-map", "0:v:0", "-an"].map(String::from));
    if let Some(max) = max_frames {
        args.extend(["-frames:v".to_string(), max.to_string()]);
    }
    args.extend(["-f", "framecrc", "-"].map(String::from));
    let output = run_tool("ffmpeg", &args, TOOL_LIMIT)?;
    Ok(String::from_utf8_lossy(&output)
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .count() as u64)
}
