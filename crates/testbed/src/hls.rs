//! HLS over HTTP: ffmpeg segments a file into a temporary folder that a static server serves.

use crate::http::{respond, HttpServer};
use crate::process::{run_tool, stop_child, StderrLog};
use crate::{io_error, Error, Result};
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const PLAYLIST: &str = "index.m3u8";
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves a video as HLS (H.264 in MPEG-TS, 1 s segments) at `url()`.
///
/// Not live: the whole file is segmented before `start` returns (a VOD playlist with an end).
/// Live: ffmpeg keeps segmenting the file, looped, at real speed into a sliding playlist of six
/// segments; `start` returns once two segments exist. Stops (and ffmpeg with it) on drop.
pub struct HlsServer {
    http: HttpServer,
    segmenter: Option<Child>,
    segmenter_log: StderrLog,
    // Held for its Drop: the segments live there.
    _dir: tempfile::TempDir,
}

impl HlsServer {
    pub fn start(video: &Path, live: bool) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("vigil-hls-")
            .tempdir()
            .map_err(io_error("creating the HLS folder"))?;
        let playlist = dir.path().join(PLAYLIST);
        let mut args: Vec<String> = vec!["-v".into(), "error".into(), "-nostdin".into()];
        if live {
            args.extend(["-re", "-stream_loop", "-1"].map(String::from));
        }
        args.extend(["-i".into(), video.display().to_string()]);
        args.extend(
            [
                "-an",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-pix_fmt",
                "yuv420p",
                // A key frame every second, so every 1 s segment starts with one.
                "-force_key_frames",
                "expr:gte(t,n_forced*1)",
                "-f",
                "hls",
                "-hls_time",
                "1",
            ]
            .map(String::from),
        );
        if live {
            args.extend(
                [
                    "-hls_list_size",
                    "6",
                    "-hls_flags",
                    "delete_segments+temp_file",
                ]
                .map(String::from),
            );
        } else {
            args.extend(["-hls_playlist_type", "vod"].map(String::from));
        }
        args.extend([
            "-hls_segment_filename".into(),
            dir.path().join("segment%05d.ts").display().to_string(),
            playlist.display().to_string(),
        ]);

        let (segmenter, segmenter_log) = if live {
            let (mut child, log) = spawn_segmenter(&args)?;
            if let Err(error) = wait_for_segments(&playlist, &mut child, &log) {
                stop_child(&mut child, Duration::ZERO);
                return Err(error);
            }
            (Some(child), log)
        } else {
            run_tool("ffmpeg", &args, Duration::from_secs(300))?;
            (None, StderrLog::default())
        };

        let root = dir.path().to_path_buf();
        let http = HttpServer::start(Arc::new(move |path, stream, _stopped| {
            let _ = serve_file(&root, path, stream);
        }))?;
        Ok(Self {
            http,
            segmenter,
            segmenter_log,
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:PORT/index.m3u8`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/{PLAYLIST}", self.http.port())
    }

    pub fn port(&self) -> u16 {
        self.http.port()
    }

    /// The end of the live segmenter's stderr, for failure messages.
    pub fn log(&self) -> String {
        self.segmenter_log.text()
    }
}

impl Drop for HlsServer {
    fn drop(&mut self) {
        self.http.stop();
        if let Some(mut child) = self.segmenter.take() {
            // Closing the wrapper's stdin makes it stop ffmpeg (see spawn_segmenter).
            drop(child.stdin.take());
            stop_child(&mut child, Duration::from_secs(5));
        }
    }
}

/// ffmpeg under a shell that stops it when our end of its stdin closes, so that a test process
/// that dies without dropping the server does not leave a looping ffmpeg behind.
fn spawn_segmenter(args: &[String]) -> Result<(Child, StderrLog)> {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"ffmpeg "$@" </dev/null & pid=$!; cat >/dev/null; kill $pid 2>/dev/null; wait $pid"#)
        .arg("sh")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            program: "sh -c ffmpeg".into(),
            source,
        })?;
    let log = StderrLog::collect(&mut child);
    Ok((child, log))
}

fn wait_for_segments(playlist: &Path, child: &mut Child, log: &StderrLog) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(playlist) {
            if text.lines().filter(|line| line.ends_with(".ts")).count() >= 2 {
                return Ok(());
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::ToolFailed {
                program: "ffmpeg (HLS)".into(),
                detail: format!("{status}: {}", log.text()),
            });
        }
        thread::sleep(Duration::from_millis(100));
    }
    Err(Error::NotReady {
        what: "HLS segmenter".into(),
        seconds: READY_TIMEOUT.as_secs(),
        detail: log.text(),
    })
}

fn serve_file(root: &Path, path: &str, stream: &mut std::net::TcpStream) -> std::io::Result<()> {
    let relative = PathBuf::from(path.trim_start_matches('/'));
    // Only plain names below the folder.
    let safe = relative
        .components()
        .all(|component| matches!(component, Component::Normal(_)));
    let content_type = match relative.extension().and_then(|e| e.to_str()) {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        _ => "application/octet-stream",
    };
    match std::fs::read(root.join(&relative)) {
        Ok(body) if safe => respond(stream, "200 OK", content_type, &body),
        _ => respond(stream, "404 Not Found", "text/plain", b"not found\n"),
    }
}
