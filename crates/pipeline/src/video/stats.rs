//! What analysing a camera costs: the counters its analysis thread writes and the view the API
//! shows (`GET /v1/cameras`), for sizing a box.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use utoipa::ToSchema;

/// What one camera's analysis has cost since it started: enough to size a box (how many
/// frames the gate saved, how many faces were embedded, what a frame costs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CameraAnalysisView {
    /// Frames the detector ran on.
    pub detected_frames: u64,
    /// Frames the motion gate let through without detection.
    pub gated_frames: u64,
    /// Faces detected (inside the camera's zones).
    pub faces: u64,
    /// Faces embedded: only those that can change an answer (docs/design/006).
    pub embeddings: u64,
    /// Seconds since the camera's analysis started.
    pub seconds: f64,
    pub embeddings_per_second: f64,
    /// Mean analysis time of a frame (gate, detection, assessment, embedding, tracking).
    pub analysis_ms_per_frame: f64,
    /// Mean analysis time of a detected frame.
    pub analysis_ms_per_detected_frame: f64,
}

/// The counters behind [`CameraAnalysisView`], written by the camera's analysis thread.
pub(super) struct CameraStats {
    started: Instant,
    detected_frames: AtomicU64,
    gated_frames: AtomicU64,
    faces: AtomicU64,
    embeddings: AtomicU64,
    frame_nanos: AtomicU64,
    detected_frame_nanos: AtomicU64,
}

impl CameraStats {
    pub(super) fn new() -> Self {
        Self {
            started: Instant::now(),
            detected_frames: AtomicU64::new(0),
            gated_frames: AtomicU64::new(0),
            faces: AtomicU64::new(0),
            embeddings: AtomicU64::new(0),
            frame_nanos: AtomicU64::new(0),
            detected_frame_nanos: AtomicU64::new(0),
        }
    }

    pub(super) fn frame_done(&self, detected: bool, seconds: f64) {
        let nanos = (seconds * 1e9) as u64;
        self.frame_nanos.fetch_add(nanos, Ordering::Relaxed);
        if detected {
            self.detected_frames.fetch_add(1, Ordering::Relaxed);
            self.detected_frame_nanos
                .fetch_add(nanos, Ordering::Relaxed);
        } else {
            self.gated_frames.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn faces(&self, faces: u64, embedded: u64) {
        self.faces.fetch_add(faces, Ordering::Relaxed);
        self.embeddings.fetch_add(embedded, Ordering::Relaxed);
    }

    pub(super) fn view(&self) -> CameraAnalysisView {
        let detected = self.detected_frames.load(Ordering::Relaxed);
        let gated = self.gated_frames.load(Ordering::Relaxed);
        let embeddings = self.embeddings.load(Ordering::Relaxed);
        let seconds = self.started.elapsed().as_secs_f64();
        let mean_ms = |nanos: u64, frames: u64| {
            if frames == 0 {
                0.0
            } else {
                nanos as f64 / frames as f64 / 1e6
            }
        };
        CameraAnalysisView {
            detected_frames: detected,
            gated_frames: gated,
            faces: self.faces.load(Ordering::Relaxed),
            embeddings,
            seconds,
            embeddings_per_second: if seconds > 0.0 {
                embeddings as f64 / seconds
            } else {
                0.0
            },
            analysis_ms_per_frame: mean_ms(
                self.frame_nanos.load(Ordering::Relaxed),
                detected + gated,
            ),
            analysis_ms_per_detected_frame: mean_ms(
                self.detected_frame_nanos.load(Ordering::Relaxed),
                detected,
            ),
        }
    }
}
