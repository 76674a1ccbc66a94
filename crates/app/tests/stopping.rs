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

const FOUR_RECORDING_CAMERAS: &str = r#"
[[cameras]]
id = "pause"
url = "face-demographics-walking-and-pause.mp4"
loop_file = true
record = true
analysis_fps = 5.0

[[cameras]]
id = "walking"
url = "face-demographics-walking.mp4"
loop_file = true
record = true
analysis_fps = 5.0

[[cameras]]
id = "pair"
url = "head-pose-face-detection-female-and-male.mp4"
loop_file = true
record = true
analysis_fps = 5.0

[[cameras]]
id = "male"
url = "head-pose-face-detection-male.mp4"
loop_file = true
record = true
analysis_fps = 5.0
"#;

/// A small xorshift generator seeded from the clock: a different moment each run, printed so a
/// failing run can be replayed with KILL_SEED.
fn random_moments() -> impl FnMut() -> u64 {
    let mut state: u64 = std::env::var("KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill moments seeded with KILL_SEED={state}");
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

fn column_of(database: &rusqlite::Connection, sql: &str) -> Vec<i64> {
    let mut statement = database.prepare(sql).unwrap();
    let rows = statement.query_map([], |row| row.get(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

/// `vigil serve` with four recording cameras, killed with SIGKILL at random moments (one by
/// default; `KILL_RUNS=20` for the campaign in RELIABILITY.md). After each kill: every
/// sighting and audit entry the API had returned is in the database, the audit chain verifies,
/// the database is intact, every recording row has its file, no ffmpeg is left, and the next
/// start's sightings index matches the store.
#[test]
fn killed_at_random_moments_during_ingest_loses_nothing_committed() {
    let runs: usize = std::env::var("KILL_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut next = random_moments();
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let config = config_with(directory.path(), FOUR_RECORDING_CAMERAS);
    let operator = client_with(&data, "watcher", &["operator"]);
    let auditor = client_with(&data, "auditor", &["auditor"]);
    let mut totals = (0usize, 0usize, 0usize, 0usize);
    for run in 0..runs {
        let mut server = serve(&data, &config);
        let base = server.base();
        wait_until("eight ffmpeg children", Duration::from_secs(60), || {
            ffmpeg_children(server.pid()).len() == 8
        });
        // kill between 1 and 9 s into the run, at a millisecond chosen at random
        let delay = Duration::from_millis(1000 + next() % 8000);
        let started = Instant::now();
        let mut sightings = Vec::new();
        let mut audited = Vec::new();
        while started.elapsed() < delay {
            sightings = get_json(&operator, &format!("{base}/v1/sightings?limit=1000"))
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|s| s["id"].as_i64())
                .collect();
            audited = get_json(&auditor, &format!("{base}/v1/audit?limit=100000"))
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["sequence"].as_i64())
                .collect();
            std::thread::sleep(Duration::from_millis(200));
        }
        let children = ffmpeg_children(server.pid());
        server.signal("KILL");
        server.wait_exit(Duration::from_secs(10)).expect("killed");
        wait_until(
            "the server's ffmpeg to die with it",
            Duration::from_secs(5),
            || children.iter().all(|c| !alive(*c)),
        );
        let rebuilt = server
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("rebuilding the sightings index"));
        assert!(
            run == 0 || !rebuilt,
            "run {run}: the index did not match the store after the previous kill"
        );
        drop(server);

        let database = rusqlite::Connection::open(data.join("vigil.db")).unwrap();
        let integrity: String = database
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "run {run}");
        let stored_sightings = column_of(&database, "SELECT id FROM sightings");
        let stored_audit = column_of(&database, "SELECT sequence FROM audit_entries");
        let lost_sightings: Vec<_> = sightings
            .iter()
            .filter(|id| !stored_sightings.contains(id))
            .collect();
        let lost_audit: Vec<_> = audited
            .iter()
            .filter(|s| !stored_audit.contains(s))
            .collect();
        assert!(
            lost_sightings.is_empty(),
            "run {run}: lost sightings {lost_sightings:?}"
        );
        assert!(
            lost_audit.is_empty(),
            "run {run}: lost audit entries {lost_audit:?}"
        );
        let mut statement = database
            .prepare("SELECT path FROM recording_segments")
            .unwrap();
        let segments: Vec<String> = statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let missing: Vec<_> = segments
            .iter()
            .filter(|p| !data.join("recordings").join(p).is_file())
            .collect();
        assert!(
            missing.is_empty(),
            "run {run}: rows without their file {missing:?}"
        );
        drop(statement);
        drop(database);
        let verified = vigil(&data).args(["audit", "verify"]).output().unwrap();
        assert!(
            verified.status.success(),
            "run {run}: {}",
            String::from_utf8_lossy(&verified.stderr)
        );
        eprintln!(
            "run {run}: killed after {delay:?}; {} sightings and {} audit entries seen before, all kept; {} recording rows, all with their file",
            sightings.len(),
            audited.len(),
            segments.len()
        );
        totals.0 += 1;
        totals.1 = sightings.len();
        totals.2 = audited.len();
        totals.3 = segments.len();
    }
    // The last start after a kill: the index must agree with the store.
    let server = serve(&data, &config);
    wait_until("cameras back", Duration::from_secs(60), || {
        ffmpeg_children(server.pid()).len() == 8
    });
    assert!(
        !server
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("rebuilding the sightings index")),
        "the index did not match the store after the last kill"
    );
    eprintln!(
        "{} kills; at the last: {} sightings, {} audit entries, {} recording rows kept",
        totals.0, totals.1, totals.2, totals.3
    );
}
