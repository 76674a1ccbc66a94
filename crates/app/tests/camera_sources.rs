//! What a camera URL may reach through `vigil serve`: files outside the media root, ffmpeg
//! pseudo-protocols, option-like URLs and metadata addresses are refused with 400; camera
//! passwords are never shown back nor written to the audit log; ffmpeg inherits none of the
//! server's `VIGIL_*` variables.

mod support;

use std::time::Duration;
use support::*;

#[test]
fn unsafe_camera_urls_are_refused_and_passwords_never_shown() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let config = config_with(directory.path(), "");
    let admin = client_with(&data, "camera-admin", &["admin", "operator"]);
    let auditor = client_with(&data, "auditor", &["auditor"]);
    let server = serve(&data, &config);
    let base = server.base();

    let passwd = data.join("vigil.db");
    for url in [
        "file:///etc/passwd".to_string(),
        "/etc/passwd".to_string(),
        "concat:/etc/passwd".to_string(),
        "subfile:,start,0,end,0,:/etc/passwd".to_string(),
        "pipe:0".to_string(),
        "data:text/plain;base64,aGVsbG8=".to_string(),
        "-i /etc/passwd".to_string(),
        format!("{}/../../../etc/passwd", media().display()),
        passwd.display().to_string(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "rtsp://[fe80::1]/cam".to_string(),
    ] {
        let refused = admin
            .post(format!("{base}/v1/cameras"))
            .json(&serde_json::json!({"id": "probe", "url": url}))
            .send()
            .unwrap();
        assert_eq!(refused.status(), 400, "{url}");
        let body: serde_json::Value = refused.json().unwrap();
        assert_eq!(body["error"]["code"], "invalid", "{url}: {body}");
        // the substream is checked as strictly
        let refused = admin
            .post(format!("{base}/v1/cameras"))
            .json(&serde_json::json!({"id": "probe", "url": "rtsp://127.0.0.1:9/main", "substream_url": url}))
            .send()
            .unwrap();
        assert_eq!(refused.status(), 400, "substream {url}");
    }
    assert_eq!(
        get_json(&admin, &format!("{base}/v1/cameras")),
        serde_json::json!([])
    );

    // A file under the media root is a camera; its ffmpeg carries none of the server's
    // VIGIL_* variables (the server was started with several).
    let added = admin
        .post(format!("{base}/v1/cameras"))
        .json(&serde_json::json!({
            "id": "door",
            "url": "head-pose-face-detection-male.mp4",
            "loop_file": true,
            "analysis_fps": 2.0,
        }))
        .send()
        .unwrap();
    assert_eq!(added.status(), 201, "{}", added.text().unwrap_or_default());
    wait_until("the door camera's ffmpeg", Duration::from_secs(30), || {
        !ffmpeg_children(server.pid()).is_empty()
    });
    for pid in ffmpeg_children(server.pid()) {
        let names = environment_names(pid);
        assert!(
            names.iter().all(|n| !n.starts_with("VIGIL_")),
            "ffmpeg {pid} inherited {names:?}"
        );
    }
    assert!(
        environment_names(server.pid())
            .iter()
            .any(|n| n == "VIGIL_DATA_DIR"),
        "the server itself has them"
    );

    // An RTSP camera with a password: shown redacted, audited redacted.
    let secret_url = "rtsp://viewer:pw-s3cret@127.0.0.1:9/live";
    let added = admin
        .post(format!("{base}/v1/cameras"))
        .json(&serde_json::json!({"id": "gate", "url": secret_url, "substream_url": "rtsp://viewer:pw-s3cret@127.0.0.1:9/sub"}))
        .send()
        .unwrap();
    assert_eq!(added.status(), 201);
    let shown: serde_json::Value = added.json().unwrap();
    assert_eq!(shown["config"]["url"], "rtsp://viewer:***@127.0.0.1:9/live");
    let listed = admin
        .get(format!("{base}/v1/cameras"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let one = admin
        .get(format!("{base}/v1/cameras/gate"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        !listed.contains("pw-s3cret") && !one.contains("pw-s3cret"),
        "{listed}"
    );
    assert!(one.contains("viewer:***@127.0.0.1:9/sub"), "{one}");

    // Sent back as shown (with a change), the stored password is kept: ffmpeg still gets it.
    let mut changed = shown["config"].clone();
    changed["analysis_fps"] = serde_json::json!(3.0);
    let replaced = admin
        .put(format!("{base}/v1/cameras/gate"))
        .json(&changed)
        .send()
        .unwrap();
    assert_eq!(replaced.status(), 200);
    wait_until(
        "gate's ffmpeg with the real password",
        Duration::from_secs(20),
        || {
            ffmpeg_children(server.pid()).iter().any(|pid| {
                let arguments = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                String::from_utf8_lossy(&arguments).contains("viewer:pw-s3cret@127.0.0.1:9/sub")
            })
        },
    );

    let audit = auditor
        .get(format!("{base}/v1/audit?limit=1000"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!audit.contains("pw-s3cret"), "password in the audit log");
    assert!(
        audit.contains("rtsp://viewer:***@127.0.0.1:9/live"),
        "the redacted URL is in the camera's audit entry: {audit}"
    );
}
