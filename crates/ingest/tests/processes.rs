//! What a camera's ffmpeg may reach and inherit: URLs refused before anything starts, host
//! names checked on the addresses they resolve to when the camera starts, and children that
//! carry none of the server's secrets.

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_base::camera::{IpNetwork, VideoConfig};
use vigil_base::{CameraConfig, CameraId};
use vigil_ingest::{CameraManager, CameraState, FrameReceiver, FrameSink, IngestError, Received};
use vigil_store::SqliteStore;

#[derive(Default)]
struct Discard {
    frames: Arc<Mutex<u64>>,
}

impl FrameSink for Discard {
    fn attach(&self, _camera: &CameraConfig, frames: FrameReceiver) {
        let count = self.frames.clone();
        std::thread::spawn(move || loop {
            match frames.recv(Duration::from_millis(100)) {
                Received::Frame(_) => *count.lock() += 1,
                Received::Idle => {}
                Received::Closed => return,
            }
        });
    }
}

fn manager(dir: &Path, video: VideoConfig) -> (CameraManager, Arc<Discard>) {
    let store = Arc::new(SqliteStore::open(dir.join("vigil.db")).unwrap());
    let sink = Arc::new(Discard::default());
    let manager = CameraManager::new(video, dir.join("recordings"), store, sink.clone()).unwrap();
    (manager, sink)
}

fn camera(id: &str, url: &str) -> CameraConfig {
    CameraConfig {
        id: CameraId::parse(id).unwrap(),
        url: url.into(),
        stall_timeout_secs: 2.0,
        ..CameraConfig::default()
    }
}

fn clip_in(dir: &Path) -> PathBuf {
    let copy = dir.join("male.mp4");
    std::fs::copy(
        vigil_testbed::video_dir()
            .unwrap()
            .join("head-pose-face-detection-male.mp4"),
        &copy,
    )
    .unwrap();
    copy
}

/// Process ids whose parent is this process, whose command is ffmpeg, and whose arguments
/// name `folder` (tests run side by side in this process).
fn ffmpeg_children(folder: &Path) -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((comm_part, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let parent = rest.split_whitespace().nth(1).unwrap_or_default();
        let arguments = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let names_folder = String::from_utf8_lossy(&arguments).contains(&*folder.to_string_lossy());
        if parent == me && comm_part.ends_with("(ffmpeg") && names_folder {
            children.push(pid);
        }
    }
    children
}

#[test]
fn urls_naming_files_outside_the_media_root_or_pseudo_protocols_are_refused_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let clip = clip_in(&media);
    let (manager, _) = manager(
        dir.path(),
        VideoConfig {
            media_root: Some(media.clone()),
            min_free_bytes: 0,
            ..VideoConfig::default()
        },
    );
    for (i, url) in [
        "file:///etc/passwd",
        "/etc/passwd",
        "concat:/etc/passwd",
        "subfile:,start,0,end,0,:/etc/passwd",
        "pipe:0",
        "data:text/plain,hello",
        "-i /etc/passwd",
        "../vigil.db",
        "http://169.254.169.254/latest/meta-data/",
    ]
    .iter()
    .enumerate()
    {
        let refused = manager.add(camera(&format!("bad{i}"), url));
        assert!(
            matches!(refused, Err(IngestError::Config(_))),
            "{url}: {refused:?}"
        );
    }
    assert!(manager.statuses().is_empty(), "nothing was added");
    manager
        .add(camera("good", clip.to_str().unwrap()))
        .expect("a file under the media root is a camera");
}

#[test]
fn a_host_name_resolving_into_a_denied_range_fails_when_the_camera_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, _) = manager(
        dir.path(),
        VideoConfig {
            denied_networks: vec![IpNetwork::parse("127.0.0.0/8").unwrap()],
            min_free_bytes: 0,
            ..VideoConfig::default()
        },
    );
    // the literal address is refused at once; the name only once it is resolved
    assert!(matches!(
        manager.add(camera("literal", "rtsp://127.0.0.1:9/cam")),
        Err(IngestError::Config(_))
    ));
    manager
        .add(camera("named", "rtsp://localhost:9/cam"))
        .unwrap();
    let id = CameraId::parse("named").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = manager.status(&id).unwrap();
        if status.state == CameraState::Failed {
            let error = status.last_error.unwrap_or_default();
            assert!(error.contains("denied range 127.0.0.0/8"), "{error}");
            break;
        }
        assert!(Instant::now() < deadline, "{status:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ffmpeg_children_inherit_none_of_the_servers_variables() {
    // SAFETY: set before any thread of this test binary reads the environment.
    std::env::set_var("VIGIL_SEAL_KEYS", "k1:c2VjcmV0LXNlYWwta2V5");
    std::env::set_var("VIGIL_SERVER__TOKEN", "secret");
    let dir = tempfile::tempdir().unwrap();
    let clip = clip_in(dir.path());
    let (manager, sink) = manager(
        dir.path(),
        VideoConfig {
            media_root: Some(dir.path().to_path_buf()),
            min_free_bytes: 0,
            ..VideoConfig::default()
        },
    );
    let mut cam = camera("loop", clip.to_str().unwrap());
    cam.loop_file = true;
    cam.record = true;
    manager.add(cam).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let children = loop {
        let children = ffmpeg_children(dir.path());
        if children.len() == 2 && *sink.frames.lock() > 0 {
            break children;
        }
        assert!(
            Instant::now() < deadline,
            "decoder and recorder: {children:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    for pid in children {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        let names: Vec<String> = environ
            .split(|b| *b == 0)
            .filter(|v| !v.is_empty())
            .map(|v| {
                String::from_utf8_lossy(v)
                    .split('=')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with("VIGIL_")),
            "ffmpeg {pid} inherited {names:?}"
        );
        assert!(
            names.iter().all(|n| [
                "PATH",
                "LANG",
                "LC_ALL",
                "TZ",
                "SSL_CERT_FILE",
                "SSL_CERT_DIR"
            ]
            .contains(&n.as_str())),
            "{names:?}"
        );
    }
    manager.shutdown();
    assert!(
        ffmpeg_children(dir.path()).is_empty(),
        "stopped with the cameras"
    );
}
