//! Camera and video settings: what the `[[cameras]]` tables of the config file and the cameras
//! API hold. Validation lives here so the file and the API refuse the same things.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use utoipa::ToSchema;

/// A camera's identifier: a short slug chosen by the operator (`gate-north`), stable across
/// restarts and used in URLs, metrics labels and recordings' folder names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "gate-north")]
pub struct CameraId(pub String);

impl CameraId {
    /// 1–64 characters of `a-z 0-9 - _`, starting with a letter or digit: safe as a path
    /// component and a Prometheus label value.
    pub fn parse(text: &str) -> Result<Self, CameraConfigError> {
        let valid = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && text
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid {
            Ok(Self(text.to_string()))
        } else {
            Err(CameraConfigError(format!(
                "camera id {text:?} must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CameraId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct CameraConfigError(pub String);

/// RTSP transport for the media packets. TCP is the default: it survives NAT and lossy links;
/// UDP has lower latency on a clean LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RtspTransport {
    #[default]
    Tcp,
    Udp,
}

/// A polygon in normalised frame coordinates (0..1 on both axes, origin top-left), so zones
/// survive a change of analysis resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Vec<Vec<f32>>)]
pub struct Polygon(pub Vec<[f32; 2]>);

impl Polygon {
    /// Even-odd ray casting; points on an edge may fall either way.
    pub fn contains(&self, point: [f32; 2]) -> bool {
        let vertices = &self.0;
        let mut inside = false;
        let mut previous = match vertices.last() {
            Some(p) => *p,
            None => return false,
        };
        for &current in vertices {
            let crosses = (current[1] > point[1]) != (previous[1] > point[1]);
            if crosses {
                let x_at = (previous[0] - current[0]) * (point[1] - current[1])
                    / (previous[1] - current[1])
                    + current[0];
                if point[0] < x_at {
                    inside = !inside;
                }
            }
            previous = current;
        }
        inside
    }

    fn validate(&self, what: &str) -> Result<(), CameraConfigError> {
        if self.0.len() < 3 {
            return Err(CameraConfigError(format!(
                "a {what} polygon needs at least 3 points"
            )));
        }
        if self
            .0
            .iter()
            .flatten()
            .any(|v| !v.is_finite() || !(0.0..=1.0).contains(v))
        {
            return Err(CameraConfigError(format!(
                "{what} polygon coordinates are fractions of the frame, between 0 and 1"
            )));
        }
        Ok(())
    }
}

/// Per-camera recording retention; unset limits fall back to `[video]`'s.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionLimits {
    /// Segments older than this are deleted.
    pub max_age_hours: Option<f64>,
    /// When the camera's segments exceed this many bytes, the oldest are deleted.
    pub max_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CameraConfig {
    pub id: CameraId,
    /// Human-readable name; the id when unset.
    pub name: Option<String>,
    /// `rtsp://`, `rtsps://`, `http(s)://` (MJPEG, HLS `.m3u8`, or anything ffmpeg reads), or a
    /// local file path (optionally `file://`).
    pub url: String,
    /// Lower-resolution stream analysed instead of `url` (recording still uses `url`).
    pub substream_url: Option<String>,
    pub enabled: bool,
    pub rtsp_transport: RtspTransport,
    /// Frames analysed per second (the decoder drops the rest before they reach vigil).
    pub analysis_fps: f32,
    /// Frames are scaled to this width for analysis (aspect kept); unset = source width.
    pub analysis_width: Option<u32>,
    /// Local files only: start again at the end (demos, tests).
    pub loop_file: bool,
    /// Local files only: read at the file's own frame rate, as a camera would deliver it.
    /// Off = as fast as analysis keeps up (batch processing of footage).
    pub realtime: bool,
    /// Faces are only considered when their centre lies inside one of these; empty = anywhere.
    pub detection_zones: Vec<Polygon>,
    /// Faces centred inside a mask are ignored, and the masked area does not count as motion.
    pub masks: Vec<Polygon>,
    /// ffmpeg `-hwaccel` value (`auto`, `vaapi`, `cuda`, ...); unset = software decoding.
    pub hwaccel: Option<String>,
    /// A stream that delivers no frame for this long is restarted.
    pub stall_timeout_secs: f32,
    /// Record the stream (stream copy, no re-encode) into segments under `[video] recordings_dir`.
    pub record: bool,
    pub retention: RetentionLimits,
}

impl Default for CameraConfig {
    fn default() -> Self {
        Self {
            id: CameraId(String::new()),
            name: None,
            url: String::new(),
            substream_url: None,
            enabled: true,
            rtsp_transport: RtspTransport::Tcp,
            analysis_fps: 10.0,
            analysis_width: None,
            loop_file: false,
            realtime: true,
            detection_zones: Vec::new(),
            masks: Vec::new(),
            hwaccel: None,
            stall_timeout_secs: 5.0,
            record: false,
            retention: RetentionLimits::default(),
        }
    }
}

/// What kind of source a URL names; decides the ffmpeg input options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    Rtsp,
    Http,
    Hls,
    File(PathBuf),
}

impl SourceKind {
    pub fn of(url: &str) -> Result<Self, CameraConfigError> {
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("rtsp://") || lower.starts_with("rtsps://") {
            Ok(Self::Rtsp)
        } else if lower.starts_with("http://") || lower.starts_with("https://") {
            let path = lower.split(['?', '#']).next().unwrap_or(&lower);
            if path.ends_with(".m3u8") {
                Ok(Self::Hls)
            } else {
                Ok(Self::Http)
            }
        } else if let Some(path) = url.strip_prefix("file://") {
            Ok(Self::File(PathBuf::from(path)))
        } else if url.contains("://") {
            Err(CameraConfigError(format!(
                "unsupported camera URL scheme in {url:?}: use rtsp://, rtsps://, http(s):// or a file path"
            )))
        } else if url.trim().is_empty() {
            Err(CameraConfigError("camera url is empty".into()))
        } else {
            Ok(Self::File(PathBuf::from(url)))
        }
    }
}

impl CameraConfig {
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.id.as_str())
    }

    /// The source analysed: the sub-stream when one is set.
    pub fn analysis_url(&self) -> &str {
        self.substream_url.as_deref().unwrap_or(&self.url)
    }

    pub fn validate(&self) -> Result<(), CameraConfigError> {
        CameraId::parse(&self.id.0)?;
        let kind = SourceKind::of(&self.url)?;
        if let Some(sub) = &self.substream_url {
            SourceKind::of(sub)?;
        }
        if !(self.analysis_fps.is_finite() && self.analysis_fps > 0.0 && self.analysis_fps <= 60.0)
        {
            return Err(CameraConfigError(format!(
                "analysis_fps must be above 0 and at most 60, got {}",
                self.analysis_fps
            )));
        }
        if let Some(width) = self.analysis_width {
            if !(64..=7680).contains(&width) {
                return Err(CameraConfigError(format!(
                    "analysis_width must be between 64 and 7680, got {width}"
                )));
            }
        }
        if !(self.stall_timeout_secs.is_finite() && self.stall_timeout_secs >= 0.5) {
            return Err(CameraConfigError(
                "stall_timeout_secs must be at least 0.5".into(),
            ));
        }
        if self.loop_file && !matches!(kind, SourceKind::File(_)) {
            return Err(CameraConfigError(
                "loop_file applies to local files only".into(),
            ));
        }
        if let Some(hw) = &self.hwaccel {
            if hw.is_empty() || !hw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(CameraConfigError(format!(
                    "hwaccel {hw:?} is not an ffmpeg hwaccel name"
                )));
            }
        }
        for zone in &self.detection_zones {
            zone.validate("detection zone")?;
        }
        for mask in &self.masks {
            mask.validate("mask")?;
        }
        if let Some(age) = self.retention.max_age_hours {
            if !(age.is_finite() && age > 0.0) {
                return Err(CameraConfigError(
                    "retention.max_age_hours must be positive".into(),
                ));
            }
        }
        Ok(())
    }

    /// Whether a face centred at `point` (normalised) is inside the analysed area.
    pub fn accepts_point(&self, point: [f32; 2]) -> bool {
        let in_zone = self.detection_zones.is_empty()
            || self.detection_zones.iter().any(|z| z.contains(point));
        in_zone && !self.masks.iter().any(|m| m.contains(point))
    }
}

/// `[video]`: decoding supervision, recording and its retention, across cameras.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoConfig {
    /// The ffmpeg executable.
    pub ffmpeg: PathBuf,
    /// Recording segments, one folder per camera; relative paths are under `data_dir`.
    pub recordings_dir: PathBuf,
    /// Length of a recording segment.
    pub segment_seconds: u32,
    /// First wait before restarting a failed stream; doubles up to `backoff_max_secs` (8 s by
    /// default: a camera that comes back is picked up within about 10 s).
    pub backoff_initial_secs: f32,
    pub backoff_max_secs: f32,
    /// Recording segments older than this are deleted (all cameras).
    pub retention_max_age_hours: f64,
    /// All cameras' segments together stay under this many bytes; 0 = no global byte limit.
    pub retention_max_bytes: u64,
    /// The oldest segments are deleted while the recordings' file system has less free space.
    pub min_free_bytes: u64,
    /// How often retention runs.
    pub retention_interval_secs: f32,
    /// Skip face detection on frames where nothing moved (see docs/design/006-tracker.md).
    pub motion_gating: bool,
    /// Face detector for camera frames (a manifest name); empty = `[pipeline] detector`.
    /// Chosen for video: the cost of a camera is mostly its detector (docs/design/006).
    pub detector: String,
    /// Longer side of the video detector's input, pixels (a multiple of 32); the shorter side
    /// follows the frame's shape (640 → 640×384 for 16:9).
    pub detector_input_pixels: u32,
    /// Minimum detector confidence on camera frames; unset = the detector's recommended one.
    pub detection_threshold: Option<f32>,
    /// Sightings that matched no enrolled subject are deleted (row, crop, embeddings, search
    /// entry) this long after they ended.
    pub unmatched_sighting_retention_hours: f64,
    /// Sightings that matched a subject are kept this long (until per-case retention).
    pub matched_sighting_retention_hours: f64,
    /// Motion gate and tracker settings (`[video.tracking.motion]`, `[video.tracking.tracker]`,
    /// see `vigil_track::TrackConfig`); unset keys keep their defaults.
    pub tracking: toml::Table,
}

impl Default for VideoConfig {
    fn default() -> Self {
        Self {
            ffmpeg: PathBuf::from("ffmpeg"),
            recordings_dir: PathBuf::from("recordings"),
            segment_seconds: 10,
            backoff_initial_secs: 0.5,
            backoff_max_secs: 8.0,
            retention_max_age_hours: 24.0 * 7.0,
            retention_max_bytes: 0,
            min_free_bytes: 1 << 30,
            retention_interval_secs: 30.0,
            motion_gating: true,
            detector: "scrfd_500m".into(),
            detector_input_pixels: 640,
            detection_threshold: None,
            unmatched_sighting_retention_hours: 72.0,
            matched_sighting_retention_hours: 24.0 * 30.0,
            tracking: toml::Table::new(),
        }
    }
}

impl VideoConfig {
    pub fn validate(&self) -> Result<(), CameraConfigError> {
        if !(1..=3600).contains(&self.segment_seconds) {
            return Err(CameraConfigError(
                "video.segment_seconds must be between 1 and 3600".into(),
            ));
        }
        let backoff_ok = self.backoff_initial_secs.is_finite()
            && self.backoff_initial_secs > 0.0
            && self.backoff_max_secs >= self.backoff_initial_secs;
        if !backoff_ok {
            return Err(CameraConfigError(
                "video.backoff_initial_secs must be positive and at most backoff_max_secs".into(),
            ));
        }
        if !(self.retention_max_age_hours.is_finite() && self.retention_max_age_hours > 0.0) {
            return Err(CameraConfigError(
                "video.retention_max_age_hours must be positive".into(),
            ));
        }
        for (hours, name) in [
            (
                self.unmatched_sighting_retention_hours,
                "unmatched_sighting_retention_hours",
            ),
            (
                self.matched_sighting_retention_hours,
                "matched_sighting_retention_hours",
            ),
        ] {
            if !(hours.is_finite() && hours > 0.0) {
                return Err(CameraConfigError(format!("video.{name} must be positive")));
            }
        }
        if !(self.retention_interval_secs.is_finite() && self.retention_interval_secs >= 0.1) {
            return Err(CameraConfigError(
                "video.retention_interval_secs must be at least 0.1".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_ids_are_slugs() {
        assert!(CameraId::parse("gate-north_2").is_ok());
        for bad in ["", "Gate", "-x", "a/b", "a b", &"x".repeat(65)] {
            assert!(CameraId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn source_kinds_follow_the_url() {
        assert_eq!(SourceKind::of("rtsp://h/s").unwrap(), SourceKind::Rtsp);
        assert_eq!(
            SourceKind::of("http://h/live.m3u8?x=1").unwrap(),
            SourceKind::Hls
        );
        assert_eq!(SourceKind::of("https://h/mjpeg").unwrap(), SourceKind::Http);
        assert_eq!(
            SourceKind::of("file:///tmp/a.mp4").unwrap(),
            SourceKind::File("/tmp/a.mp4".into())
        );
        assert_eq!(
            SourceKind::of("clips/a.mp4").unwrap(),
            SourceKind::File("clips/a.mp4".into())
        );
        assert!(SourceKind::of("ftp://h/a").is_err());
        assert!(SourceKind::of("  ").is_err());
    }

    #[test]
    fn polygons_contain_their_inside_only() {
        let square = Polygon(vec![[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8]]);
        assert!(square.contains([0.5, 0.5]));
        assert!(!square.contains([0.1, 0.5]));
        assert!(!square.contains([0.5, 0.9]));
        let camera = CameraConfig {
            id: CameraId::parse("c").unwrap(),
            url: "a.mp4".into(),
            detection_zones: vec![square.clone()],
            masks: vec![Polygon(vec![[0.4, 0.4], [0.6, 0.4], [0.6, 0.6]])],
            ..CameraConfig::default()
        };
        camera.validate().unwrap();
        assert!(camera.accepts_point([0.3, 0.3]));
        assert!(!camera.accepts_point([0.55, 0.45]), "masked");
        assert!(!camera.accepts_point([0.95, 0.95]), "outside the zone");
    }

    #[test]
    fn invalid_cameras_are_refused_with_a_reason() {
        let base = CameraConfig {
            id: CameraId::parse("c").unwrap(),
            url: "rtsp://127.0.0.1/x".into(),
            ..CameraConfig::default()
        };
        base.validate().unwrap();
        let cases = [
            CameraConfig {
                analysis_fps: 0.0,
                ..base.clone()
            },
            CameraConfig {
                loop_file: true,
                ..base.clone()
            },
            CameraConfig {
                hwaccel: Some("cuda; rm -rf".into()),
                ..base.clone()
            },
            CameraConfig {
                masks: vec![Polygon(vec![[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]])],
                ..base.clone()
            },
            CameraConfig {
                url: "gopher://x".into(),
                ..base.clone()
            },
        ];
        for case in cases {
            assert!(case.validate().is_err(), "{case:?} accepted");
        }
    }
}
