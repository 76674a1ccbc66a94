//! The decoding job: ffmpeg → PPM frames → wall-clock timestamps → the analysis mailbox.

use crate::ffmpeg::{decode_arguments_under, read_ppm_frame};
use crate::frame::{FrameSender, VideoFrame};
use crate::supervisor::{Heartbeat, Job, RunEnd};
use crate::{now_ms, IngestError};
use parking_lot::Mutex;
use std::io::BufReader;
use std::process::ChildStdout;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use vigil_base::camera::{CameraConfig, SourceKind, SourcePolicy};

/// A live timeline that drifts further than this from the wall clock is re-anchored: the
/// stream stalled and resumed, or the source's clock jumped.
const MAX_DRIFT_BEHIND_MS: i64 = 2_000;
const MAX_DRIFT_AHEAD_MS: i64 = 500;

pub struct DecoderJob {
    camera: CameraConfig,
    sources: SourcePolicy,
    frames: FrameSender,
    sequence: AtomicU64,
    size: Mutex<Option<(u32, u32)>>,
    metric_label: String,
}

impl DecoderJob {
    pub fn new(camera: CameraConfig, sources: SourcePolicy, frames: FrameSender) -> Self {
        let metric_label = camera.id.0.clone();
        Self {
            camera,
            sources,
            frames,
            sequence: AtomicU64::new(0),
            size: Mutex::new(None),
            metric_label,
        }
    }

    pub fn frames(&self) -> &FrameSender {
        &self.frames
    }

    pub fn frame_size(&self) -> Option<(u32, u32)> {
        *self.size.lock()
    }

    /// Files read faster than real time keep their own timeline; everything else follows the
    /// wall clock.
    fn follows_wall_clock(&self) -> bool {
        !matches!(
            SourceKind::of(self.camera.analysis_url()),
            Ok(SourceKind::File(_))
        ) || self.camera.realtime
    }
}

impl Job for DecoderJob {
    fn arguments(&self, _run: u64) -> Result<Vec<String>, IngestError> {
        decode_arguments_under(&self.camera, &self.sources)
    }

    fn consume(&self, stdout: ChildStdout, heartbeat: &Heartbeat) -> Result<(), IngestError> {
        let mut reader = BufReader::with_capacity(1 << 20, stdout);
        let frame_ms = 1000.0 / self.camera.analysis_fps as f64;
        let live = self.follows_wall_clock();
        let mut anchor_ms: Option<i64> = None;
        let mut index: u64 = 0;
        while let Some(raw) = read_ppm_frame(&mut reader)? {
            let now = now_ms();
            let media_ms = (index as f64 * frame_ms).round() as i64;
            let anchor = *anchor_ms.get_or_insert(now - media_ms);
            let mut timestamp = anchor + media_ms;
            if live
                && (timestamp < now - MAX_DRIFT_BEHIND_MS || timestamp > now + MAX_DRIFT_AHEAD_MS)
            {
                anchor_ms = Some(now - media_ms);
                timestamp = now;
            }
            index += 1;
            *self.size.lock() = Some((raw.width, raw.height));
            let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
            let frame = VideoFrame {
                camera: self.camera.id.clone(),
                sequence,
                timestamp_ms: timestamp,
                decoded_at: Instant::now(),
                width: raw.width,
                height: raw.height,
                rgb: raw.rgb,
            };
            // Live sources drop when analysis is behind; footage read faster than real time
            // waits for it instead, so no part of the file is skipped.
            let dropped = if live {
                self.frames.send(frame)
            } else {
                heartbeat.beat();
                self.frames.send_waiting(frame);
                false
            };
            metrics::counter!("vigil_camera_frames_total", "camera" => self.metric_label.clone())
                .increment(1);
            if dropped {
                metrics::counter!("vigil_camera_dropped_frames_total", "camera" => self.metric_label.clone())
                    .increment(1);
            }
            if live {
                heartbeat.beat();
            }
        }
        Ok(())
    }

    fn ended(&self, exit_ok: bool, heartbeats_this_run: u64) -> RunEnd {
        let is_file = matches!(
            SourceKind::of(self.camera.analysis_url()),
            Ok(SourceKind::File(_))
        );
        if is_file && !self.camera.loop_file && (exit_ok || heartbeats_this_run > 0) {
            // A damaged file that decoded partly has been read as far as it goes; replaying it
            // would only repeat the same sightings.
            RunEnd::Finished
        } else {
            RunEnd::Restart
        }
    }
}
