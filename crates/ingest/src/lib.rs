//! Cameras in: one supervised ffmpeg process per stream decoding frames over a pipe, an
//! optional second one recording segments, and retention of those recordings.
//!
//! [`CameraManager`] owns the cameras; each enabled camera hands its frames to a
//! [`FrameSink`] through a one-frame mailbox ([`frame::frame_channel`]) that drops, never
//! queues, when analysis falls behind. Supervision and the write order of recordings are
//! described in `docs/design/007-video-ingest-recording.md`.

pub mod clip;
pub mod decoder;
pub mod ffmpeg;
pub mod frame;
mod manager;
pub mod process;
pub mod recorder;
pub mod retention;
pub mod status;
pub mod supervisor;

pub use clip::{export_clip, position_of, RecordingPosition};
pub use frame::{frame_channel, FrameReceiver, FrameSender, Received, VideoFrame};
pub use manager::{CameraManager, FrameSink};
pub use retention::RetentionReport;
pub use status::{CameraState, CameraStatus, ProcessStatus};

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("camera settings are invalid: {0}")]
    Config(String),
    #[error("camera {0} already exists")]
    Conflict(String),
    #[error("no camera {0}")]
    NotFound(String),
    #[error("video file {0} does not exist")]
    SourceMissing(String),
    #[error("{0}")]
    Unresolved(String),
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("no frame for {0:?}: stream stalled")]
    Stalled(Duration),
    #[error("ffmpeg stopped: {0}")]
    Exited(String),
    #[error("the stream sent data that is not video: {0}")]
    Garbage(String),
    #[error("reading from ffmpeg failed: {0}")]
    Pipe(std::io::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] vigil_store::StoreError),
}

impl IngestError {
    /// Errors that retrying cannot fix until the settings or the machine change.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Config(_) | Self::SourceMissing(_) | Self::Spawn { .. }
        )
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
