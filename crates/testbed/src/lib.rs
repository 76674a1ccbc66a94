//! Real parts for vigil's live-video tests, all on 127.0.0.1: an RTSP server (GStreamer's, via
//! `scripts/testbed/rtsp_server.py`), MJPEG and HLS over HTTP, a source that accepts connections
//! and never sends, one that sends garbage, damaged copies of files, and test videos composed
//! from LFW photos with known identities and times.
//!
//! Only tests use this crate (as a dev-dependency). It needs `ffmpeg`/`ffprobe` on PATH and,
//! for RTSP, Debian's `/usr/bin/python3` with GStreamer's RTSP server bindings.

mod corrupt;
mod fault;
mod hls;
mod http;
pub mod lfw_video;
mod media;
mod mjpeg;
mod paths;
mod process;
mod rtsp;

pub use corrupt::{corrupt_copy, Corruption};
pub use fault::{GarbageServer, SilentServer};
pub use hls::HlsServer;
pub use media::{count_frames, probe, VideoProbe};
pub use mjpeg::MjpegServer;
pub use paths::{lfw_dir, repo_root, shared_dir, video_dir};
pub use rtsp::RtspServer;

use std::path::PathBuf;

/// What went wrong while setting up a test bed part.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed: {detail}")]
    ToolFailed { program: String, detail: String },
    #[error("{what} was not ready after {seconds} s: {detail}")]
    NotReady {
        what: String,
        seconds: u64,
        detail: String,
    },
    #[error("shared data not found at {0} (set VIGIL_SHARED_DIR)")]
    SharedDataMissing(PathBuf),
    #[error("image {path}: {source}")]
    Image {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("invalid test bed request: {0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
