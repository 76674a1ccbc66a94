//! Cameras over the network against real servers on 127.0.0.1: GStreamer's RTSP server (TCP
//! and UDP), an MJPEG HTTP stream and HLS; and the RTSP server killed mid-stream and brought
//! back.

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_base::camera::{RtspTransport, VideoConfig};
use vigil_base::{CameraConfig, CameraId};
use vigil_ingest::{CameraManager, CameraState, FrameReceiver, FrameSink, Received};
use vigil_store::SqliteStore;
use vigil_testbed::{HlsServer, MjpegServer, RtspServer};

#[derive(Default)]
struct Counter {
    frames: Arc<Mutex<Vec<(CameraId, i64)>>>,
}

impl FrameSink for Counter {
    fn attach(&self, camera: &CameraConfig, frames: FrameReceiver) {
        let seen = self.frames.clone();
        let id = camera.id.clone();
        std::thread::spawn(move || loop {
            match frames.recv(Duration::from_millis(100)) {
                Received::Frame(frame) => seen.lock().push((id.clone(), frame.timestamp_ms)),
                Received::Idle => {}
                Received::Closed => return,
            }
        });
    }
}

impl Counter {
    fn count(&self, camera: &str) -> usize {
        self.frames
            .lock()
            .iter()
            .filter(|(id, _)| id.as_str() == camera)
            .count()
    }
}

fn clip(name: &str) -> PathBuf {
    vigil_testbed::video_dir().unwrap().join(name)
}

fn manager(dir: &Path) -> (CameraManager, Arc<Counter>) {
    let store = Arc::new(SqliteStore::open(dir.join("vigil.db")).unwrap());
    let counter = Arc::new(Counter::default());
    let video = VideoConfig {
        backoff_initial_secs: 0.5,
        backoff_max_secs: 8.0,
        min_free_bytes: 0,
        ..VideoConfig::default()
    };
    let manager =
        CameraManager::new(video, dir.join("recordings"), store, counter.clone()).unwrap();
    (manager, counter)
}

fn camera(id: &str, url: String) -> CameraConfig {
    CameraConfig {
        id: CameraId::parse(id).unwrap(),
        url,
        analysis_fps: 5.0,
        stall_timeout_secs: 3.0,
        ..CameraConfig::default()
    }
}

fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

#[test]
fn rtsp_over_tcp_and_udp_mjpeg_and_hls_all_deliver_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, counter) = manager(dir.path());
    let rtsp =
        RtspServer::start(&[("cam", &clip("head-pose-face-detection-male.mp4"))], true).unwrap();
    let mjpeg = MjpegServer::start(&clip("face-demographics-walking.mp4"), 10.0).unwrap();
    let hls =
        HlsServer::start(&clip("head-pose-face-detection-female-and-male.mp4"), true).unwrap();
    manager.add(camera("tcp", rtsp.url("cam"))).unwrap();
    let mut udp = camera("udp", rtsp.url("cam"));
    udp.rtsp_transport = RtspTransport::Udp;
    manager.add(udp).unwrap();
    manager.add(camera("mjpeg", mjpeg.url())).unwrap();
    manager.add(camera("hls", hls.url())).unwrap();
    for id in ["tcp", "udp", "mjpeg", "hls"] {
        wait_for(&format!("{id} frames"), Duration::from_secs(40), || {
            counter.count(id) >= 5
        });
        let status = manager.status(&CameraId::parse(id).unwrap()).unwrap();
        assert_eq!(status.state, CameraState::Streaming, "{id}: {status:?}");
        assert!(status.width.is_some());
    }
    // Timestamps of a live source follow the wall clock.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let last = counter.frames.lock().last().unwrap().1;
    assert!((now - last).abs() < 10_000, "timestamp {last} vs now {now}");
}

#[test]
fn a_killed_rtsp_server_that_comes_back_is_reconnected_within_ten_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, counter) = manager(dir.path());
    let mut rtsp =
        RtspServer::start(&[("cam", &clip("head-pose-face-detection-male.mp4"))], true).unwrap();
    manager.add(camera("door", rtsp.url("cam"))).unwrap();
    let id = CameraId::parse("door").unwrap();
    wait_for("streaming", Duration::from_secs(30), || {
        counter.count("door") >= 5
    });

    rtsp.kill().unwrap();
    wait_for("the loss to be noticed", Duration::from_secs(15), || {
        manager.status(&id).unwrap().state != CameraState::Streaming
    });
    std::thread::sleep(Duration::from_secs(3));
    let before = counter.count("door");
    rtsp.restart().unwrap();
    let took = wait_for("frames again", Duration::from_secs(10), || {
        counter.count("door") > before
    });
    eprintln!("reconnected {took:?} after the server came back");
    let status = manager.status(&id).unwrap();
    assert_eq!(status.state, CameraState::Streaming);
    assert!(status.restarts >= 1);
}
