//! Each source of the test bed serves real bytes that ffmpeg accepts, and each fault fails the
//! way a camera fault does.

use std::path::PathBuf;
use std::time::{Duration, Instant};
use vigil_testbed::{
    count_frames, probe, video_dir, GarbageServer, HlsServer, MjpegServer, RtspServer, SilentServer,
};

fn clip(name: &str) -> PathBuf {
    video_dir().expect("shared data").join(name)
}

fn road_clip() -> PathBuf {
    vigil_testbed::shared_dir()
        .expect("shared data")
        .join("data/road/car-detection.mp4")
}

#[test]
fn rtsp_server_serves_clips_over_tcp_and_udp() {
    let male = clip("head-pose-face-detection-male.mp4");
    let road = road_clip();
    let server = RtspServer::start(&[("/cam1", &male), ("road", &road)], false).unwrap();

    let cam1 = probe(&server.url("/cam1"), &["-rtsp_transport", "tcp"]).unwrap();
    assert_eq!(
        (cam1.codec.as_str(), cam1.width, cam1.height),
        ("h264", 480, 270)
    );
    // The road clip is H.264 already: sent as it is, at its own size.
    let road = probe(&server.url("road"), &["-rtsp_transport", "udp"]).unwrap();
    assert_eq!(
        (road.codec.as_str(), road.width, road.height),
        ("h264", 768, 432)
    );

    for transport in ["tcp", "udp"] {
        let frames = count_frames(
            &server.url("cam1"),
            &["-rtsp_transport", transport],
            Some(10),
        )
        .unwrap();
        assert_eq!(frames, 10, "{transport}: {}", server.log());
    }
}

#[test]
fn killed_rtsp_server_comes_back_on_the_same_port() {
    let male = clip("head-pose-face-detection-male.mp4");
    let mut server = RtspServer::start(&[("/cam1", &male)], true).unwrap();
    let url = server.url("cam1");
    assert_eq!(
        count_frames(&url, &["-rtsp_transport", "tcp"], Some(5)).unwrap(),
        5
    );

    server.kill().unwrap();
    assert!(!server.is_running());
    assert!(probe(&url, &["-rtsp_transport", "tcp"]).is_err());

    let port = server.port();
    server.restart().unwrap();
    assert_eq!(server.port(), port);
    assert_eq!(server.url("cam1"), url);
    assert_eq!(
        count_frames(&url, &["-rtsp_transport", "tcp"], Some(5)).unwrap(),
        5
    );
}

#[test]
fn mjpeg_stream_is_read_by_ffmpeg_and_ends_when_stopped() {
    let mut server = MjpegServer::start(&clip("head-pose-face-detection-male.mp4"), 25.0).unwrap();
    assert!(
        server.frame_count() > 100,
        "{} frames",
        server.frame_count()
    );
    // More frames than one loop holds would take too long at 25 fps; 15 prove the format.
    let frames = count_frames(&server.url(), &["-f", "mpjpeg"], Some(15)).unwrap();
    assert_eq!(frames, 15);
    let stream = probe(&server.url(), &["-f", "mpjpeg"]).unwrap();
    assert_eq!(
        (stream.codec.as_str(), stream.width, stream.height),
        ("mjpeg", 480, 270)
    );

    server.stop();
    assert!(probe(&server.url(), &["-f", "mpjpeg"]).is_err());
}

#[test]
fn hls_playlists_are_read_by_ffmpeg() {
    let male = clip("head-pose-face-detection-male.mp4");
    let vod = HlsServer::start(&male, false).unwrap();
    let whole = probe(&vod.url(), &[]).unwrap();
    assert_eq!(
        (whole.codec.as_str(), whole.width, whole.height),
        ("h264", 480, 270)
    );
    let duration = whole.duration_seconds.unwrap_or(0.0);
    assert!((duration - 4.96).abs() < 0.3, "VOD duration {duration}");
    assert_eq!(count_frames(&vod.url(), &[], None).unwrap(), 62);

    let live = HlsServer::start(&male, true).unwrap();
    let frames = count_frames(&live.url(), &[], Some(10)).unwrap();
    assert_eq!(frames, 10, "{}", live.log());
}

#[test]
fn silent_source_makes_readers_time_out() {
    let server = SilentServer::start().unwrap();
    let started = Instant::now();
    assert!(probe(&server.url("http"), &["-rw_timeout", "1000000"]).is_err());
    assert!(probe(&server.url("rtsp"), &["-timeout", "1000000"]).is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(server.connections(), 2);
}

#[test]
fn garbage_source_is_refused_as_invalid_data() {
    let server = GarbageServer::start(64 * 1024).unwrap();
    assert!(probe(&server.url("rtsp"), &["-timeout", "2000000"]).is_err());
    assert!(probe(&server.url("http"), &["-rw_timeout", "2000000"]).is_err());
    assert!(server.connections() >= 2);
}
