//! Configuration: a TOML file, overridden by `VIGIL_*` environment variables.
//!
//! `VIGIL_SERVER__BIND=0.0.0.0:9000` sets `[server] bind`; a double underscore separates table
//! levels. Values are parsed as TOML scalars when they parse, as strings otherwise.

use crate::camera::{CameraConfig, IpNetwork, VideoConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `VIGIL_*` variables that are not configuration keys: the config file's path, the log
/// filter, and the shared data folder used by tests, the demo and the benchmarks.
pub const NOT_CONFIG_VARIABLES: &[&str] = &[
    "CONFIG",
    "LOG",
    "SHARED_DIR",
    "SEAL_KEYS",
    // who acts, under which case and why, on the command line
    "USER",
    "CASE",
    "REASON",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config is invalid: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VigilConfig {
    /// Where the database and media live.
    pub data_dir: PathBuf,
    /// Folder holding the ONNX models (as installed by `vigil models fetch`).
    pub models_dir: PathBuf,
    /// Path of libonnxruntime.so; when empty, the `ORT_DYLIB_PATH` variable or the project's
    /// `.venv` is searched.
    pub onnxruntime_library: Option<PathBuf>,
    /// Intra-op threads per model session; 0 = cores / workers (at least 1).
    pub threads: usize,
    /// Photos analysed side by side, each by its own model sessions; 0 = one per core.
    /// onnxruntime spreads one small tensor poorly over cores (measured in BENCHMARKS.md: two
    /// one-thread workers give 2.6× the throughput of one two-thread session), so vigil
    /// parallelises across photos rather than inside one.
    pub workers: usize,
    pub pipeline: PipelineConfig,
    pub quality: QualityConfig,
    pub matching: MatchingConfig,
    pub server: ServerConfig,
    pub misuse: MisuseConfig,
    pub video: VideoConfig,
    pub encryption: EncryptionConfig,
    pub webhooks: WebhooksConfig,
    /// Cameras started with the server; the cameras API adds, changes and removes more.
    pub cameras: Vec<CameraConfig>,
}

/// Encryption at rest (docs/design/011). Keys come from `key_file`, or else from the
/// `VIGIL_SEAL_KEYS` variable (never parsed as configuration); with neither, nothing is sealed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionConfig {
    /// Key file: one key per line (`vigil keys generate`), the last one active. Relative to
    /// the working directory, like every other path here.
    pub key_file: Option<PathBuf>,
}

/// Where webhooks may be sent (docs/design/010). By default only https to public addresses:
/// private (RFC 1918, fc00::/7), loopback, link-local (cloud metadata), unspecified and
/// multicast targets are refused, checked on the resolved address at each send.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Host names or addresses, as written in webhook URLs, that an admin trusts: plain http
    /// and private or loopback addresses are allowed for them (an on-premises receiver).
    pub allowed_hosts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Detector model name from the manifest, e.g. `yunet`, `scrfd_500m`, `scrfd_2.5g`, `retinaface_mb025`.
    pub detector: String,
    /// Recognizer model name from the manifest: `w600k_mbf_int8` or `fr_feature`.
    pub recognizer: String,
    /// Square network input for detectors with dynamic input; images larger than this are tiled.
    pub detector_input_pixels: u32,
    /// Minimum detector confidence for a box to count as a face; unset = the detector's
    /// recommended threshold from the model manifest.
    pub detection_threshold: Option<f32>,
    /// Overlap between neighbouring tiles, as a fraction of the tile side.
    pub tile_overlap: f32,
    /// Images whose longer side exceeds this many multiples of the detector input are tiled
    /// (4 × 640: photos up to 2560 px are found whole in one pass, see docs/design/001).
    pub tile_above_factor: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QualityConfig {
    /// Faces narrower than this (inter-box width, source pixels) are not usable.
    pub min_face_pixels: f32,
    /// Minimum variance of the Laplacian of the aligned crop.
    pub min_sharpness: f32,
    /// Maximum estimated yaw, degrees.
    pub max_yaw_degrees: f32,
    /// Maximum estimated pitch, degrees.
    pub max_pitch_degrees: f32,
    /// Minimum detector score for a usable face.
    pub min_detector_score: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MatchingConfig {
    /// A candidate is reported as a match only when its calibrated false-match rate is at or
    /// below this value.
    pub false_match_rate: f64,
    /// The loosest false-match rate a caller may ask for (identify, search, watchlists, access
    /// reports); a request above it is refused, and no hit above it joins a case.
    pub max_false_match_rate: f64,
    /// Candidates returned per face in 1:N search.
    pub top_k: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    /// Largest accepted request body.
    pub max_upload_bytes: usize,
    /// Largest accepted image, width × height, checked from the header before decoding.
    pub max_image_pixels: u64,
    /// A connection must send its request headers within this many seconds.
    pub header_timeout_secs: u64,
    /// A request body must arrive whole within this many seconds of the headers.
    pub body_timeout_secs: u64,
    /// Requests handled at once; beyond, 503 `overloaded` with Retry-After.
    pub max_in_flight: usize,
    /// Requests one client address may have in flight; beyond, 429 `throttled`.
    pub max_in_flight_per_client: usize,
    /// Open connections one client address may hold; beyond, new ones are closed at once.
    pub max_connections_per_client: usize,
    /// Reverse proxies whose `X-Forwarded-For` is believed (addresses or ranges, e.g.
    /// `"10.0.0.5"`, `"10.0.0.0/24"`). Empty: the peer address is the client, whatever the
    /// header says, so a caller cannot dodge throttling by writing the header.
    pub trusted_proxies: Vec<IpNetwork>,
}

impl Default for VigilConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(".vigil"),
            models_dir: PathBuf::from("models"),
            onnxruntime_library: None,
            threads: 0,
            workers: 0,
            pipeline: PipelineConfig::default(),
            quality: QualityConfig::default(),
            matching: MatchingConfig::default(),
            server: ServerConfig::default(),
            misuse: MisuseConfig::default(),
            video: VideoConfig::default(),
            encryption: EncryptionConfig::default(),
            webhooks: WebhooksConfig::default(),
            cameras: Vec::new(),
        }
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            detector: "scrfd_2.5g".into(),
            recognizer: "w600k_mbf_int8".into(),
            detector_input_pixels: 640,
            detection_threshold: None,
            tile_overlap: 0.25,
            tile_above_factor: 4.0,
        }
    }
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self {
            min_face_pixels: 32.0,
            min_sharpness: 15.0,
            max_yaw_degrees: 50.0,
            max_pitch_degrees: 40.0,
            min_detector_score: 0.5,
        }
    }
}

impl Default for MatchingConfig {
    fn default() -> Self {
        Self {
            false_match_rate: 1e-5,
            max_false_match_rate: 1e-3,
            top_k: 5,
        }
    }
}

/// When a user's searches (identify, verify, search) raise an alert for auditors; see
/// docs/design/013-misuse-detection.md. Days are local days at `utc_offset_minutes`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MisuseConfig {
    /// How often `vigil serve` scans the audit log.
    pub scan_interval_secs: f32,
    /// A user's norm: their mean searches per day over this many previous days.
    pub baseline_days: u32,
    /// "Far above the norm": more than this many times the norm...
    pub volume_factor: f64,
    /// ...and more than this many searches in the day (so a quiet user's first busy day is not
    /// an alert by itself).
    pub min_daily_searches: u32,
    /// Working hours, local: searches at or after `working_hours_end` or before
    /// `working_hours_start` are off hours.
    pub working_hours_start: u8,
    pub working_hours_end: u8,
    /// Whether Saturday and Sunday count as off hours all day.
    pub weekends_off: bool,
    /// The site's offset from UTC, for working hours and day boundaries.
    pub utc_offset_minutes: i32,
    /// Refused attempts under a case the user is not in (or one that is closed or absent) in a
    /// day that raise an alert.
    pub outside_case_attempts: u32,
    /// Requests refused for lacking the permission (probing for what one may not do) in a day
    /// above which an alert is raised; repeats counted in the refusal log's summaries included.
    pub refusals_per_day: u32,
}

impl Default for MisuseConfig {
    fn default() -> Self {
        Self {
            scan_interval_secs: 300.0,
            baseline_days: 28,
            volume_factor: 3.0,
            min_daily_searches: 20,
            working_hours_start: 7,
            working_hours_end: 20,
            weekends_off: false,
            utc_offset_minutes: 0,
            outside_case_attempts: 1,
            refusals_per_day: 20,
        }
    }
}

impl MisuseConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |what: &str| Err(ConfigError::Invalid(format!("misuse.{what}")));
        // NaN fails too.
        if self.scan_interval_secs.is_nan() || self.scan_interval_secs < 1.0 {
            return invalid("scan_interval_secs must be at least 1");
        }
        if self.baseline_days == 0 || self.baseline_days > 366 {
            return invalid("baseline_days must be 1 to 366");
        }
        if self.volume_factor.is_nan() || self.volume_factor < 1.0 {
            return invalid("volume_factor must be at least 1");
        }
        if self.working_hours_start > 23
            || self.working_hours_end > 24
            || self.working_hours_start >= self.working_hours_end
        {
            return invalid("working hours must satisfy 0 <= start < end <= 24");
        }
        if self.utc_offset_minutes.abs() > 14 * 60 {
            return invalid("utc_offset_minutes must be within ±14 h");
        }
        if self.outside_case_attempts == 0 {
            return invalid("outside_case_attempts must be at least 1");
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            max_upload_bytes: 20 * 1024 * 1024,
            max_image_pixels: 120_000_000,
            header_timeout_secs: 10,
            body_timeout_secs: 60,
            max_in_flight: 256,
            max_in_flight_per_client: 64,
            max_connections_per_client: 128,
            trusted_proxies: Vec::new(),
        }
    }
}

impl VigilConfig {
    /// Loads `path` (when given) and applies `VIGIL_*` overrides from `environment`.
    pub fn load(
        path: Option<&Path>,
        environment: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut document = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Invalid(e.to_string()))?
            }
            None => toml::Table::new(),
        };
        for (key, value) in environment {
            let Some(rest) = key.strip_prefix("VIGIL_") else {
                continue;
            };
            if NOT_CONFIG_VARIABLES.contains(&rest) {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if path.iter().any(|p| p.is_empty()) {
                continue;
            }
            set_path(&mut document, &path, parse_scalar(&value));
        }
        let config: Self = toml::Value::Table(document)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Workers to run, given the machine's core count.
    pub fn resolved_workers(&self, cores: usize) -> usize {
        if self.workers == 0 {
            cores.max(1)
        } else {
            self.workers
        }
    }

    /// Intra-op threads per session, given the machine's core count.
    pub fn resolved_threads(&self, cores: usize) -> usize {
        if self.threads == 0 {
            (cores / self.resolved_workers(cores)).max(1)
        } else {
            self.threads
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let rate = self.matching.false_match_rate;
        if !(rate > 0.0 && rate < 1.0) {
            return Err(ConfigError::Invalid(format!(
                "matching.false_match_rate must be in (0, 1), got {rate}"
            )));
        }
        let ceiling = self.matching.max_false_match_rate;
        if !(ceiling > 0.0 && ceiling < 1.0) || rate > ceiling {
            return Err(ConfigError::Invalid(format!(
                "matching.max_false_match_rate must be in (0, 1) and at least \
                 matching.false_match_rate ({rate}), got {ceiling}"
            )));
        }
        if self.matching.top_k == 0 {
            return Err(ConfigError::Invalid(
                "matching.top_k must be at least 1".into(),
            ));
        }
        if self.pipeline.detector_input_pixels < 64
            || !self.pipeline.detector_input_pixels.is_multiple_of(32)
        {
            return Err(ConfigError::Invalid(
                "pipeline.detector_input_pixels must be a multiple of 32, at least 64".into(),
            ));
        }
        if !(0.0..0.9).contains(&self.pipeline.tile_overlap) {
            return Err(ConfigError::Invalid(
                "pipeline.tile_overlap must be in [0, 0.9)".into(),
            ));
        }
        self.misuse.validate()?;
        self.video
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        let sources = self.video.source_policy();
        for camera in &self.cameras {
            camera
                .validate_under(&sources)
                .map_err(|e| ConfigError::Invalid(format!("camera {:?}: {e}", camera.id.0)))?;
            if !seen.insert(&camera.id) {
                return Err(ConfigError::Invalid(format!(
                    "camera id {:?} is listed twice",
                    camera.id.0
                )));
            }
        }
        Ok(())
    }
}

fn parse_scalar(value: &str) -> toml::Value {
    format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()))
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_values() {
        let dir = std::env::temp_dir().join(format!("vigil-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("vigil.toml");
        std::fs::write(
            &file,
            "data_dir = \"/a\"\n[server]\nbind = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        let config = VigilConfig::load(
            Some(&file),
            [
                ("VIGIL_SERVER__BIND".to_string(), "127.0.0.1:2".to_string()),
                (
                    "VIGIL_MATCHING__FALSE_MATCH_RATE".to_string(),
                    "1e-4".to_string(),
                ),
                ("OTHER".to_string(), "x".to_string()),
                ("VIGIL_SHARED_DIR".to_string(), "/somewhere".to_string()),
                ("VIGIL_LOG".to_string(), "debug".to_string()),
                // keys, not configuration: never parsed (nor echoed in an error)
                ("VIGIL_SEAL_KEYS".to_string(), "c2VjcmV0".to_string()),
                (
                    "VIGIL_ENCRYPTION__KEY_FILE".to_string(),
                    "/etc/vigil/keys".to_string(),
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            config.encryption.key_file,
            Some(PathBuf::from("/etc/vigil/keys"))
        );
        assert_eq!(config.data_dir, PathBuf::from("/a"));
        assert_eq!(config.server.bind, "127.0.0.1:2");
        assert_eq!(config.matching.false_match_rate, 1e-4);
    }

    #[test]
    fn unknown_keys_and_bad_rates_are_refused() {
        let none: Vec<(String, String)> = vec![];
        assert!(VigilConfig::load(None, none.clone()).is_ok());
        let bad = vec![(
            "VIGIL_MATCHING__FALSE_MATCH_RATE".to_string(),
            "2".to_string(),
        )];
        assert!(VigilConfig::load(None, bad).is_err());
        let unknown = vec![("VIGIL_NOPE".to_string(), "1".to_string())];
        assert!(VigilConfig::load(None, unknown).is_err());
    }
}

#[cfg(test)]
mod parallelism_tests {
    use super::*;

    #[test]
    fn automatic_parallelism_gives_one_thread_per_worker_per_core() {
        let config = VigilConfig::default();
        assert_eq!(config.resolved_workers(8), 8);
        assert_eq!(config.resolved_threads(8), 1);
        let config = VigilConfig {
            workers: 2,
            ..VigilConfig::default()
        };
        assert_eq!(config.resolved_threads(8), 4);
        let config = VigilConfig {
            workers: 3,
            threads: 5,
            ..VigilConfig::default()
        };
        assert_eq!(
            (config.resolved_workers(2), config.resolved_threads(2)),
            (3, 5)
        );
    }
}

#[cfg(test)]
mod example_file_tests {
    use super::*;

    #[test]
    fn the_example_configuration_file_parses_to_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vigil.example.toml");
        let none: Vec<(String, String)> = Vec::new();
        let config = VigilConfig::load(Some(&path), none).unwrap();
        assert_eq!(config, VigilConfig::default());
    }
}
