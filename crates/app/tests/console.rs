//! The operator console (docs/design/016-console.md) in a real browser: Debian's Chromium,
//! headless, driven over WebDriver by chromium-driver from `scripts/browser/console_e2e.py`
//! (selenium), against a real `vigil serve` whose camera is the testbed's RTSP server looping
//! the video composed from LFW photos.
//!
//! The script logs in as each role (a wrong password first), sees the camera streaming, sees an
//! alert arrive without a reload when a watchlist entry for a person in the video is added,
//! enrols a subject named `<img src=x onerror=alert(1)>` and checks that nothing runs, is refused
//! when the entry's creator confirms, has two reviewers confirm (an empty comment refused
//! first), searches by photo (refused without a case and a reason, then finding the sighting),
//! sees the audit chain verified, and checks that each role sees only its screens' links. On every
//! main screen it runs axe-core (serious or critical violations fail) and saves a screenshot to
//! target/console-e2e/screens/ (docs/screens/ with `VIGIL_UPDATE_SCREENS=1`). Failures are screenshotted to target/console-e2e/failures/.
//!
//! Chromium, chromium-driver and axe-core come from `scripts/dev` (apt, npm ci), selenium from
//! `.venv`. Without them the test says so and passes, except under CI, where it fails.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;
use vigil_testbed::lfw_video::{self, Scene};
use vigil_testbed::RtspServer;

const CASE: &str = "CONSOLE-1";
const CAMERA: &str = "lfw";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The accounts, one per job; the watchlist entry's creator (`investigator`) also reviews, so
/// that the page must show the API's refusal of a creator's review, not merely hide a button.
const USERS: [(&str, &[&str]); 6] = [
    ("admin", &["admin"]),
    ("operator", &["operator"]),
    ("investigator", &["investigator", "reviewer"]),
    ("reviewer1", &["reviewer"]),
    ("reviewer2", &["reviewer"]),
    ("auditor", &["auditor"]),
];

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The browser, its driver, selenium and axe-core, or None (with the reason) when one is
/// missing.
fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    let root = repository();
    let python = root.join(".venv/bin/python");
    let axe = root.join("scripts/browser/node_modules/axe-core/axe.min.js");
    let mut missing: Vec<String> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .map(PathBuf::from)
        .chain([python.clone(), axe.clone()])
        .filter(|path| !path.is_file())
        .map(|path| path.display().to_string())
        .collect();
    if python.is_file()
        && !Command::new(&python)
            .args(["-c", "import selenium"])
            .status()
            .is_ok_and(|s| s.success())
    {
        missing.push("selenium in .venv".into());
    }
    if missing.is_empty() {
        return Some((python, axe));
    }
    let message = format!("missing {missing:?}: run scripts/dev test (it installs them)");
    assert!(std::env::var_os("CI").is_none(), "{message}");
    eprintln!("skipping the console browser test: {message}");
    None
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn password(name: &str) -> String {
    format!("console-test {name} passphrase")
}

/// A user with a password (for the browser) and a token (for the script's set-up and checks).
fn add_user(data: &Path, name: &str, roles: &[&str]) -> String {
    let mut add = vigil(data);
    add.args(["users", "add", name, "--password-stdin", "--as", "setup"]);
    for role in roles {
        add.args(["--role", role]);
    }
    let mut child = add
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{}", password(name)).unwrap();
    let added = child.wait_with_output().unwrap();
    assert!(added.status.success(), "{}", text(&added));
    let token = vigil(data)
        .args(["users", "token", name, "--as", "setup"])
        .output()
        .unwrap();
    assert!(token.status.success(), "{}", text(&token));
    String::from_utf8(token.stdout).unwrap().trim().to_string()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn the_console_in_chromium_serves_every_role_its_screens_and_runs_no_injected_script() {
    let Some((python, axe)) = browser_tools() else {
        return;
    };
    let started = Instant::now();
    let directory = tempfile::tempdir().unwrap();
    let work = directory.path();
    let data = work.join("data");

    let mut users = serde_json::Map::new();
    for (name, roles) in USERS {
        let token = add_user(&data, name, roles);
        users.insert(
            name.into(),
            serde_json::json!({"password": password(name), "roles": roles, "token": token}),
        );
    }

    // The camera: the composed LFW scene, played forever by the testbed's RTSP server, so that
    // Tony Blair crosses the frame every 18 s.
    let lfw = vigil_testbed::lfw_dir().unwrap();
    let scene = Scene::standard(&lfw).unwrap();
    let video = work.join("lfw.mp4");
    lfw_video::compose(&scene, &video).unwrap();
    let rtsp = RtspServer::start(&[(CAMERA, &video)], true).unwrap();
    let config = work.join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[[cameras]]\nid = \"{CAMERA}\"\nname = \"Composed LFW scene\"\nurl = \"{}\"\n\
             analysis_fps = 6.0\nanalysis_width = 640\n",
            rtsp.url(CAMERA)
        ),
    )
    .unwrap();
    let server = serve(&data, &config);
    let base = server.base();

    // The investigator's case and watchlist; the entry itself is added by the script once the
    // operator's alerts screen is open, so that the alert must arrive in an open page.
    let investigator = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let token = users["investigator"]["token"].as_str().unwrap().to_string();
    let expires = now_ms() + 86_400_000;
    let opened = investigator
        .post(format!("{base}/v1/cases"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "reference": CASE,
            "purpose": "console end-to-end test",
            "legal_basis": "test warrant 16",
            "expires_at_ms": expires,
        }))
        .send()
        .unwrap();
    assert_eq!(
        opened.status(),
        201,
        "{}",
        opened.text().unwrap_or_default()
    );
    let list: serde_json::Value = investigator
        .post(format!("{base}/v1/watchlists"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "wanted", "false_match_rate": 1e-5}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let blair = lfw_video::enrolment_photos(&lfw, &scene, "Tony_Blair", 7).unwrap();

    let plan = serde_json::json!({
        "base_url": base,
        "chromium": CHROMIUM,
        "chromedriver": CHROMEDRIVER,
        "users": users,
        "case": CASE,
        "camera": CAMERA,
        "watch": {
            "watchlist_id": list["id"],
            "name": "Tony Blair",
            "legal_basis": "test warrant 16",
            "expires_at_ms": expires - 60_000,
            "photos": blair[4..],
        },
        "search_photo": blair[3],
        // Photos known to enrol (crates/app/tests/video.rs): a real face under a hostile name.
        "enrol_photos": lfw_video::enrolment_photos(&lfw, &scene, "Donald_Rumsfeld", 3).unwrap(),
        "second_enrol_photos": lfw_video::enrolment_photos(&lfw, &scene, "Colin_Powell", 3).unwrap(),
    });
    let plan_path = work.join("plan.json");
    std::fs::write(&plan_path, serde_json::to_vec_pretty(&plan).unwrap()).unwrap();
    // The committed screenshots are refreshed on request only, so a test run leaves the
    // working tree as it found it.
    let screens = if std::env::var_os("VIGIL_UPDATE_SCREENS").is_some() {
        repository().join("docs/screens")
    } else {
        repository().join("target/console-e2e/screens")
    };
    let failures = repository().join("target/console-e2e/failures");
    let _ = std::fs::remove_dir_all(&failures);

    let browsing = Instant::now();
    let output = Command::new(&python)
        .arg(repository().join("scripts/browser/console_e2e.py"))
        .arg("--plan")
        .arg(&plan_path)
        .arg("--axe")
        .arg(&axe)
        .arg("--screens")
        .arg(&screens)
        .arg("--failures")
        .arg(&failures)
        .output()
        .expect("console_e2e.py starts");
    let report = text(&output);
    eprintln!("{report}");
    eprintln!(
        "console_e2e.py: {} in {:.0} s; the console test took {:.0} s",
        output.status,
        browsing.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let server_panics: Vec<String> = server
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("panicked"))
        .cloned()
        .collect();
    assert!(
        output.status.success() && report.contains("console e2e: ok"),
        "the console failed in Chromium (screenshots in {}); server panics: {server_panics:#?}",
        failures.display()
    );
    assert!(server_panics.is_empty(), "{server_panics:#?}");
    drop(server);
    drop(rtsp);
}
