//! ffmpeg command lines and the frame stream it writes.
//!
//! Decoding writes PPM images (`-c:v ppm -f image2pipe`): raw RGB with a tiny text header per
//! frame, so the reader learns the frame size from the stream itself (no probe round trip, and a
//! resolution change mid-stream is followed) at no encoding cost.

use crate::IngestError;
use std::io::{BufRead, Read};
use std::path::Path;
use vigil_base::camera::{
    AllowedSource, CameraConfig, RtspTransport, SourceKind, SourcePolicy, SourceRefusal,
    VideoConfig,
};

/// Largest frame accepted from the pipe (8K), so a corrupt header cannot make us allocate
/// gigabytes.
pub const MAX_FRAME_PIXELS: u64 = 7680 * 4320;

/// Protocols ffmpeg may open for a network camera, nested ones included (an HLS playlist's
/// segments, an HTTP redirect): the transports of RTSP, HTTP(S) and HLS (with its AES-128
/// `crypto`), never `file`, `pipe`, `concat`, `subfile` or `data`.
const NETWORK_PROTOCOLS: &str = "rtsp,rtsps,rtp,srtp,udp,tcp,tls,http,https,httpproxy,crypto";
/// A file camera opens its one file and nothing else.
const FILE_PROTOCOLS: &str = "file";

/// Arguments naming the input: the protocol whitelist, transport and timeout options, then
/// `-i URL`. The URL is checked against `policy` again here, as the process starts: a host
/// name on the addresses it resolves to now, a file with its links followed.
fn input_arguments(
    camera: &CameraConfig,
    url: &str,
    policy: &SourcePolicy,
    for_recording: bool,
) -> Result<Vec<String>, IngestError> {
    let source = policy
        .check_resolved(url)
        .map_err(|refusal| match refusal {
            SourceRefusal::Refused(error) => IngestError::Config(error.to_string()),
            SourceRefusal::Unresolved(detail) => IngestError::Unresolved(detail),
        })?;
    // Socket I/O timeout slightly under the stall timeout: ffmpeg gives up by itself on a
    // silent peer, and the supervisor's watchdog is the backstop.
    let io_timeout_us = ((camera.stall_timeout_secs as f64) * 1e6) as u64;
    let mut args: Vec<String> = Vec::new();
    if !for_recording {
        if let Some(hwaccel) = &camera.hwaccel {
            args.extend(["-hwaccel".into(), hwaccel.clone()]);
        }
    }
    let input = match source {
        AllowedSource::Network { kind, url } => {
            args.extend(["-protocol_whitelist".into(), NETWORK_PROTOCOLS.into()]);
            match kind {
                SourceKind::Rtsp => {
                    let transport = match camera.rtsp_transport {
                        RtspTransport::Tcp => "tcp",
                        RtspTransport::Udp => "udp",
                    };
                    args.extend([
                        // The SDP describes the streams: long probing only delays the first
                        // frame.
                        "-analyzeduration".into(),
                        "500000".into(),
                        "-rtsp_transport".into(),
                        transport.into(),
                        "-timeout".into(),
                        io_timeout_us.to_string(),
                    ]);
                }
                _ => args.extend(["-rw_timeout".into(), io_timeout_us.to_string()]),
            }
            url
        }
        AllowedSource::File(path) => {
            if !path.is_file() {
                return Err(IngestError::SourceMissing(path.display().to_string()));
            }
            args.extend(["-protocol_whitelist".into(), FILE_PROTOCOLS.into()]);
            if camera.loop_file {
                args.extend(["-stream_loop".into(), "-1".into()]);
            }
            if camera.realtime {
                args.push("-re".into());
            }
            // `file:` so that no part of the path can be read as a protocol or an option.
            format!("file:{}", path.display())
        }
    };
    args.extend(["-i".into(), input]);
    Ok(args)
}

/// `ffmpeg` arguments that decode the camera's analysis stream to PPM frames on stdout at the
/// analysis rate and resolution, under the default source policy (no file camera).
pub fn decode_arguments(camera: &CameraConfig) -> Result<Vec<String>, IngestError> {
    decode_arguments_under(camera, &VideoConfig::default().source_policy())
}

/// `decode_arguments` with the sources `policy` allows.
pub fn decode_arguments_under(
    camera: &CameraConfig,
    policy: &SourcePolicy,
) -> Result<Vec<String>, IngestError> {
    let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error"]
        .map(String::from)
        .to_vec();
    // One decoding thread: a camera's stream is small, and a box runs many of them side by
    // side, where frame threading only adds hand-offs and a frame of latency per thread.
    args.extend(["-threads", "1"].map(String::from));
    args.extend(input_arguments(
        camera,
        camera.analysis_url(),
        policy,
        false,
    )?);
    let mut filters = vec![format!("fps={}", camera.analysis_fps)];
    if let Some(width) = camera.analysis_width {
        // -2 keeps the aspect ratio with an even height; never upscale.
        filters.push(format!("scale='min({width},iw)':-2"));
    }
    args.extend(["-an", "-sn", "-dn", "-map", "0:v:0", "-vf"].map(String::from));
    args.push(filters.join(","));
    args.extend(["-c:v", "ppm", "-f", "image2pipe", "pipe:1"].map(String::from));
    Ok(args)
}

/// `ffmpeg` arguments that copy the camera's main stream, without re-encoding, into fragmented
/// MP4 segments `<prefix>-NNNNNN.mp4` under `directory`, appending one CSV line
/// (`file,start,end`) to `list` as each segment is closed, and reporting progress on stdout.
pub fn record_arguments(
    camera: &CameraConfig,
    policy: &SourcePolicy,
    directory: &Path,
    prefix: &str,
    list: &Path,
    segment_seconds: u32,
) -> Result<Vec<String>, IngestError> {
    let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error"]
        .map(String::from)
        .to_vec();
    args.extend(input_arguments(camera, &camera.url, policy, true)?);
    args.extend(
        [
            "-map",
            "0:v:0",
            "-map",
            "0:a?",
            "-c",
            "copy",
            "-f",
            "segment",
            "-segment_format",
            "mp4",
        ]
        .map(String::from),
    );
    args.extend([
        "-segment_time".into(),
        segment_seconds.to_string(),
        // Fragmented MP4: a segment cut short by a crash is still playable up to its last
        // fragment.
        "-segment_format_options".into(),
        "movflags=+frag_keyframe+empty_moov+default_base_moof".into(),
        "-reset_timestamps".into(),
        "1".into(),
        "-segment_list".into(),
        list.display().to_string(),
        "-segment_list_type".into(),
        "csv".into(),
        "-segment_list_flags".into(),
        "+live".into(),
        "-progress".into(),
        "pipe:1".into(),
        "-stats_period".into(),
        "1".into(),
        directory
            .join(format!("{prefix}-%06d.mp4"))
            .display()
            .to_string(),
    ]);
    Ok(args)
}

/// One frame read from the pipe.
pub struct RawFrame {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// Reads the next PPM frame; `Ok(None)` at a clean end of stream.
pub fn read_ppm_frame(reader: &mut impl BufRead) -> Result<Option<RawFrame>, IngestError> {
    if reader.fill_buf().map_err(IngestError::Pipe)?.is_empty() {
        return Ok(None);
    }
    let magic = read_token(reader)?;
    if magic != "P6" {
        return Err(IngestError::Garbage(format!(
            "expected a PPM frame, found {:?}",
            magic.chars().take(16).collect::<String>()
        )));
    }
    let width = parse_number(&read_token(reader)?, "width")?;
    let height = parse_number(&read_token(reader)?, "height")?;
    let maxval = parse_number(&read_token(reader)?, "maxval")?;
    if maxval != 255 {
        return Err(IngestError::Garbage(format!(
            "PPM frames must be 8-bit, maxval is {maxval}"
        )));
    }
    let pixels = width as u64 * height as u64;
    if width == 0 || height == 0 || pixels > MAX_FRAME_PIXELS {
        return Err(IngestError::Garbage(format!(
            "frame size {width}x{height} is out of range"
        )));
    }
    // read into spare capacity: a zero-filled 2.7 MB buffer per 720p frame, written over at
    // once, was a measurable share of a camera's cost
    let length = (pixels * 3) as usize;
    let mut rgb = Vec::with_capacity(length);
    reader
        .by_ref()
        .take(length as u64)
        .read_to_end(&mut rgb)
        .map_err(IngestError::Pipe)?;
    if rgb.len() != length {
        return Err(IngestError::Pipe(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!(
                "the stream ended inside a frame ({} of {length} bytes)",
                rgb.len()
            ),
        )));
    }
    Ok(Some(RawFrame { width, height, rgb }))
}

/// A whitespace-delimited header token; consumes exactly one whitespace byte after it (the
/// PPM rule before the pixel data).
fn read_token(reader: &mut impl BufRead) -> Result<String, IngestError> {
    let mut token = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let n = reader.read(&mut byte).map_err(IngestError::Pipe)?;
        if n == 0 {
            return Err(IngestError::Garbage(
                "stream ended inside a frame header".into(),
            ));
        }
        if byte[0].is_ascii_whitespace() {
            if token.is_empty() {
                continue;
            }
            break;
        }
        if byte[0] == b'#' && token.is_empty() {
            let mut comment = Vec::new();
            reader
                .read_until(b'\n', &mut comment)
                .map_err(IngestError::Pipe)?;
            continue;
        }
        token.push(byte[0]);
        if token.len() > 16 {
            return Err(IngestError::Garbage(
                "frame header token is too long".into(),
            ));
        }
    }
    String::from_utf8(token).map_err(|_| IngestError::Garbage("frame header is not text".into()))
}

fn parse_number(token: &str, what: &str) -> Result<u32, IngestError> {
    token
        .parse()
        .map_err(|_| IngestError::Garbage(format!("PPM {what} {token:?} is not a number")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use vigil_base::CameraId;

    fn camera(url: &str) -> CameraConfig {
        CameraConfig {
            id: CameraId("c".into()),
            url: url.into(),
            ..CameraConfig::default()
        }
    }

    #[test]
    fn frames_are_parsed_back_to_back() {
        let mut bytes = b"P6\n2 1\n255\n".to_vec();
        bytes.extend([1, 2, 3, 4, 5, 6]);
        bytes.extend(b"P6\n# comment\n1 1\n255\n");
        bytes.extend([7, 8, 9]);
        let mut reader = Cursor::new(bytes);
        let first = read_ppm_frame(&mut reader).unwrap().unwrap();
        assert_eq!(
            (first.width, first.height, first.rgb),
            (2, 1, vec![1, 2, 3, 4, 5, 6])
        );
        let second = read_ppm_frame(&mut reader).unwrap().unwrap();
        assert_eq!(second.rgb, vec![7, 8, 9]);
        assert!(read_ppm_frame(&mut reader).unwrap().is_none());
    }

    #[test]
    fn garbage_and_absurd_sizes_are_refused() {
        for bytes in [
            b"GIF89a....".to_vec(),
            b"P6\n99999 99999\n255\n".to_vec(),
            b"P6\n2 2\n65535\n".to_vec(),
            b"P6\n2 2\n255\n\x01\x02".to_vec(),
        ] {
            assert!(read_ppm_frame(&mut Cursor::new(bytes)).is_err());
        }
    }

    #[test]
    fn decode_arguments_carry_transport_rate_and_scale() {
        let mut cam = camera("rtsp://127.0.0.1:8554/a");
        cam.rtsp_transport = RtspTransport::Udp;
        cam.analysis_fps = 5.0;
        cam.analysis_width = Some(640);
        cam.hwaccel = Some("vaapi".into());
        let args = decode_arguments(&cam).unwrap().join(" ");
        assert!(
            args.contains(
                "-hwaccel vaapi -protocol_whitelist rtsp,rtsps,rtp,srtp,udp,tcp,tls,http,https,httpproxy,crypto -analyzeduration 500000 -rtsp_transport udp -timeout 5000000 -i rtsp://127.0.0.1:8554/a"
            ),
            "{args}"
        );
        assert!(args.contains("fps=5,scale='min(640,iw)':-2"), "{args}");
        assert!(args.ends_with("-c:v ppm -f image2pipe pipe:1"));
    }

    #[test]
    fn a_missing_file_is_reported_before_spawning() {
        let policy = SourcePolicy {
            media_root: Some("/nonexistent".into()),
            ..SourcePolicy::default()
        };
        let cam = camera("/nonexistent/clip.mp4");
        assert!(matches!(
            decode_arguments_under(&cam, &policy),
            Err(IngestError::SourceMissing(_))
        ));
    }

    #[test]
    fn a_file_is_opened_through_the_file_protocol_alone_and_only_under_the_media_root() {
        let root = std::env::temp_dir().join(format!("vigil-ffmpeg-args-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a:b.mp4"), b"x").unwrap();
        let policy = SourcePolicy {
            media_root: Some(root.clone()),
            ..SourcePolicy::default()
        };
        let args = decode_arguments_under(&camera("a:b.mp4"), &policy);
        assert!(args.is_err(), "a:b.mp4 reads as protocol 'a': refused");
        let cam = camera(root.join("a:b.mp4").to_str().unwrap());
        let args = decode_arguments_under(&cam, &policy).unwrap().join(" ");
        let real = root.canonicalize().unwrap().join("a:b.mp4");
        assert!(
            args.contains(&format!(
                "-protocol_whitelist file -re -i file:{}",
                real.display()
            )),
            "{args}"
        );
        assert!(matches!(
            decode_arguments(&cam),
            Err(IngestError::Config(_))
        ));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
