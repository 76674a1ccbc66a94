//! An HTTP MJPEG camera: `multipart/x-mixed-replace` JPEG frames, as cheap IP cameras send.

use crate::http::{respond, HttpServer};
use crate::process::run_tool;
use crate::{Error, Result};
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const PATH: &str = "/stream.mjpg";
const BOUNDARY: &str = "vigilframe";
/// Bounds the memory of the decoded frames (about 40 KB each at 720p).
const MAX_FRAMES: usize = 3000;

/// Serves a video file as MJPEG at `fps`, looping. The file is decoded to JPEG once (ffmpeg);
/// each client gets the frames from the first one, at real speed. Stops on drop.
pub struct MjpegServer {
    http: HttpServer,
    frame_count: usize,
}

impl MjpegServer {
    pub fn start(video: &Path, fps: f64) -> Result<Self> {
        if !(fps > 0.0 && fps <= 120.0) {
            return Err(Error::Invalid(format!(
                "MJPEG fps {fps} is not in (0, 120]"
            )));
        }
        let jpegs = run_tool(
            "ffmpeg",
            &[
                "-v".into(),
                "error".into(),
                "-nostdin".into(),
                "-i".into(),
                video.display().to_string(),
                "-an".into(),
                "-vf".into(),
                format!("fps={fps}"),
                "-frames:v".into(),
                MAX_FRAMES.to_string(),
                "-f".into(),
                "image2pipe".into(),
                "-c:v".into(),
                "mjpeg".into(),
                "-q:v".into(),
                "4".into(),
                "-".into(),
            ],
            Duration::from_secs(300),
        )?;
        let frames = split_jpegs(&jpegs);
        if frames.is_empty() {
            return Err(Error::ToolFailed {
                program: "ffmpeg".into(),
                detail: format!("no JPEG frames decoded from {}", video.display()),
            });
        }
        let frame_count = frames.len();
        let frames = Arc::new(frames);
        let interval = Duration::from_secs_f64(1.0 / fps);
        let http = HttpServer::start(Arc::new(move |path, stream, stopped| {
            if path == PATH {
                let _ = stream_frames(stream, &frames, interval, stopped);
            } else {
                let _ = respond(stream, "404 Not Found", "text/plain", b"not found\n");
            }
        }))?;
        Ok(Self { http, frame_count })
    }

    /// `http://127.0.0.1:PORT/stream.mjpg`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{PATH}", self.http.port())
    }

    pub fn port(&self) -> u16 {
        self.http.port()
    }

    /// Frames in one loop of the stream.
    pub fn frame_count(&self) -> usize {
        self.frame_count
    }

    /// Stops serving and closes every open stream (a camera that goes away).
    pub fn stop(&mut self) {
        self.http.stop();
    }
}

fn stream_frames(
    stream: &mut TcpStream,
    frames: &[Vec<u8>],
    interval: Duration,
    stopped: &AtomicBool,
) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary={BOUNDARY}\r\n\
         Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
    )?;
    let start = Instant::now();
    for (index, frame) in frames.iter().cycle().enumerate() {
        if stopped.load(Ordering::SeqCst) {
            break;
        }
        write!(
            stream,
            "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            frame.len()
        )?;
        stream.write_all(frame)?;
        stream.write_all(b"\r\n")?;
        stream.flush()?;
        let due = start + interval.mul_f64(index as f64 + 1.0);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
    Ok(())
}

/// Splits ffmpeg's concatenated JPEGs at their end-of-image markers (ffmpeg's mjpeg encoder
/// writes no embedded thumbnails, so 0xFFD9 only ends a frame).
fn split_jpegs(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut start = None;
    let mut index = 0;
    while index + 1 < bytes.len() {
        match (bytes[index], bytes[index + 1]) {
            (0xFF, 0xD8) if start.is_none() => {
                start = Some(index);
                index += 2;
            }
            (0xFF, 0xD9) => {
                if let Some(begin) = start.take() {
                    frames.push(bytes[begin..index + 2].to_vec());
                }
                index += 2;
            }
            _ => index += 1,
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::split_jpegs;

    #[test]
    fn concatenated_jpegs_are_split_at_their_end_markers() {
        let stream = [
            0xFF, 0xD8, 1, 2, 0xFF, 0x00, 0xFF, 0xD9, 0xFF, 0xD8, 3, 0xFF, 0xD9, 7,
        ];
        let frames = split_jpegs(&stream);
        assert_eq!(
            frames,
            vec![
                vec![0xFF, 0xD8, 1, 2, 0xFF, 0x00, 0xFF, 0xD9],
                vec![0xFF, 0xD8, 3, 0xFF, 0xD9]
            ]
        );
    }
}
