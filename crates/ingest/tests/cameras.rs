//! Cameras against a real ffmpeg: files, dead sources, removal mid-stream, recording and its
//! retention. (RTSP, MJPEG and HLS sources are exercised end to end in the app's video tests.)

use parking_lot::Mutex;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_base::camera::VideoConfig;
use vigil_base::{CameraConfig, CameraId};
use vigil_ingest::{CameraManager, CameraState, FrameReceiver, FrameSink, Received, VideoFrame};
use vigil_store::{SqliteStore, VideoStore};

fn shared_clip(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/video")
        .join(name)
}

/// File cameras are read only under `[video] media_root`: each test's folder is its media
/// root, and the clip is copied there.
fn clip_in(dir: &Path, name: &str) -> PathBuf {
    let copy = dir.join(name);
    if !copy.exists() {
        std::fs::copy(shared_clip(name), &copy).unwrap();
    }
    copy
}

/// Collects every frame each camera delivers, on one thread per camera, like the analysis does.
#[derive(Default)]
struct Collector {
    frames: Arc<Mutex<Vec<VideoFrame>>>,
    closed: Arc<Mutex<Vec<CameraId>>>,
}

impl FrameSink for Collector {
    fn attach(&self, camera: &CameraConfig, frames: FrameReceiver) {
        let collected = self.frames.clone();
        let closed = self.closed.clone();
        let id = camera.id.clone();
        std::thread::spawn(move || loop {
            match frames.recv(Duration::from_millis(100)) {
                Received::Frame(frame) => collected.lock().push(frame),
                Received::Idle => {}
                Received::Closed => {
                    closed.lock().push(id);
                    return;
                }
            }
        });
    }
}

fn video_config(media_root: &Path) -> VideoConfig {
    VideoConfig {
        media_root: Some(media_root.to_path_buf()),
        backoff_initial_secs: 0.2,
        backoff_max_secs: 1.0,
        min_free_bytes: 0,
        retention_interval_secs: 3600.0,
        ..VideoConfig::default()
    }
}

fn manager(dir: &Path) -> (CameraManager, Arc<SqliteStore>, Arc<Collector>) {
    let store = Arc::new(SqliteStore::open(dir.join("vigil.db")).unwrap());
    let collector = Arc::new(Collector::default());
    let manager = CameraManager::new(
        video_config(dir),
        dir.join("recordings"),
        store.clone(),
        collector.clone(),
    )
    .unwrap();
    (manager, store, collector)
}

fn camera(id: &str, url: &str) -> CameraConfig {
    CameraConfig {
        id: CameraId::parse(id).unwrap(),
        url: url.into(),
        realtime: false,
        stall_timeout_secs: 1.0,
        ..CameraConfig::default()
    }
}

fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_file_plays_to_its_end_at_the_analysis_rate_with_increasing_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, _store, collector) = manager(dir.path());
    let mut cam = camera(
        "walk",
        clip_in(dir.path(), "face-demographics-walking.mp4")
            .to_str()
            .unwrap(),
    );
    cam.analysis_fps = 5.0;
    cam.analysis_width = Some(320);
    manager.add(cam).unwrap();
    let id = CameraId::parse("walk").unwrap();
    wait_for("the file to end", Duration::from_secs(30), || {
        manager.status(&id).unwrap().state == CameraState::Ended
    });
    wait_for("the last frame", Duration::from_secs(5), || {
        collector.frames.lock().len() as u64 == manager.status(&id).unwrap().frames
    });
    let frames = collector.frames.lock().clone();
    // 2.8 s at 5 fps
    assert!((13..=16).contains(&frames.len()), "{} frames", frames.len());
    assert!(frames.iter().all(|f| f.width == 320 && f.height == 180));
    assert!(frames
        .windows(2)
        .all(|w| w[1].timestamp_ms - w[0].timestamp_ms == 200));
    let status = manager.status(&id).unwrap();
    assert_eq!(status.restarts, 0);
    assert_eq!((status.width, status.height), (Some(320), Some(180)));
}

#[test]
fn a_missing_file_fails_with_a_clear_error_and_a_corrupt_one_does_not_hurt() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, _store, _collector) = manager(dir.path());
    manager
        .add(camera(
            "gone",
            dir.path().join("gone.mp4").to_str().unwrap(),
        ))
        .unwrap();
    let gone = CameraId::parse("gone").unwrap();
    wait_for("failed", Duration::from_secs(10), || {
        manager.status(&gone).unwrap().state == CameraState::Failed
    });
    let error = manager.status(&gone).unwrap().last_error.unwrap();
    assert!(error.contains("does not exist"), "{error}");

    let corrupt = dir.path().join("corrupt.mp4");
    let mut bytes = std::fs::read(shared_clip("face-demographics-walking.mp4")).unwrap();
    let half = bytes.len() / 2;
    for (i, b) in bytes[half / 2..half].iter_mut().enumerate() {
        *b = (i * 7919 % 251) as u8;
    }
    bytes.truncate(half + half / 2);
    std::fs::write(&corrupt, bytes).unwrap();
    manager
        .add(camera("corrupt", corrupt.to_str().unwrap()))
        .unwrap();
    let corrupt_id = CameraId::parse("corrupt").unwrap();
    wait_for(
        "the corrupt file to be done",
        Duration::from_secs(30),
        || {
            matches!(
                manager.status(&corrupt_id).unwrap().state,
                CameraState::Ended | CameraState::Reconnecting | CameraState::Failed
            )
        },
    );
    // The manager still serves the other camera.
    assert_eq!(manager.statuses().len(), 2);
}

#[test]
fn a_source_that_accepts_but_never_sends_is_restarted_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, _store, _collector) = manager(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            keep.lock().push(stream); // accepted, never answered
        }
    });
    manager
        .add(camera(
            "silent",
            &format!("http://127.0.0.1:{port}/stream.mjpeg"),
        ))
        .unwrap();
    let id = CameraId::parse("silent").unwrap();
    wait_for("two restarts", Duration::from_secs(30), || {
        manager.status(&id).unwrap().restarts >= 2
    });
    let status = manager.status(&id).unwrap();
    assert_eq!(status.frames, 0);
    assert!(matches!(
        status.state,
        CameraState::Starting | CameraState::Reconnecting
    ));
    assert!(held.lock().len() >= 2, "each restart reconnects");
}

#[test]
fn removing_a_streaming_camera_stops_it_and_closes_its_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, store, collector) = manager(dir.path());
    let mut cam = camera(
        "loop",
        clip_in(dir.path(), "head-pose-face-detection-male.mp4")
            .to_str()
            .unwrap(),
    );
    cam.loop_file = true;
    cam.realtime = true;
    manager.add(cam).unwrap();
    let id = CameraId::parse("loop").unwrap();
    wait_for("frames", Duration::from_secs(20), || {
        collector.frames.lock().len() > 5
    });
    assert_eq!(store.cameras().unwrap().len(), 1);
    manager.remove(&id).unwrap();
    wait_for("the frames to close", Duration::from_secs(5), || {
        collector.closed.lock().contains(&id)
    });
    assert!(manager.status(&id).is_none());
    assert!(store.cameras().unwrap().is_empty(), "removal is persisted");
    let count = collector.frames.lock().len();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        collector.frames.lock().len(),
        count,
        "no frames after removal"
    );
}

#[test]
fn recording_registers_closed_segments_and_retention_deletes_files_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("vigil.db")).unwrap());
    let recordings = dir.path().join("recordings");
    // A leftover from a crash: a segment file no row knows.
    std::fs::create_dir_all(recordings.join("rec")).unwrap();
    std::fs::File::create(recordings.join("rec/1-0-000000.mp4"))
        .unwrap()
        .write_all(b"partial")
        .unwrap();
    let video = VideoConfig {
        segment_seconds: 1,
        ..video_config(dir.path())
    };
    let manager = CameraManager::new(
        video,
        recordings.clone(),
        store.clone(),
        Arc::new(Collector::default()),
    )
    .unwrap();
    assert!(
        !recordings.join("rec/1-0-000000.mp4").exists(),
        "orphan removed at start"
    );
    let mut cam = camera(
        "rec",
        clip_in(dir.path(), "face-demographics-walking-and-pause.mp4")
            .to_str()
            .unwrap(),
    );
    cam.record = true;
    cam.loop_file = true;
    cam.realtime = true;
    manager.add(cam.clone()).unwrap();
    let id = cam.id.clone();
    wait_for("three segments", Duration::from_secs(40), || {
        store.segments(Some(&id)).unwrap().len() >= 3
    });
    let segments = store.segments(Some(&id)).unwrap();
    for segment in &segments {
        let path = recordings.join(&segment.path);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), segment.bytes);
        assert!(segment.ended_at_ms > segment.started_at_ms);
    }
    assert!(manager.status(&id).unwrap().recording.is_some());

    // Keep only the smallest segment's worth of bytes for this camera: at most one survives.
    cam.retention.max_bytes = segments.iter().map(|s| s.bytes).min();
    cam.record = false;
    manager.replace(cam).unwrap();
    let report = manager.enforce_retention().unwrap();
    assert!(report.deleted_segments >= 2, "{report:?}");
    let left = store.segments(Some(&id)).unwrap();
    assert!(left.len() <= 1);
    for segment in &segments {
        let exists = recordings.join(&segment.path).exists();
        let kept = left.iter().any(|s| s.id == segment.id);
        assert_eq!(exists, kept, "{}: file and row agree", segment.path);
    }
    assert!(store.garbage().unwrap().is_empty());
}
