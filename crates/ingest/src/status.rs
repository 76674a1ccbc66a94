//! What the API and `/metrics` show about a camera.

use serde::Serialize;
use vigil_base::CameraId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CameraState {
    /// ffmpeg launched, no frame yet.
    Starting,
    /// Frames are arriving.
    Streaming,
    /// The stream failed or stalled; waiting out the backoff before the next start.
    Reconnecting,
    /// Cannot work until its settings change (missing file, ffmpeg absent); retried slowly.
    Failed,
    /// A local file (not looped) played to its end.
    Ended,
    Disabled,
}

impl CameraState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Streaming => "streaming",
            Self::Reconnecting => "reconnecting",
            Self::Failed => "failed",
            Self::Ended => "ended",
            Self::Disabled => "disabled",
        }
    }

    pub const ALL: [CameraState; 6] = [
        Self::Starting,
        Self::Streaming,
        Self::Reconnecting,
        Self::Failed,
        Self::Ended,
        Self::Disabled,
    ];
}

/// One supervised ffmpeg process (decoder or recorder).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProcessStatus {
    pub state: CameraState,
    /// Unix ms of the last state change.
    pub state_since_ms: i64,
    /// Frames decoded (decoder) or progress reports (recorder) since the camera was added.
    pub heartbeats: u64,
    pub restarts: u64,
    /// Unix ms of the last frame or progress report.
    pub last_heartbeat_ms: Option<i64>,
    /// The last error ffmpeg printed or the supervisor saw.
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CameraStatus {
    pub id: CameraId,
    pub name: String,
    pub enabled: bool,
    pub state: CameraState,
    pub state_since_ms: i64,
    /// Frames decoded and offered to analysis.
    pub frames: u64,
    /// Frames analysis took.
    pub frames_analysed: u64,
    /// Frames replaced before analysis took them (analysis behind).
    pub frames_dropped: u64,
    pub restarts: u64,
    pub last_frame_ms: Option<i64>,
    pub last_error: Option<String>,
    /// Analysed frame size, once known.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The recorder's process, when recording is on.
    pub recording: Option<ProcessStatus>,
    pub recorded_segments: u64,
}
