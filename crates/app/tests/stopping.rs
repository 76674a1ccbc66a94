//! Stopping `vigil serve` the ways services are stopped: SIGTERM (systemd, containers) drains
//! like Ctrl-C, and SIGKILL leaves no ffmpeg running behind it.

mod support;

use std::time::{Duration, Instant};
use support::*;

const TWO_RECORDING_CAMERAS: &str = r#"
[[cameras]]
id = "male"
url = "head-pose-face-detection-male.mp4"
loop_file = true
record = true
analysis_fps = 5.0

[[cameras]]
id = "walking"
url = "face-demographics-walking.mp4"
loop_file = true
record = true
analysis_fps = 5.0
"#;

fn sightings_of(client: &reqwest::blocking::Client, base: &str, camera: &str) -> usize {
    get_json(
        client,
        &format!("{base}/v1/sightings?camera={camera}&limit=1000"),
    )
    .as_array()
    .map_or(0, Vec::len)
}

#[test]
fn sigterm_drains_open_tracks_into_sightings_and_publishes_the_audit_head() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    // One man faces the camera through the whole clip, played in a loop: his track is open
    // whenever the server is stopped.
    let config = config_with(
        directory.path(),
        r#"
[[cameras]]
id = "male"
url = "head-pose-face-detection-male.mp4"
loop_file = true
analysis_fps = 5.0
"#,
    );
    let operator = client_with(&data, "watcher", &["operator"]);
    let mut server = serve(&data, &config);
    let base = server.base();
    wait_until("faces seen on the camera", Duration::from_secs(90), || {
        get_json(&operator, &format!("{base}/v1/cameras/male"))["analysis"]["faces"]
            .as_u64()
            .unwrap_or(0)
            >= 3
    });
    let before = sightings_of(&operator, &base, "male");
    let heads = data.join("audit-heads.jsonl");
    let heads_before = std::fs::read_to_string(&heads)
        .unwrap_or_default()
        .lines()
        .count();

    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(30))
        .expect("the server stops within 30 s of SIGTERM");
    assert!(
        status.success(),
        "exit {status:?}: {:?}",
        server.log.lock().unwrap()
    );
    let heads_after = std::fs::read_to_string(&heads)
        .unwrap_or_default()
        .lines()
        .count();
    assert_eq!(
        heads_after,
        heads_before + 1,
        "the audit head was published on the way out"
    );

    let database = rusqlite::Connection::open(data.join("vigil.db")).unwrap();
    let integrity: String = database
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    // The track open at the signal was flushed into a sighting, not lost.
    let flushed: i64 = database
        .query_row(
            "SELECT count(*) FROM sightings WHERE camera = 'male' AND end_reason = 'flush'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(flushed >= 1, "no sighting flushed at SIGTERM");
    drop(database);
    let verified = vigil(&data).args(["audit", "verify"]).output().unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // And the API of the restarted server shows it.
    let server = serve(&data, &config);
    let after = sightings_of(&operator, &server.base(), "male");
    assert!(
        after > before,
        "the open track became a sighting: {before} before SIGTERM, {after} after"
    );
}

#[test]
fn ffmpeg_children_die_with_a_killed_server() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let config = config_with(directory.path(), TWO_RECORDING_CAMERAS);
    let mut server = serve(&data, &config);
    let pid = server.pid();
    // two decoders and two recorders
    wait_until("four ffmpeg children", Duration::from_secs(60), || {
        ffmpeg_children(pid).len() == 4
    });
    let children = ffmpeg_children(pid);
    std::thread::sleep(Duration::from_secs(1));
    assert!(children.iter().all(|c| alive(*c)), "{children:?}");

    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10)).expect("killed");
    let deadline = Instant::now() + Duration::from_secs(5);
    while children.iter().any(|c| alive(*c)) {
        assert!(
            Instant::now() < deadline,
            "ffmpeg outlived the server: {:?}",
            children
                .iter()
                .filter(|c| alive(**c))
                .map(|c| (c, parent_and_state(*c)))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The next start finds no stray writer: the recordings folder stops growing once the
    // new server is stopped too.
    let mut restarted = serve(&data, &config);
    wait_until(
        "the restarted server's ffmpeg",
        Duration::from_secs(60),
        || ffmpeg_children(restarted.pid()).len() == 4,
    );
    let new_children = ffmpeg_children(restarted.pid());
    restarted.signal("TERM");
    assert!(restarted
        .wait_exit(Duration::from_secs(30))
        .is_some_and(|s| s.success()));
    assert!(
        new_children.iter().all(|c| !alive(*c)),
        "stopped with the server"
    );
}
