//! `vigil serve` with cameras, as an operator runs it: a config file listing an RTSP camera
//! (GStreamer's RTSP server on 127.0.0.1 playing a video composed from LFW photos), people
//! enrolled from *other* photos with the CLI, and the sightings read back over the API and the
//! SSE stream.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use vigil_testbed::lfw_video::{self, Scene, ENROLLED_PEOPLE, UNENROLLED_PEOPLE};
use vigil_testbed::RtspServer;

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn vigil(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
    command
        .env("VIGIL_DATA_DIR", data)
        .env("VIGIL_MODELS_DIR", shared().join("models"))
        .env("VIGIL_SHARED_DIR", shared())
        .env_remove("VIGIL_CONFIG");
    command
}

struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data: &Path, config: &Path) -> Server {
    let mut child = vigil(data)
        .arg("--config")
        .arg(config)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = sender.send(rest.trim().to_string());
            }
        }
    });
    let address = receiver
        .recv_timeout(Duration::from_secs(120))
        .expect("the server printed its address");
    Server { child, address }
}

/// A user holding the roles these tests need (sightings, search, export) and a client carrying
/// its token. Cameras and webhooks are an admin's, which separation of duties keeps apart.
fn client_for(data: &Path) -> (reqwest::blocking::Client, String) {
    client_with(data, "tester", &["operator", "investigator"])
}

/// A new user holding `roles` and a client carrying its token.
fn client_with(data: &Path, name: &str, roles: &[&str]) -> (reqwest::blocking::Client, String) {
    let mut add = vigil(data);
    add.args(["users", "add", name, "--as", "test-setup"]);
    for role in roles {
        add.args(["--role", role]);
    }
    let added = add.output().unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let token = vigil(data)
        .args(["users", "token", name, "--as", "test-setup"])
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let secret = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {secret}").parse().unwrap(),
    );
    (
        reqwest::blocking::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap(),
        secret,
    )
}

fn get_json(client: &reqwest::blocking::Client, url: &str) -> serde_json::Value {
    let response = client.get(url).send().unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().unwrap()
}

fn top_candidate(sighting: &serde_json::Value) -> Option<String> {
    sighting["candidates"][0]["subject_name"]
        .as_str()
        .map(String::from)
}

#[test]
fn an_rtsp_camera_in_the_config_yields_identified_sightings_over_the_api_and_sse() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let lfw = vigil_testbed::lfw_dir().unwrap();
    let scene = Scene::standard(&lfw).unwrap();
    let video = directory.path().join("lfw.mp4");
    lfw_video::compose(&scene, &video).unwrap();

    // Enrolment on the command line acts as a user whose roles allow it.
    let added = vigil(&data)
        .args([
            "users",
            "add",
            "enroller",
            "--role",
            "investigator",
            "--as",
            "test-setup",
        ])
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    for person in ENROLLED_PEOPLE {
        let photos = lfw_video::enrolment_photos(&lfw, &scene, person, 3).unwrap();
        let output = vigil(&data)
            .args(["enroll", "--subject", person, "--as", "enroller"])
            .args(&photos)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // One play of the file per connection: the sightings follow the scene from its start.
    let rtsp = RtspServer::start(&[("lfw", &video)], false).unwrap();
    let config = directory.path().join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[cameras]]
id = "lfw"
name = "Composed LFW scene"
url = "{}"
analysis_fps = 6.0
analysis_width = 640
record = true

[video]
segment_seconds = 2

# The webhook receiver below listens on 127.0.0.1, refused unless allowed (design 010).
[webhooks]
allowed_hosts = ["127.0.0.1"]
"#,
            rtsp.url("lfw")
        ),
    )
    .unwrap();
    let (client, secret) = client_for(&data);
    let (admin, _) = client_with(&data, "keeper", &["admin"]);
    let (first_reviewer, _) = client_with(&data, "reviewer1", &["reviewer"]);
    let (second_reviewer, _) = client_with(&data, "reviewer2", &["reviewer"]);
    let server = serve(&data, &config);
    let base = format!("http://{}", server.address);

    // The live stream, read from the start.
    let (events_tx, events_rx) = mpsc::channel::<serde_json::Value>();
    let stream_url = format!("{base}/v1/sightings/stream");
    std::thread::spawn(move || {
        let Ok(response) = reqwest::blocking::Client::new()
            .get(&stream_url)
            .bearer_auth(&secret)
            .send()
        else {
            return;
        };
        let mut event = String::new();
        for line in BufReader::new(response).lines().map_while(Result::ok) {
            if let Some(kind) = line.strip_prefix("event:") {
                event = kind.trim().to_string();
            } else if let Some(data) = line.strip_prefix("data:") {
                if event == "sighting" {
                    if let Ok(value) = serde_json::from_str(data.trim()) {
                        let _ = events_tx.send(value);
                    }
                }
            }
        }
    });

    // Five people alone, then two side by side: seven sightings in the first play. The camera
    // starts with the server, so the first may be stored before the stream above connects:
    // the list is the reference, the stream must deliver what came after it connected.
    let expected = ENROLLED_PEOPLE.len() + UNENROLLED_PEOPLE.len() + 2;
    let list_url = format!("{base}/v1/sightings?camera=lfw&limit=100");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut listed = Vec::new();
    while listed.len() < expected {
        listed = get_json(&client, &list_url).as_array().unwrap().clone();
        let camera = get_json(&client, &format!("{base}/v1/cameras/lfw"));
        assert!(
            Instant::now() < deadline,
            "{} sightings: {listed:#?}\ncamera: {camera:#}",
            listed.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    listed.sort_by_key(|s| s["started_at_ms"].as_i64());
    let first_play: Vec<serde_json::Value> = listed[..expected].to_vec();
    let mut streamed = Vec::new();
    while let Ok(event) = events_rx.recv_timeout(Duration::from_secs(2)) {
        streamed.push(event);
    }
    assert!(!streamed.is_empty(), "the SSE stream delivered sightings");
    for event in &streamed {
        assert!(
            listed.iter().any(|s| s["id"] == event["id"])
                || event["started_at_ms"].as_i64()
                    > listed.last().and_then(|s| s["started_at_ms"].as_i64()),
            "streamed sighting {} is stored",
            event["id"]
        );
    }
    let names: Vec<Option<String>> = first_play.iter().map(top_candidate).collect();
    eprintln!("sightings in order: {names:?}");
    for (index, person) in ENROLLED_PEOPLE.iter().enumerate() {
        assert_eq!(names[index].as_deref(), Some(*person), "sighting {index}");
    }
    assert_eq!(
        names[ENROLLED_PEOPLE.len()],
        None,
        "the unenrolled person matches no one at the default false-match rate: {:#}",
        first_play[ENROLLED_PEOPLE.len()]
    );
    let mut pair: Vec<String> = names[expected - 2..].iter().flatten().cloned().collect();
    pair.sort();
    assert_eq!(
        pair,
        vec!["Colin_Powell".to_string(), "George_W_Bush".to_string()]
    );

    // Each sighting on its own, with its best shot.
    for sighting in &first_play {
        let id = sighting["id"].as_i64().unwrap();
        let one = get_json(&client, &format!("{base}/v1/sightings/{id}"));
        assert_eq!(one["camera"], "lfw");
        assert!(
            one["candidates"][0]["false_match_rate"]
                .as_f64()
                .unwrap_or(0.0)
                <= 1e-5
        );
        let crop = client
            .get(format!("{base}/v1/sightings/{id}/crop.jpg"))
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        assert_eq!(&crop[..2], &[0xff, 0xd8]);
    }
    let camera = get_json(&client, &format!("{base}/v1/cameras/lfw"));
    assert!(
        camera["status"]["frames"].as_u64().unwrap() > 0,
        "{camera:#}"
    );
    // what the camera costs, for sizing a box: faces are embedded only where it can change
    // the answer, so far fewer embeddings than faces
    let analysis = &camera["analysis"];
    let count = |key: &str| analysis[key].as_u64().unwrap_or(0);
    assert!(count("detected_frames") > 0, "{camera:#}");
    assert!(count("embeddings") > 0, "{camera:#}");
    assert!(count("embeddings") * 2 < count("faces"), "{camera:#}");
    assert!(
        analysis["analysis_ms_per_detected_frame"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0
    );
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("vigil_camera_frames_total{camera=\"lfw\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("vigil_sightings_total{camera=\"lfw\"}"));
    assert!(metrics.contains("vigil_video_embeddings_total{camera=\"lfw\"}"));

    // Each sighting links to its recording, and a clip around it can be exported.
    let first_id = first_play[0]["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let position = loop {
        let response = client
            .get(format!("{base}/v1/sightings/{first_id}/recording"))
            .send()
            .unwrap();
        if response.status() == 200 {
            break response.json::<serde_json::Value>().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no recording of sighting {first_id}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        position["path"].as_str().unwrap().starts_with("lfw/"),
        "{position:#}"
    );
    assert!(position["offset_secs"].as_f64().unwrap() >= 0.0);
    let clip = client
        .get(format!(
            "{base}/v1/sightings/{first_id}/clip.mp4?before_secs=1&after_secs=1"
        ))
        .send()
        .unwrap();
    assert_eq!(clip.status(), 200);
    let clip_path = directory.path().join("clip.mp4");
    std::fs::write(&clip_path, clip.bytes().unwrap()).unwrap();
    let probe = vigil_testbed::probe(clip_path.to_str().unwrap(), &[]).unwrap();
    assert_eq!(
        (probe.width, probe.height),
        (1280, 720),
        "recorded at source resolution"
    );

    // Retrospective search with a photo the video does not show: only under an open case.
    let blair = lfw_video::enrolment_photos(&lfw, &scene, "Tony_Blair", 4).unwrap()[3].clone();
    let blair_bytes = std::fs::read(&blair).unwrap();
    // A sized body: the server refuses unauthorised searches without reading it.
    let form = || {
        reqwest::blocking::multipart::Form::new().part(
            "image",
            reqwest::blocking::multipart::Part::bytes(blair_bytes.clone())
                .file_name("probe.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        )
    };
    let no_case = client
        .post(format!("{base}/v1/search"))
        .multipart(form())
        .send()
        .unwrap();
    assert_eq!(no_case.status(), 400);
    let unknown_case = client
        .post(format!("{base}/v1/search"))
        .header("x-vigil-case", "NO-SUCH-CASE")
        .header("x-vigil-reason", "test")
        .multipart(form())
        .send()
        .unwrap();
    assert_eq!(unknown_case.status(), 403);
    let tomorrow = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 86_400_000;
    let opened = client
        .post(format!("{base}/v1/cases"))
        .json(&serde_json::json!({
            "reference": "CASE-7",
            "purpose": "find where the subject was seen",
            "legal_basis": "test warrant 7",
            "expires_at_ms": tomorrow,
        }))
        .send()
        .unwrap();
    assert_eq!(opened.status(), 201);
    let found: serde_json::Value = client
        .post(format!("{base}/v1/search?cameras=lfw"))
        .header("x-vigil-case", "CASE-7")
        .header("x-vigil-reason", "locate Tony Blair")
        .multipart(form())
        .send()
        .unwrap()
        .json()
        .unwrap();
    let top = &found["hits"][0];
    assert_eq!(
        top["sighting"]["candidates"][0]["subject_name"], "Tony_Blair",
        "{found:#}"
    );
    assert!(top["false_match_rate"].as_f64().unwrap() <= 1e-5);

    // Alerts go to a signed webhook as well as to the API.
    let (hook_url, received) = webhook_receiver();
    let hook: serde_json::Value = admin
        .post(format!("{base}/v1/webhooks"))
        .json(&serde_json::json!({"url": hook_url, "event_kinds": ["alert.raised", "alert.reviewed"]}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let hook_secret = hook["secret"].as_str().unwrap().to_string();
    let hook_id = hook["id"].as_i64().unwrap();

    // A watchlist entry for Blair (from other photos), then a second camera on the same scene:
    // its Blair sighting raises a candidate alert, confirmed by two reviewers, not its creator.
    let list: serde_json::Value = client
        .post(format!("{base}/v1/watchlists"))
        .json(&serde_json::json!({"name": "wanted", "false_match_rate": 1e-5}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let list_id = list["id"].as_i64().unwrap();
    let mut entry_form = reqwest::blocking::multipart::Form::new()
        .text("name", "Tony Blair")
        .text("legal_basis", "test warrant 7")
        .text("responsible", "tester")
        .text("expires_at_ms", (tomorrow - 60_000).to_string());
    for photo in lfw_video::enrolment_photos(&lfw, &scene, "Tony_Blair", 7).unwrap()[4..].iter() {
        entry_form = entry_form.file("image", photo).unwrap();
    }
    let entry = client
        .post(format!("{base}/v1/watchlists/{list_id}/entries"))
        .header("x-vigil-case", "CASE-7")
        .multipart(entry_form)
        .send()
        .unwrap();
    assert_eq!(entry.status(), 201, "{}", entry.text().unwrap_or_default());
    let second_camera = admin
        .post(format!("{base}/v1/cameras"))
        .json(&serde_json::json!({
            "id": "lfw-again",
            "url": rtsp.url("lfw"),
            "analysis_fps": 6.0,
            "analysis_width": 640,
        }))
        .send()
        .unwrap();
    assert_eq!(second_camera.status(), 201);
    let deadline = Instant::now() + Duration::from_secs(90);
    let alert = loop {
        let alerts = get_json(&client, &format!("{base}/v1/alerts"));
        if let Some(alert) = alerts.as_array().and_then(|a| a.first()).cloned() {
            break alert;
        }
        assert!(Instant::now() < deadline, "no alert raised");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        alert["alert"]["subject_name"]
            .as_str()
            .unwrap()
            .contains("Tony Blair"),
        "{alert:#}"
    );
    assert!(alert["alert"]["false_match_rate"].as_f64().unwrap() <= 1e-5);
    assert_eq!(alert["alert"]["state"], "candidate");
    for url in ["probe_crop_url", "enrolled_photo_url"] {
        let image = client
            .get(format!("{base}{}", alert[url].as_str().unwrap()))
            .send()
            .unwrap();
        assert_eq!(image.status(), 200, "{url}");
    }
    let alert_id = alert["alert"]["id"].as_i64().unwrap();
    let review_url = format!("{base}/v1/alerts/{alert_id}/review");
    let confirm = serde_json::json!({"decision": "confirm"});
    let by_creator = client.post(&review_url).json(&confirm).send().unwrap();
    assert_eq!(
        by_creator.status(),
        403,
        "the creator lacks the reviewer role"
    );
    let first: serde_json::Value = first_reviewer
        .post(&review_url)
        .json(&confirm)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(first["alert"]["state"], "candidate", "{first:#}");
    let again = first_reviewer
        .post(&review_url)
        .json(&confirm)
        .send()
        .unwrap();
    assert_eq!(again.status(), 409);
    let second: serde_json::Value = second_reviewer
        .post(&review_url)
        .json(&confirm)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(second["alert"]["state"], "confirmed", "{second:#}");

    // The raising and both reviews reach the receiver, signed with the subscription's secret.
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.lock().unwrap().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "webhooks not delivered: {:?}",
            received.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let deliveries = received.lock().unwrap().clone();
    let mut kinds = Vec::new();
    for (head, body) in &deliveries {
        let timestamp = header_value(head, "x-vigil-timestamp").unwrap();
        let signature = header_value(head, "x-vigil-signature").unwrap();
        assert!(vigil_notify::verify_signature(
            &hook_secret,
            timestamp,
            body,
            signature
        ));
        assert!(!vigil_notify::verify_signature(
            "another secret",
            timestamp,
            body,
            signature
        ));
        kinds.push(header_value(head, "x-vigil-event").unwrap().to_string());
    }
    assert!(kinds.contains(&"alert.raised".to_string()), "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| *k == "alert.reviewed").count(),
        2,
        "{kinds:?}"
    );
    let log = get_json(&admin, &format!("{base}/v1/webhooks/{hook_id}/deliveries"));
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "delivered" || d["state"] == "pending"),
        "{log:#}"
    );
    drop(rtsp);
}

#[test]
fn cameras_are_added_changed_and_removed_through_the_api_without_a_restart() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let config = directory.path().join("vigil.toml");
    // File cameras are read only under the media root (design 007).
    let media = shared().join("data/video").canonicalize().unwrap();
    std::fs::write(
        &config,
        format!("[video]\nmedia_root = {:?}\n", media.display().to_string()),
    )
    .unwrap();
    let (client, _) = client_with(&data, "camera-admin", &["admin", "operator"]);
    let server = serve(&data, &config);
    let base = format!("http://{}", server.address);
    let anonymous = client_without_token();
    assert_eq!(
        anonymous
            .get(format!("{base}/v1/cameras"))
            .send()
            .unwrap()
            .status(),
        401
    );
    let clip = media.join("head-pose-face-detection-male.mp4");

    let camera = serde_json::json!({
        "id": "door",
        "url": clip.display().to_string(),
        "analysis_fps": 5.0,
        "loop_file": true,
    });
    let created = client
        .post(format!("{base}/v1/cameras"))
        .json(&camera)
        .send()
        .unwrap();
    assert_eq!(created.status(), 201);
    let again = client
        .post(format!("{base}/v1/cameras"))
        .json(&camera)
        .send()
        .unwrap();
    assert_eq!(again.status(), 409);
    let invalid = client
        .post(format!("{base}/v1/cameras"))
        .json(&serde_json::json!({"id": "Bad Id", "url": "x.mp4"}))
        .send()
        .unwrap();
    assert_eq!(invalid.status(), 400);
    let malformed = client
        .post(format!("{base}/v1/cameras"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(malformed.status(), 400);

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let door = get_json(&client, &format!("{base}/v1/cameras/door"));
        if door["status"]["frames"].as_u64().unwrap_or(0) > 5 {
            assert_eq!(door["status"]["state"], "streaming");
            break;
        }
        assert!(Instant::now() < deadline, "{door:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let disabled = client
        .post(format!("{base}/v1/cameras/door/disable"))
        .send()
        .unwrap();
    assert_eq!(disabled.status(), 200);
    let door = get_json(&client, &format!("{base}/v1/cameras/door"));
    assert_eq!(door["status"]["state"], "disabled");
    let mut changed = camera.clone();
    changed["analysis_fps"] = serde_json::json!(2.0);
    let replaced = client
        .put(format!("{base}/v1/cameras/door"))
        .json(&changed)
        .send()
        .unwrap();
    assert_eq!(replaced.status(), 200);
    let door = get_json(&client, &format!("{base}/v1/cameras/door"));
    assert_eq!(door["config"]["analysis_fps"], 2.0);
    assert_eq!(door["config"]["enabled"], true);

    let removed = client
        .delete(format!("{base}/v1/cameras/door"))
        .send()
        .unwrap();
    assert_eq!(removed.status(), 204);
    let gone = client
        .get(format!("{base}/v1/cameras/door"))
        .send()
        .unwrap();
    assert_eq!(gone.status(), 404);
    let health = anonymous.get(format!("{base}/healthz")).send().unwrap();
    assert_eq!(health.status(), 200);

    // Every camera change is in the audit log, and the chain verifies.
    drop(server);
    let verify = vigil(&data).args(["audit", "verify"]).output().unwrap();
    let text = String::from_utf8_lossy(&verify.stdout).to_string();
    assert!(verify.status.success(), "{text}");
    assert!(text.contains("audit log intact"), "{text}");
    let export = vigil(&data).args(["audit", "export"]).output().unwrap();
    let lines = String::from_utf8_lossy(&export.stdout).to_string();
    for action in [
        "user_create",
        "camera_add",
        "camera_change",
        "camera_remove",
    ] {
        assert!(
            lines.contains(&format!("\"action\":\"{action}\"")),
            "{action} missing:\n{lines}"
        );
    }
}

fn client_without_token() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

/// Each received POST: its head and its body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A webhook receiver on 127.0.0.1: records each POST's headers and body, answers 200.
fn webhook_receiver() -> (String, Received) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut data = Vec::new();
            let mut buffer = [0u8; 8192];
            // Read the head, then the body by Content-Length.
            let (head, body_start) = loop {
                let Ok(n) = stream.read(&mut buffer) else {
                    break (String::new(), 0);
                };
                if n == 0 {
                    break (String::new(), 0);
                }
                data.extend_from_slice(&buffer[..n]);
                if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    break (String::from_utf8_lossy(&data[..end]).to_string(), end + 4);
                }
            };
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            while data.len() < body_start + length {
                let Ok(n) = stream.read(&mut buffer) else {
                    break;
                };
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buffer[..n]);
            }
            let body = data[body_start.min(data.len())..].to_vec();
            store.lock().unwrap().push((head, body));
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, received)
}

fn header_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}
