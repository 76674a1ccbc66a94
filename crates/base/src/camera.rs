//! Camera and video settings: what the `[[cameras]]` tables of the config file and the cameras
//! API hold. Validation lives here so the file and the API refuse the same things.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
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
    /// A local file, as written (relative paths are under `[video] media_root`).
    File(PathBuf),
}

/// The schemes a camera URL may use. Anything else that looks like `name:` is an ffmpeg
/// protocol (`concat:`, `subfile:`, `pipe:`, `data:`, ...) and is refused: those read local
/// files or descriptors, or stitch inputs together.
const NETWORK_SCHEMES: [&str; 4] = ["rtsp", "rtsps", "http", "https"];

impl SourceKind {
    /// Reads the kind from the URL's syntax alone; refuses pseudo-protocols, option-like URLs
    /// (`-i /etc/passwd`) and control characters. Whether a file or a host is allowed is
    /// [`SourcePolicy`]'s decision.
    pub fn of(url: &str) -> Result<Self, CameraConfigError> {
        if url.trim().is_empty() {
            return Err(CameraConfigError("camera url is empty".into()));
        }
        if url.starts_with('-') {
            return Err(CameraConfigError(format!(
                "camera url {:?} starts with '-': ffmpeg would read it as an option",
                redact_url(url)
            )));
        }
        if url.chars().any(|c| c.is_control()) || url.trim() != url {
            return Err(CameraConfigError(
                "camera url contains control characters or surrounding spaces".into(),
            ));
        }
        let Some(scheme) = scheme_of(url) else {
            return Ok(Self::File(PathBuf::from(url)));
        };
        let lower = scheme.to_ascii_lowercase();
        let rest = &url[scheme.len() + 1..];
        if NETWORK_SCHEMES.contains(&lower.as_str()) {
            if !rest.starts_with("//") || host_of(url).is_none_or(|h| h.is_empty()) {
                return Err(CameraConfigError(format!(
                    "camera url {:?} names no host",
                    redact_url(url)
                )));
            }
            return Ok(match lower.as_str() {
                "rtsp" | "rtsps" => Self::Rtsp,
                _ => {
                    let path = rest.split(['?', '#']).next().unwrap_or(rest);
                    if path.to_ascii_lowercase().ends_with(".m3u8") {
                        Self::Hls
                    } else {
                        Self::Http
                    }
                }
            });
        }
        if lower == "file" {
            // file:///abs, file:/abs and file://relative (the older spelling) all name a path.
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() || scheme_of(path).is_some() {
                return Err(CameraConfigError(format!(
                    "camera url {url:?} does not name a file"
                )));
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        Err(CameraConfigError(format!(
            "camera url scheme {scheme:?} is not allowed: use rtsp://, rtsps://, http(s):// or a file under [video] media_root"
        )))
    }
}

/// The `name` of a URL starting `name:` (RFC 3986 scheme syntax); `None` for a plain path.
fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut bytes = scheme.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    (first_ok && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))
        .then_some(scheme)
}

/// The authority of `scheme://[user[:password]@]host[:port]/...`, split at its last `@`.
fn authority_of(url: &str) -> Option<(Option<&str>, &str)> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    Some(match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, authority),
    })
}

/// The host of a network URL (brackets of an IPv6 literal removed), without port.
pub fn host_of(url: &str) -> Option<&str> {
    let (_, host_port) = authority_of(url)?;
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next();
    }
    Some(host_port.split(':').next().unwrap_or(host_port))
}

/// The port of a network URL: the explicit one, else the scheme's default.
pub fn port_of(url: &str) -> Option<u16> {
    let (_, host_port) = authority_of(url)?;
    let after_host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(_, rest)| rest).unwrap_or(""),
        None => host_port.split_once(':').map_or("", |(_, p)| p),
    };
    let explicit = after_host.strip_prefix(':').unwrap_or(after_host);
    if !explicit.is_empty() {
        return explicit.parse().ok();
    }
    match scheme_of(url)?.to_ascii_lowercase().as_str() {
        "rtsp" => Some(554),
        "rtsps" => Some(322),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The URL with any password replaced by `***` (`rtsp://user:***@host/...`): what logs, the
/// audit log and API answers show.
pub fn redact_url(url: &str) -> String {
    let Some((Some(userinfo), _)) = authority_of(url) else {
        return url.to_string();
    };
    let Some((user, _password)) = userinfo.split_once(':') else {
        return url.to_string();
    };
    let start = url.find("://").map_or(0, |i| i + 3);
    format!(
        "{}{user}:***@{}",
        &url[..start],
        &url[start + userinfo.len() + 1..]
    )
}

/// A range of addresses, `169.254.0.0/16` or `fe80::/10` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    address: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    pub fn parse(text: &str) -> Result<Self, CameraConfigError> {
        let invalid = || {
            CameraConfigError(format!(
                "{text:?} is not an address range (a.b.c.d/n or x::/n)"
            ))
        };
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.trim().parse().map_err(|_| invalid())?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| invalid())?,
            None => bits,
        };
        if prefix > bits {
            return Err(invalid());
        }
        Ok(Self { address, prefix })
    }

    /// IPv4-mapped IPv6 addresses (`::ffff:169.254.169.254`) count as their IPv4 address.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        match (self.address, address) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl Serialize for IpNetwork {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNetwork {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Address ranges no camera may be reached at unless the operator lists their own: link-local
/// (where cloud metadata services answer, 169.254.169.254), and the metadata addresses that
/// lie outside it (AWS's IPv6 one, Alibaba's).
pub fn default_denied_networks() -> Vec<IpNetwork> {
    [
        "169.254.0.0/16",
        "fe80::/10",
        "fd00:ec2::254/128",
        "100.100.100.200/32",
    ]
    .iter()
    .filter_map(|text| IpNetwork::parse(text).ok())
    .collect()
}

/// Which sources a camera may name: local files only under the media root, network hosts only
/// outside the denied ranges. Built from `[video]`; checked when a camera is added or changed
/// (on the URL as written) and each time its ffmpeg starts (on the addresses the host
/// resolves to, and on the file with its links followed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourcePolicy {
    /// Absolute; `None`: no local file may be a camera.
    pub media_root: Option<PathBuf>,
    pub denied_networks: Vec<IpNetwork>,
}

/// A source the policy accepted, as ffmpeg should be given it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedSource {
    /// The URL as configured (network sources).
    Network { kind: SourceKind, url: String },
    /// The file's absolute path, links resolved when it exists.
    File(PathBuf),
}

impl SourcePolicy {
    /// Checks a URL as written: the syntax, a file's place under the media root (its links
    /// followed when it exists), a literal address against the denied ranges. Host names are
    /// resolved only by [`SourcePolicy::check_resolved`], when the camera starts.
    pub fn check(&self, url: &str) -> Result<AllowedSource, CameraConfigError> {
        match SourceKind::of(url)? {
            SourceKind::File(path) => self.check_file(&path).map(AllowedSource::File),
            kind => {
                if let Some(host) = host_of(url) {
                    if let Some(address) = literal_address(host) {
                        self.check_address(url, address)?;
                    }
                }
                Ok(AllowedSource::Network {
                    kind,
                    url: url.to_string(),
                })
            }
        }
    }

    /// As `check`, and a network host's every resolved address checked against the denied
    /// ranges (a name that resolves into them is refused like the literal address).
    pub fn check_resolved(&self, url: &str) -> Result<AllowedSource, SourceRefusal> {
        let allowed = self.check(url).map_err(SourceRefusal::Refused)?;
        if let AllowedSource::Network { .. } = &allowed {
            let host = host_of(url).unwrap_or_default();
            let port = port_of(url).unwrap_or(0);
            let addresses: Vec<std::net::SocketAddr> = (host, port)
                .to_socket_addrs()
                .map_err(|e| SourceRefusal::Unresolved(format!("{host}: {e}")))?
                .collect();
            for address in addresses {
                self.check_address(url, address.ip())
                    .map_err(SourceRefusal::Refused)?;
            }
        }
        Ok(allowed)
    }

    fn check_address(&self, url: &str, address: IpAddr) -> Result<(), CameraConfigError> {
        match self.denied_networks.iter().find(|n| n.contains(address)) {
            Some(network) => Err(CameraConfigError(format!(
                "camera url {:?} reaches {address}, inside the denied range {network} ([video] denied_networks)",
                redact_url(url)
            ))),
            None => Ok(()),
        }
    }

    fn check_file(&self, path: &Path) -> Result<PathBuf, CameraConfigError> {
        let Some(root) = &self.media_root else {
            return Err(CameraConfigError(format!(
                "local file {} refused: file cameras need [video] media_root, and are read only under it",
                path.display()
            )));
        };
        let joined = root.join(path);
        let outside = || {
            CameraConfigError(format!(
                "local file {} refused: it is not under [video] media_root {}",
                path.display(),
                root.display()
            ))
        };
        // An existing file is judged by its real path ('..' and links resolved), so a link
        // under the root cannot lead out; one not there yet only by its words, without '..'.
        match (joined.canonicalize(), root.canonicalize()) {
            (Ok(real), Ok(real_root)) if real.starts_with(&real_root) => Ok(real),
            (Ok(_), Ok(_)) => Err(outside()),
            _ => {
                let climbs = path
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir));
                if climbs || !joined.starts_with(root) {
                    Err(outside())
                } else {
                    Ok(joined)
                }
            }
        }
    }
}

/// Why a source was not allowed when its camera started.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceRefusal {
    /// The policy refuses it: retrying cannot help until the settings change.
    #[error(transparent)]
    Refused(CameraConfigError),
    /// The host name did not resolve (now): the start is retried.
    #[error("cannot resolve the camera host {0}")]
    Unresolved(String),
}

/// A host written as an address (`10.0.0.7`, `[fe80::1]`), also in the forms the C resolver
/// reads as one (`2852039166`, `0xa9.0xfe.0xa9.0xfe`), which name no DNS host.
fn literal_address(host: &str) -> Option<IpAddr> {
    if let Ok(address) = host.parse::<IpAddr>() {
        return Some(address);
    }
    let numeric_looking = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || matches!(b, b'.' | b'x' | b'X'))
        && host.bytes().next().is_some_and(|b| b.is_ascii_digit());
    if !numeric_looking {
        return None;
    }
    // inet_aton forms: 1 to 4 parts, each decimal, octal (leading 0) or hex (0x).
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(parts.len());
    for part in &parts {
        let value = if let Some(hex) = part.strip_prefix("0x").or(part.strip_prefix("0X")) {
            u32::from_str_radix(hex, 16).ok()?
        } else if part.len() > 1 && part.starts_with('0') {
            u32::from_str_radix(&part[1..], 8).ok()?
        } else {
            part.parse::<u32>().ok()?
        };
        values.push(value);
    }
    let (last, leading) = values.split_last()?;
    let mut address: u32 = 0;
    for (i, value) in leading.iter().enumerate() {
        if *value > 255 {
            return None;
        }
        address |= value << (24 - 8 * i);
    }
    let room = 32 - 8 * leading.len() as u32;
    if room < 32 && *last >= (1u32 << room) {
        return None;
    }
    Some(IpAddr::V4(std::net::Ipv4Addr::from(address | last)))
}

impl CameraConfig {
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.id.as_str())
    }

    /// The source analysed: the sub-stream when one is set.
    pub fn analysis_url(&self) -> &str {
        self.substream_url.as_deref().unwrap_or(&self.url)
    }

    /// The settings with any password in the URLs replaced by `***`: what API answers show.
    pub fn redacted(&self) -> Self {
        Self {
            url: redact_url(&self.url),
            substream_url: self.substream_url.as_deref().map(redact_url),
            ..self.clone()
        }
    }

    /// `validate`, and the URLs checked against `[video]`'s source policy (a file under the
    /// media root, a literal address outside the denied ranges).
    pub fn validate_under(&self, policy: &SourcePolicy) -> Result<(), CameraConfigError> {
        self.validate()?;
        policy.check(&self.url)?;
        if let Some(sub) = &self.substream_url {
            policy.check(sub)?;
        }
        Ok(())
    }

    /// Checks what does not depend on the server's settings: the URLs' syntax (no ffmpeg
    /// pseudo-protocol, nothing that reads as an option), rates, sizes, zones.
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
    /// Local files may be cameras only under this absolute folder (links followed); relative
    /// camera paths are taken under it. Unset: no file camera (docs/design/007).
    pub media_root: Option<PathBuf>,
    /// Camera hosts whose address (literal, or resolved when the camera starts) falls in one of
    /// these ranges are refused. Default: link-local and cloud metadata addresses.
    pub denied_networks: Vec<IpNetwork>,
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
            media_root: None,
            denied_networks: default_denied_networks(),
            tracking: toml::Table::new(),
        }
    }
}

impl VideoConfig {
    /// What camera sources these settings allow.
    pub fn source_policy(&self) -> SourcePolicy {
        SourcePolicy {
            media_root: self.media_root.clone(),
            denied_networks: self.denied_networks.clone(),
        }
    }

    pub fn validate(&self) -> Result<(), CameraConfigError> {
        if let Some(root) = &self.media_root {
            if !root.is_absolute() {
                return Err(CameraConfigError(format!(
                    "video.media_root must be an absolute path, got {}",
                    root.display()
                )));
            }
        }
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
    fn pseudo_protocols_and_option_like_urls_are_refused() {
        for bad in [
            "concat:/etc/passwd",
            "concat:a.mp4|b.mp4",
            "subfile:,start,0,end,0,:/etc/passwd",
            "pipe:0",
            "data:video/mp4;base64,AAAA",
            "file:concat:/etc/passwd",
            "hls+http://h/a.m3u8",
            "tcp://127.0.0.1:9",
            "-i /etc/passwd",
            "-f",
            "rtsp://",
            "http:///nohost",
            "rtsp://h/a\nb",
            " rtsp://h/a",
        ] {
            assert!(SourceKind::of(bad).is_err(), "{bad:?} accepted");
        }
        let policy = SourcePolicy::default();
        let camera = CameraConfig {
            id: CameraId::parse("c").unwrap(),
            url: "rtsp://h/main".into(),
            substream_url: Some("-i /etc/passwd".into()),
            ..CameraConfig::default()
        };
        assert!(
            camera.validate_under(&policy).is_err(),
            "substream checked too"
        );
    }

    #[test]
    fn files_are_cameras_only_under_the_media_root() {
        let root = std::env::temp_dir().join(format!("vigil-media-{}", std::process::id()));
        let outside = std::env::temp_dir().join(format!("vigil-outside-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("a.mp4"), b"x").unwrap();
        std::fs::write(outside.join("secret.mp4"), b"x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.join("secret.mp4"), root.join("link.mp4")).unwrap();
        let real_root = root.canonicalize().unwrap();

        let closed = SourcePolicy::default();
        assert!(
            closed.check("/etc/passwd").is_err(),
            "no root: no file camera"
        );
        assert!(closed.check(root.join("a.mp4").to_str().unwrap()).is_err());

        let policy = SourcePolicy {
            media_root: Some(root.clone()),
            ..SourcePolicy::default()
        };
        let inside = AllowedSource::File(real_root.join("a.mp4"));
        assert_eq!(
            policy.check(root.join("a.mp4").to_str().unwrap()).unwrap(),
            inside
        );
        assert_eq!(
            policy.check("a.mp4").unwrap(),
            inside,
            "relative = under the root"
        );
        assert_eq!(
            policy
                .check(&format!("file://{}", root.join("a.mp4").display()))
                .unwrap(),
            inside
        );
        for bad in [
            "/etc/passwd".to_string(),
            "file:///etc/passwd".to_string(),
            "file:/etc/passwd".to_string(),
            "../vigil-outside/secret.mp4".to_string(),
            format!("{}/../x.mp4", root.display()),
            outside.join("secret.mp4").display().to_string(),
            "link.mp4".to_string(),
        ] {
            let refused = policy.check(&bad);
            assert!(refused.is_err(), "{bad:?} accepted: {refused:?}");
        }
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn denied_ranges_refuse_literal_and_resolved_addresses() {
        let policy = SourcePolicy {
            denied_networks: default_denied_networks(),
            ..SourcePolicy::default()
        };
        for bad in [
            "http://169.254.169.254/latest/meta-data",
            "rtsp://user:pw@169.254.1.2:554/s",
            "http://[fe80::1]/x",
            "http://[::ffff:169.254.169.254]/x",
            "http://2852039166/x",
            "http://0xa9.0xfe.0xa9.0xfe/x",
            "http://0251.0376.0251.0376/x",
            "http://169.254.43518/x",
            "http://100.100.100.200/x",
        ] {
            assert!(policy.check(bad).is_err(), "{bad:?} accepted");
            assert!(matches!(
                policy.check_resolved(bad),
                Err(SourceRefusal::Refused(_))
            ));
        }
        for good in [
            "rtsp://127.0.0.1:8554/a",
            "http://10.0.0.7/m.mjpg",
            "rtsp://[::1]/a",
        ] {
            assert!(policy.check(good).is_ok(), "{good:?} refused");
            assert!(policy.check_resolved(good).is_ok(), "{good:?} refused");
        }
        // a name is checked on what it resolves to, when the camera starts
        let loopback = SourcePolicy {
            denied_networks: vec![IpNetwork::parse("127.0.0.0/8").unwrap()],
            ..SourcePolicy::default()
        };
        assert!(loopback.check("rtsp://localhost:8554/a").is_ok());
        assert!(matches!(
            loopback.check_resolved("rtsp://localhost:8554/a"),
            Err(SourceRefusal::Refused(_))
        ));
        for bad in ["10.0.0.0/33", "fe80::/129", "nonsense", "10.0.0/8"] {
            assert!(IpNetwork::parse(bad).is_err(), "{bad:?} parsed");
        }
        let config: VideoConfig =
            toml::from_str("denied_networks = [\"10.0.0.0/8\", \"fd00::/8\"]").unwrap();
        assert_eq!(config.denied_networks.len(), 2);
        assert!(config.denied_networks[1].contains("fd12::1".parse().unwrap()));
        assert!(toml::from_str::<VideoConfig>("denied_networks = [\"10.0.0.0/40\"]").is_err());
    }

    #[test]
    fn passwords_are_redacted_for_display() {
        assert_eq!(
            redact_url("rtsp://admin:s3cr@t@cam.local:554/live?x=@"),
            "rtsp://admin:***@cam.local:554/live?x=@"
        );
        assert_eq!(redact_url("rtsp://cam.local/live"), "rtsp://cam.local/live");
        assert_eq!(
            redact_url("rtsp://viewer@cam/live"),
            "rtsp://viewer@cam/live"
        );
        assert_eq!(redact_url("/media/a.mp4"), "/media/a.mp4");
        let camera = CameraConfig {
            url: "rtsp://a:pw@h/main".into(),
            substream_url: Some("rtsp://a:pw@h/sub".into()),
            ..CameraConfig::default()
        };
        let shown = camera.redacted();
        assert_eq!(shown.url, "rtsp://a:***@h/main");
        assert_eq!(shown.substream_url.as_deref(), Some("rtsp://a:***@h/sub"));
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
