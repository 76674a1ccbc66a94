//! A camera's live picture: its latest analysed frame with the faces being tracked on it.
//!
//! Kept only while someone watches: a viewer's request marks the camera watched for
//! [`WATCH_TTL_MS`], and only then does the camera's analysis thread copy each analysed frame
//! (one memcpy of the analysis-sized frame). Encoding, and drawing the boxes, happen in the
//! viewer's request, so an unwatched camera costs nothing and each viewer pays for what it asks.

use crate::ServiceError;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use vigil_track::{ActiveTrack, TrackState};

/// How long one request keeps a camera's live picture updated.
pub const WATCH_TTL_MS: i64 = 5_000;
const LIVE_JPEG_QUALITY: u8 = 75;
/// Box colours: a confirmed track, and one not yet confirmed (tentative or lost).
const CONFIRMED_RGB: [u8; 3] = [0, 200, 83];
const TENTATIVE_RGB: [u8; 3] = [255, 179, 0];

/// One face on the live picture.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveFace {
    pub track: u64,
    /// Left, top, right, bottom in frame pixels.
    pub bbox: [f32; 4],
    pub confirmed: bool,
}

/// The latest analysed frame of a camera while watched.
#[derive(Debug, Clone)]
pub struct LiveFrame {
    pub width: u32,
    pub height: u32,
    /// The frame's wall-clock time (unix ms).
    pub at_ms: i64,
    rgb: Vec<u8>,
    pub faces: Vec<LiveFace>,
}

impl LiveFrame {
    pub fn new(width: u32, height: u32, at_ms: i64, rgb: Vec<u8>, tracks: &[ActiveTrack]) -> Self {
        let faces = tracks
            .iter()
            .filter(|track| track.state != TrackState::Lost)
            .map(|track| {
                let b = track.bbox;
                LiveFace {
                    track: track.track_id.0,
                    bbox: [b.x1, b.y1, b.x2, b.y2],
                    confirmed: track.state == TrackState::Confirmed,
                }
            })
            .collect();
        Self {
            width,
            height,
            at_ms,
            rgb,
            faces,
        }
    }

    /// The picture as JPEG with a rectangle around each tracked face.
    pub fn to_jpeg(&self) -> Result<Vec<u8>, ServiceError> {
        let mut rgb = self.rgb.clone();
        for face in &self.faces {
            let colour = if face.confirmed {
                CONFIRMED_RGB
            } else {
                TENTATIVE_RGB
            };
            draw_rectangle(&mut rgb, self.width, self.height, face.bbox, colour);
        }
        let (Ok(width), Ok(height)) = (u16::try_from(self.width), u16::try_from(self.height))
        else {
            return Err(ServiceError::Invalid(format!(
                "a {}x{} frame is too large for a JPEG",
                self.width, self.height
            )));
        };
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, LIVE_JPEG_QUALITY)
            .encode(&rgb, width, height, jpeg_encoder::ColorType::Rgb)
            .map_err(|e| ServiceError::Invalid(format!("cannot encode the live picture: {e}")))?;
        Ok(out)
    }
}

/// A 3-pixel rectangle, clipped to the frame.
fn draw_rectangle(rgb: &mut [u8], width: u32, height: u32, bbox: [f32; 4], colour: [u8; 3]) {
    const THICKNESS: i64 = 3;
    let (w, h) = (i64::from(width), i64::from(height));
    if w == 0 || h == 0 || rgb.len() < (w * h * 3) as usize {
        return;
    }
    let clamp_x = |v: f32| (v.round() as i64).clamp(0, w - 1);
    let clamp_y = |v: f32| (v.round() as i64).clamp(0, h - 1);
    let (x1, y1, x2, y2) = (
        clamp_x(bbox[0]),
        clamp_y(bbox[1]),
        clamp_x(bbox[2]),
        clamp_y(bbox[3]),
    );
    let mut paint = |x: i64, y: i64| {
        let at = ((y * w + x) * 3) as usize;
        rgb[at..at + 3].copy_from_slice(&colour);
    };
    for t in 0..THICKNESS {
        for x in x1..=x2 {
            paint(x, (y1 + t).min(h - 1));
            paint(x, (y2 - t).max(0));
        }
        for y in y1..=y2 {
            paint((x1 + t).min(w - 1), y);
            paint((x2 - t).max(0), y);
        }
    }
}

/// One camera's live picture and whether anyone watches it.
#[derive(Debug, Default)]
pub struct LivePicture {
    watched_until_ms: AtomicI64,
    latest: Mutex<Option<Arc<LiveFrame>>>,
}

impl LivePicture {
    /// A viewer asks: keep the picture updated for the next [`WATCH_TTL_MS`].
    pub fn watch(&self, now_ms: i64) {
        self.watched_until_ms
            .fetch_max(now_ms + WATCH_TTL_MS, Ordering::Relaxed);
    }

    /// Whether the analysis thread should keep this frame.
    pub fn wanted(&self, now_ms: i64) -> bool {
        now_ms <= self.watched_until_ms.load(Ordering::Relaxed)
    }

    pub fn store(&self, frame: LiveFrame) {
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(frame));
    }

    /// The latest frame, if one was kept since watching began.
    pub fn latest(&self) -> Option<Arc<LiveFrame>> {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_camera_keeps_frames_only_while_watched() {
        let live = LivePicture::default();
        assert!(!live.wanted(1_000));
        live.watch(1_000);
        assert!(live.wanted(1_000 + WATCH_TTL_MS));
        assert!(!live.wanted(1_001 + WATCH_TTL_MS));
    }

    #[test]
    fn boxes_are_drawn_clipped_to_the_frame_and_the_picture_decodes() {
        let (width, height) = (64u32, 48u32);
        let frame = LiveFrame {
            width,
            height,
            at_ms: 0,
            rgb: vec![0; (width * height * 3) as usize],
            faces: vec![LiveFace {
                track: 1,
                bbox: [10.0, 8.0, 200.0, 30.0],
                confirmed: true,
            }],
        };
        let jpeg = frame.to_jpeg().unwrap();
        let decoded = image::load_from_memory(&jpeg).unwrap().to_rgb8();
        assert_eq!((decoded.width(), decoded.height()), (width, height));
        // the top edge is green, the centre of the box is not painted
        let edge = decoded.get_pixel(30, 9);
        assert!(edge[1] > 120 && edge[0] < 80, "{edge:?}");
        let inside = decoded.get_pixel(30, 20);
        assert!(inside[1] < 60, "{inside:?}");
    }
}
