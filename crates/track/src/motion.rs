//! Motion gating: a cheap per-frame check on a grayscale thumbnail that tells the caller when
//! running the face detector can be skipped because nothing in the scene moved.

use crate::{MotionConfig, TrackError};
use vigil_infer::RgbView;

/// Source pixels sampled along each side of a thumbnail cell (at most; all when the cell is
/// smaller).
const SAMPLES_PER_CELL_SIDE: usize = 2;

/// What the gate decided for one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateDecision {
    /// Run detection on this frame (motion, the first frame, or a keep-alive/idle deadline).
    /// When false, call [`crate::Tracker::update_static`] instead of `update`.
    pub detect: bool,
    /// The frame differs from the background (the first frame counts as motion).
    pub motion: bool,
    /// Fraction of thumbnail pixels that changed, 0..1.
    pub changed_fraction: f32,
}

/// Frame differencing against a slowly updated background, on a thumbnail about
/// `thumbnail_width` pixels wide.
#[derive(Debug, Clone)]
pub struct MotionGate {
    config: MotionConfig,
    /// Source size the background was built for; a new size restarts the gate.
    source_size: (u32, u32),
    thumbnail_size: (usize, usize),
    background: Vec<f32>,
    thumbnail: Vec<f32>,
    /// Thumbnail column of each source column (precomputed per source size).
    column_cells: Vec<usize>,
    last_detection_ms: Option<i64>,
}

impl MotionGate {
    pub fn new(config: MotionConfig) -> Result<Self, TrackError> {
        config.validate()?;
        Ok(Self {
            config,
            source_size: (0, 0),
            thumbnail_size: (0, 0),
            background: Vec::new(),
            thumbnail: Vec::new(),
            column_cells: Vec::new(),
            last_detection_ms: None,
        })
    }

    /// Forgets the background (e.g. after a stream reconnect): the next frame is detected.
    pub fn reset(&mut self) {
        self.source_size = (0, 0);
        self.background.clear();
        self.last_detection_ms = None;
    }

    /// Looks at a frame taken at `at_ms` and decides whether it needs detection.
    /// `tracks_alive` (from [`crate::Tracker::has_tracks`]) selects the keep-alive deadline
    /// instead of the idle one.
    pub fn check(
        &mut self,
        frame: RgbView<'_>,
        at_ms: i64,
        tracks_alive: bool,
    ) -> Result<GateDecision, TrackError> {
        let expected = frame.width as usize * frame.height as usize * 3;
        if frame.width == 0 || frame.height == 0 || frame.rgb.len() != expected {
            return Err(TrackError::FrameSize {
                width: frame.width,
                height: frame.height,
                len: frame.rgb.len(),
            });
        }
        let restarted = (frame.width, frame.height) != self.source_size;
        if restarted {
            self.resize_for(frame.width, frame.height);
        }
        self.make_thumbnail(frame);
        let changed_fraction = if restarted {
            self.background.clone_from(&self.thumbnail);
            1.0
        } else {
            let threshold = self.config.pixel_threshold;
            let changed = self
                .thumbnail
                .iter()
                .zip(&self.background)
                .filter(|(now, before)| (*now - *before).abs() > threshold)
                .count();
            let rate = self.config.background_rate;
            for (before, now) in self.background.iter_mut().zip(&self.thumbnail) {
                *before += rate * (*now - *before);
            }
            changed as f32 / self.thumbnail.len() as f32
        };
        let motion = restarted || changed_fraction > self.config.min_changed_fraction;
        let deadline_ms = if tracks_alive {
            self.config.keepalive_interval_ms
        } else {
            self.config.idle_interval_ms
        };
        // A clock that steps back counts as a deadline reached rather than a long skip.
        let overdue = self
            .last_detection_ms
            .is_none_or(|last| at_ms - last >= deadline_ms || at_ms < last);
        let detect = motion || overdue;
        if detect {
            self.last_detection_ms = Some(at_ms);
        }
        Ok(GateDecision {
            detect,
            motion,
            changed_fraction,
        })
    }

    fn resize_for(&mut self, width: u32, height: u32) {
        let thumbnail_width = self.config.thumbnail_width.min(width) as usize;
        let thumbnail_height = ((height as u64 * thumbnail_width as u64 + width as u64 / 2)
            / width as u64)
            .max(1) as usize;
        self.source_size = (width, height);
        self.thumbnail_size = (thumbnail_width, thumbnail_height);
        self.column_cells = (0..width as usize)
            .map(|x| x * thumbnail_width / width as usize)
            .collect();
        self.thumbnail = vec![0.0; thumbnail_width * thumbnail_height];
        self.background.clear();
    }

    /// Grayscale thumbnail: each cell the mean of a regular grid of its source pixels, about
    /// `SAMPLES_PER_CELL_SIDE`² of them (a 1280-wide frame into 160 cells reads every fourth
    /// pixel of every fourth row, the gate being paid on every frame of every camera: the
    /// whole-frame version was the largest single cost of a quiet camera in a profile).
    fn make_thumbnail(&mut self, frame: RgbView<'_>) {
        let (thumbnail_width, thumbnail_height) = self.thumbnail_size;
        let (width, height) = (frame.width as usize, frame.height as usize);
        let step = (width / thumbnail_width / SAMPLES_PER_CELL_SIDE).max(1);
        let mut sums = vec![0u32; thumbnail_width * thumbnail_height];
        let mut counts = vec![0u32; thumbnail_width * thumbnail_height];
        for (y, row) in frame.rgb.chunks_exact(width * 3).enumerate().step_by(step) {
            let cell_row = (y * thumbnail_height / height) * thumbnail_width;
            for (pixel, &cell_column) in row
                .chunks_exact(3)
                .step_by(step)
                .zip(self.column_cells.iter().step_by(step))
            {
                // Integer BT.601 luma.
                let gray =
                    (77 * pixel[0] as u32 + 150 * pixel[1] as u32 + 29 * pixel[2] as u32) >> 8;
                sums[cell_row + cell_column] += gray;
                counts[cell_row + cell_column] += 1;
            }
        }
        for ((out, sum), count) in self.thumbnail.iter_mut().zip(&sums).zip(&counts) {
            *out = *sum as f32 / (*count).max(1) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(width: u32, height: u32, square_at: Option<(usize, usize)>) -> Vec<u8> {
        let mut rgb = vec![90u8; width as usize * height as usize * 3];
        if let Some((sx, sy)) = square_at {
            for y in sy..sy + 40 {
                for x in sx..sx + 40 {
                    let i = (y * width as usize + x) * 3;
                    rgb[i..i + 3].copy_from_slice(&[230, 200, 180]);
                }
            }
        }
        rgb
    }

    fn view(rgb: &[u8], width: u32, height: u32) -> RgbView<'_> {
        RgbView { width, height, rgb }
    }

    #[test]
    fn first_frame_is_detected_static_frames_are_skipped_and_motion_is_seen() {
        let mut gate = MotionGate::new(MotionConfig::default()).unwrap();
        let still = frame(640, 360, Some((100, 100)));
        let first = gate.check(view(&still, 640, 360), 0, false).unwrap();
        assert!(first.detect && first.motion);
        let second = gate.check(view(&still, 640, 360), 100, false).unwrap();
        assert!(!second.detect && !second.motion, "{second:?}");
        let moved = frame(640, 360, Some((300, 150)));
        let third = gate.check(view(&moved, 640, 360), 200, false).unwrap();
        assert!(third.detect && third.motion, "{third:?}");
        assert!(third.changed_fraction > 0.005);
    }

    #[test]
    fn sensor_noise_below_the_pixel_threshold_is_not_motion() {
        let mut gate = MotionGate::new(MotionConfig::default()).unwrap();
        let base = frame(320, 180, None);
        gate.check(view(&base, 320, 180), 0, false).unwrap();
        // ±8 grey levels of per-pixel noise average out in the thumbnail.
        let noisy: Vec<u8> = base
            .iter()
            .enumerate()
            .map(|(i, v)| v.wrapping_add(((i * 7919) % 17) as u8).wrapping_sub(8))
            .collect();
        let decision = gate.check(view(&noisy, 320, 180), 100, false).unwrap();
        assert!(!decision.motion, "{decision:?}");
    }

    #[test]
    fn static_scene_with_live_tracks_is_still_detected_every_keepalive_interval() {
        let config = MotionConfig::default();
        let mut gate = MotionGate::new(config.clone()).unwrap();
        let still = frame(320, 180, Some((10, 10)));
        let mut detected_at = Vec::new();
        for step in 0..=30 {
            let at_ms = step * 100;
            if gate
                .check(view(&still, 320, 180), at_ms, true)
                .unwrap()
                .detect
            {
                detected_at.push(at_ms);
            }
        }
        assert_eq!(detected_at, vec![0, 1000, 2000, 3000]);
        // Without tracks the idle interval applies.
        let mut detected_idle = 0;
        for step in 31..=60 {
            if gate
                .check(view(&still, 320, 180), step * 100, false)
                .unwrap()
                .detect
            {
                detected_idle += 1;
            }
        }
        assert_eq!(
            detected_idle, 0,
            "idle interval is {} ms",
            config.idle_interval_ms
        );
    }

    #[test]
    fn a_person_who_stops_fades_into_the_background() {
        let mut gate = MotionGate::new(MotionConfig::default()).unwrap();
        gate.check(view(&frame(320, 180, None), 320, 180), 0, false)
            .unwrap();
        let standing = frame(320, 180, Some((100, 60)));
        let decisions: Vec<bool> = (1..60)
            .map(|step| {
                gate.check(view(&standing, 320, 180), step * 100, false)
                    .unwrap()
                    .motion
            })
            .collect();
        assert!(decisions[0]);
        assert!(!decisions[decisions.len() - 1]);
    }

    #[test]
    fn wrong_buffer_size_is_an_error_and_a_new_size_restarts_the_gate() {
        let mut gate = MotionGate::new(MotionConfig::default()).unwrap();
        let rgb = frame(320, 180, None);
        assert!(matches!(
            gate.check(view(&rgb, 321, 180), 0, false),
            Err(TrackError::FrameSize { .. })
        ));
        gate.check(view(&rgb, 320, 180), 0, false).unwrap();
        let smaller = frame(160, 90, None);
        assert!(
            gate.check(view(&smaller, 160, 90), 100, false)
                .unwrap()
                .motion
        );
    }
}
