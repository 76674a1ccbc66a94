//! Stopping `vigil serve` the ways services are stopped: SIGTERM (systemd, containers) drains
//! like Ctrl-C, SIGKILL leaves no ffmpeg running behind it, and SIGKILL during ingest with
//! alerts raised and webhook deliveries in flight loses nothing committed.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use vigil_testbed::lfw_video::{self, Scene, ENROLLED_PEOPLE};

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

/// Four file cameras, each playing the composed LFW scene (`lfw.mp4` under the media root) in
/// a loop, recorded and analysed: in every 15.5 s loop each camera sees the four watched people
/// (six sightings that raise an alert each).
fn four_lfw_cameras() -> String {
    (1..=4)
        .map(|n| {
            format!(
                r#"
[[cameras]]
id = "lfw-{n}"
url = "lfw.mp4"
loop_file = true
record = true
analysis_fps = 5.0
analysis_width = 640
"#
            )
        })
        .collect()
}

/// A config file `name` in `directory` with `cameras`, file cameras read under `directory`, and
/// webhooks allowed to the receiver on 127.0.0.1 (design 010).
fn lfw_config(directory: &Path, name: &str, cameras: &str) -> PathBuf {
    let config = directory.join(name);
    std::fs::write(
        &config,
        format!(
            "{cameras}\n[video]\nmedia_root = {:?}\nmin_free_bytes = 0\nsegment_seconds = 2\n\n\
             [webhooks]\nallowed_hosts = [\"127.0.0.1\"]\n",
            directory.display().to_string()
        ),
    )
    .unwrap();
    config
}

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

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn column_of(database: &rusqlite::Connection, sql: &str) -> Vec<i64> {
    let mut statement = database.prepare(sql).unwrap();
    let rows = statement.query_map([], |row| row.get(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

/// How the receiver treated one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// 200, after a delay of up to 1.5 s.
    Ok,
    /// 500, after up to 0.5 s.
    Error,
    /// Held for 6 s, past the dispatcher's 5 s attempt timeout.
    TooLate,
}

/// One webhook request as the receiver read it.
#[derive(Clone, Debug)]
struct Receipt {
    /// The kill run during which it came (`KILL_RUNS` for the last, unkilled start).
    run: usize,
    /// Unix seconds when its body was read.
    received_at_s: i64,
    received_at: Instant,
    delivery: i64,
    attempt: u32,
    event: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    answer: Answer,
}

/// A webhook receiver on 127.0.0.1 that is slow and unreliable on purpose, so that deliveries
/// are in flight (leased), pending or retrying whenever the server is killed.
struct SlowReceiver {
    url: String,
    receipts: Arc<Mutex<Vec<Receipt>>>,
    /// Requests read and not yet answered.
    in_flight: Arc<AtomicUsize>,
    /// Answer 200 at once from now on (the last start, to drain the outbox).
    healthy: Arc<AtomicBool>,
    run: Arc<AtomicUsize>,
}

fn slow_receiver(seed: u64) -> SlowReceiver {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let receiver = SlowReceiver {
        url: format!("http://{}/hook", listener.local_addr().unwrap()),
        receipts: Arc::default(),
        in_flight: Arc::default(),
        healthy: Arc::default(),
        run: Arc::default(),
    };
    let (receipts, in_flight, healthy, run) = (
        receiver.receipts.clone(),
        receiver.in_flight.clone(),
        receiver.healthy.clone(),
        receiver.run.clone(),
    );
    let random = Arc::new(Mutex::new(seed | 1));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (receipts, in_flight, healthy, run, random) = (
                receipts.clone(),
                in_flight.clone(),
                healthy.clone(),
                run.clone(),
                random.clone(),
            );
            std::thread::spawn(move || {
                let roll = {
                    let mut state = random.lock().unwrap();
                    *state ^= *state << 13;
                    *state ^= *state >> 7;
                    *state ^= *state << 17;
                    *state
                };
                receive(stream, roll, &receipts, &in_flight, &healthy, &run);
            });
        }
    });
    receiver
}

fn receive(
    mut stream: std::net::TcpStream,
    roll: u64,
    receipts: &Mutex<Vec<Receipt>>,
    in_flight: &AtomicUsize,
    healthy: &AtomicBool,
    run: &AtomicUsize,
) {
    use std::io::{Read, Write};
    let mut data = Vec::new();
    let mut buffer = [0u8; 8192];
    let (head, body_start) = loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buffer[..n]),
        }
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break (String::from_utf8_lossy(&data[..end]).to_string(), end + 4);
        }
    };
    let header = |name: &str| {
        head.lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_string())
            })
            .unwrap_or_default()
    };
    let length: usize = header("content-length").parse().unwrap_or(0);
    while data.len() < body_start + length {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buffer[..n]),
        }
    }
    // 15 % answered 500, 5 % held past the timeout, the rest 200 after a delay
    let (answer, delay_ms) = if healthy.load(Ordering::SeqCst) {
        (Answer::Ok, 0)
    } else {
        match roll % 20 {
            0..=2 => (Answer::Error, (roll >> 8) % 500),
            3 => (Answer::TooLate, 6000),
            _ => (Answer::Ok, 100 + (roll >> 8) % 1400),
        }
    };
    in_flight.fetch_add(1, Ordering::SeqCst);
    receipts.lock().unwrap().push(Receipt {
        run: run.load(Ordering::SeqCst),
        received_at_s: now_ms() / 1000,
        received_at: Instant::now(),
        delivery: header("x-vigil-delivery").parse().unwrap_or(-1),
        attempt: header("x-vigil-attempt").parse().unwrap_or(0),
        event: header("x-vigil-event"),
        timestamp: header("x-vigil-timestamp"),
        signature: header("x-vigil-signature"),
        body: data[body_start..body_start + length].to_vec(),
        answer,
    });
    std::thread::sleep(Duration::from_millis(delay_ms));
    let status = if answer == Answer::Error {
        "500 Internal Server Error"
    } else {
        "200 OK"
    };
    let _ = stream.write_all(
        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    in_flight.fetch_sub(1, Ordering::SeqCst);
}

/// One row of the webhook outbox (`notify_deliveries`, crates/notify/schema.sql).
#[derive(Clone, Debug, PartialEq)]
struct OutboxRow {
    id: i64,
    subscription: i64,
    event_kind: String,
    payload: String,
    state: String,
    attempts: i64,
    next_attempt_at_ms: Option<i64>,
}

impl OutboxRow {
    fn alert(&self) -> i64 {
        serde_json::from_str::<serde_json::Value>(&self.payload).unwrap()["alert"]["id"]
            .as_i64()
            .unwrap()
    }
}

fn outbox(database: &rusqlite::Connection) -> Vec<OutboxRow> {
    let mut statement = database
        .prepare(
            "SELECT id, subscription_id, event_kind, payload, state, attempts, next_attempt_at_ms
             FROM notify_deliveries ORDER BY id",
        )
        .unwrap();
    let rows = statement
        .query_map([], |row| {
            Ok(OutboxRow {
                id: row.get(0)?,
                subscription: row.get(1)?,
                event_kind: row.get(2)?,
                payload: row.get(3)?,
                state: row.get(4)?,
                attempts: row.get(5)?,
                next_attempt_at_ms: row.get(6)?,
            })
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// The outbox as committed now, read beside the running server (a WAL reader sees committed
/// transactions only) on a read-only connection closed before the next kill.
fn outbox_beside(database: &Path) -> Vec<OutboxRow> {
    let connection = rusqlite::Connection::open_with_flags(
        database,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    connection.busy_timeout(Duration::from_secs(5)).unwrap();
    outbox(&connection)
}

/// What the receiver saw agrees with the outbox: every request is a stored row's payload byte
/// for byte, with its event kind and a signature made with the subscription's secret and a
/// current timestamp; every row marked delivered was answered 200 at least once.
fn receipts_agree_with_the_outbox(
    receipts: &[Receipt],
    rows: &[OutboxRow],
    secret: &str,
    when: &str,
) {
    for receipt in receipts {
        let row = rows
            .iter()
            .find(|r| r.id == receipt.delivery)
            .unwrap_or_else(|| panic!("{when}: delivery {} has no outbox row", receipt.delivery));
        assert_eq!(receipt.body, row.payload.as_bytes(), "{when}: {row:?}");
        assert_eq!(receipt.event, row.event_kind, "{when}: {row:?}");
        assert!(
            vigil_notify::verify_signature(
                secret,
                &receipt.timestamp,
                &receipt.body,
                &receipt.signature
            ),
            "{when}: delivery {} attempt {} is not signed with the secret",
            receipt.delivery,
            receipt.attempt
        );
        let signed_at: i64 = receipt.timestamp.parse().unwrap();
        assert!(
            (receipt.received_at_s - signed_at).abs() <= 300,
            "{when}: delivery {} attempt {} signed at {signed_at}, received at {}: a receiver \
             would refuse it as a replay",
            receipt.delivery,
            receipt.attempt,
            receipt.received_at_s
        );
        // the attempt in flight at a kill is sent but never recorded
        assert!(
            i64::from(receipt.attempt) >= 1 && i64::from(receipt.attempt) <= row.attempts + 1,
            "{when}: delivery {} attempt {} of {row:?}",
            receipt.delivery,
            receipt.attempt
        );
    }
    for row in rows.iter().filter(|r| r.state == "delivered") {
        assert!(
            receipts
                .iter()
                .any(|r| r.delivery == row.id && r.answer == Answer::Ok),
            "{when}: delivery {} is marked delivered, the receiver never answered it 200",
            row.id
        );
    }
}

/// Each alert has exactly one `alert.raised` row (one subscription), and each row its alert;
/// each row's attempt log holds exactly its attempts, numbered 1, 2, ...
fn outbox_matches_alerts(database: &rusqlite::Connection, rows: &[OutboxRow], when: &str) {
    let alerts = column_of(database, "SELECT id FROM alerts ORDER BY id");
    let raised: Vec<i64> = rows
        .iter()
        .filter(|r| r.event_kind == "alert.raised")
        .map(OutboxRow::alert)
        .collect();
    let mut sorted = raised.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        raised.len(),
        "{when}: an alert with two alert.raised rows"
    );
    assert_eq!(
        sorted, alerts,
        "{when}: alerts and their outbox rows differ"
    );
    let mut statement = database
        .prepare(
            "SELECT d.id, d.attempts, count(a.id), coalesce(max(a.attempt), 0)
             FROM notify_deliveries d LEFT JOIN notify_attempts a ON a.delivery_id = d.id
             GROUP BY d.id HAVING d.attempts != count(a.id) OR d.attempts != coalesce(max(a.attempt), 0)",
        )
        .unwrap();
    let odd: Vec<(i64, i64, i64, i64)> = statement
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        odd.is_empty(),
        "{when}: attempt logs that disagree with the count (id, attempts, logged, last): {odd:?}"
    );
}

/// What the API and the database showed just before a kill.
#[derive(Default)]
struct BeforeKill {
    sightings: Vec<i64>,
    audited: Vec<i64>,
    alerts: Vec<i64>,
    outbox: Vec<OutboxRow>,
}

/// `vigil serve` with four recording cameras on the composed LFW scene, four of its people on
/// a watchlist (so alerts are raised every few seconds) and a webhook subscription to a slow,
/// unreliable receiver (so deliveries are in flight, pending or retrying), killed with SIGKILL
/// at a random moment 1–16 s after its eight ffmpeg are up (in the first run, after the first
/// alert's outbox row is committed) (once by default; `KILL_RUNS=20`
/// for the campaign in RELIABILITY.md) and restarted on the same data. After each kill: every
/// sighting, alert and audit entry the API had returned and every outbox row the database had
/// committed is still there (no row lost, none duplicated, none gone back from delivered), the
/// receiver's requests match the rows byte for byte and verify, the audit chain verifies, the
/// database is intact, every recording row has its file, no ffmpeg is left, and the next
/// start's sightings index matches the store. At the end every delivery is delivered, and a
/// delivery the receiver saw twice was repeated only across a kill, with the same id.
#[test]
fn killed_at_random_moments_during_ingest_loses_nothing_committed() {
    let runs: usize = std::env::var("KILL_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut next = random_moments();
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let lfw = vigil_testbed::lfw_dir().unwrap();
    let scene = Scene::standard(&lfw).unwrap();
    lfw_video::compose(&scene, &directory.path().join("lfw.mp4")).unwrap();
    // cameras named in a config are kept in the store: the setup start has none yet
    let setup = lfw_config(directory.path(), "setup.toml", "");
    let config = lfw_config(directory.path(), "vigil.toml", &four_lfw_cameras());
    let operator = client_with(&data, "watcher", &["operator"]);
    let auditor = client_with(&data, "auditor", &["auditor"]);
    let investigator = client_with(&data, "investigator", &["investigator"]);
    let admin = client_with(&data, "keeper", &["admin"]);
    let receiver = slow_receiver(next());

    // The case, the watchlist with the four enrolled people of the scene (from photos the
    // video does not show), and the webhook, set up on a start without cameras.
    let secret = {
        let mut server = serve(&data, &setup);
        let base = server.base();
        let expires = now_ms() + 86_400_000;
        let opened = investigator
            .post(format!("{base}/v1/cases"))
            .json(&serde_json::json!({
                "reference": "CASE-KILL",
                "purpose": "watch for the four people of the scene",
                "legal_basis": "test warrant",
                "expires_at_ms": expires,
            }))
            .send()
            .unwrap();
        assert_eq!(opened.status(), 201);
        let list = investigator
            .post(format!("{base}/v1/watchlists"))
            .json(&serde_json::json!({"name": "wanted", "false_match_rate": 1e-5}))
            .send()
            .unwrap()
            .json::<serde_json::Value>()
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        for person in ENROLLED_PEOPLE {
            // three photos the detector finds usable (some LFW photos are too far from frontal)
            let photos = lfw_video::enrolment_photos(&lfw, &scene, person, 12).unwrap();
            let added = photos.windows(3).any(|three| {
                let mut form = reqwest::blocking::multipart::Form::new()
                    .text("name", person.replace('_', " "))
                    .text("legal_basis", "test warrant")
                    .text("responsible", "investigator")
                    .text("expires_at_ms", (expires - 60_000).to_string());
                for photo in three {
                    form = form.file("image", photo).unwrap();
                }
                let entry = investigator
                    .post(format!("{base}/v1/watchlists/{list}/entries"))
                    .header("x-vigil-case", "CASE-KILL")
                    .multipart(form)
                    .send()
                    .unwrap();
                match entry.status().as_u16() {
                    201 => true,
                    422 => false,
                    status => panic!("{status}: {}", entry.text().unwrap_or_default()),
                }
            });
            assert!(added, "no three usable photos of {person}");
        }
        let hook = admin
            .post(format!("{base}/v1/webhooks"))
            .json(&serde_json::json!({"url": receiver.url, "event_kinds": ["alert.raised"]}))
            .send()
            .unwrap();
        assert_eq!(hook.status(), 201);
        let secret = hook.json::<serde_json::Value>().unwrap()["secret"]
            .as_str()
            .unwrap()
            .to_string();
        server.signal("TERM");
        assert!(server
            .wait_exit(Duration::from_secs(30))
            .is_some_and(|s| s.success()));
        secret
    };

    let database_path = data.join("vigil.db");
    let mut moments = Vec::new();
    let mut in_flight_at_kills = Vec::new();
    let mut kills = Vec::new();
    let mut pending_after_kills = std::collections::BTreeSet::new();
    let mut rows_checked = 0usize;
    let mut alerts_checked = 0usize;
    let mut last = BeforeKill::default();
    let mut segments_at_last = 0usize;
    for run in 0..runs {
        receiver.run.store(run, Ordering::SeqCst);
        let mut server = serve(&data, &config);
        let base = server.base();
        wait_until("eight ffmpeg children", Duration::from_secs(60), || {
            ffmpeg_children(server.pid()).len() == 8
        });
        // The first run waits for the first alert's outbox row, so that even the suite's one
        // kill lands with deliveries queued; then (and in every later run from the start) the
        // kill comes 1 to 16 s later (a loop of the scene), at a random millisecond.
        if run == 0 {
            wait_until(
                "the first alert's webhook row",
                Duration::from_secs(90),
                || !outbox_beside(&database_path).is_empty(),
            );
        }
        let delay = Duration::from_millis(1000 + next() % 15_000);
        let started = Instant::now();
        let mut before = BeforeKill::default();
        while started.elapsed() < delay {
            let ids = |value: serde_json::Value, key: &str| -> Vec<i64> {
                value
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|v| v[key].as_i64().or_else(|| v["alert"][key].as_i64()))
                    .collect()
            };
            before.sightings = ids(
                get_json(&operator, &format!("{base}/v1/sightings?limit=1000")),
                "id",
            );
            before.audited = ids(
                get_json(&auditor, &format!("{base}/v1/audit?limit=100000")),
                "sequence",
            );
            before.alerts = ids(
                get_json(&operator, &format!("{base}/v1/alerts?limit=1000")),
                "id",
            );
            before.outbox = outbox_beside(&database_path);
            std::thread::sleep(Duration::from_millis(200));
        }
        let in_flight = receiver.in_flight.load(Ordering::SeqCst);
        let children = ffmpeg_children(server.pid());
        kills.push(Instant::now());
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
            !rebuilt,
            "run {run}: the index did not match the store after the previous kill"
        );
        drop(server);
        let when = format!("run {run} (killed after {delay:?})");
        assert!(
            run > 0 || !before.outbox.is_empty(),
            "{when}: the kill came before any webhook row was seen"
        );

        let database = rusqlite::Connection::open(&database_path).unwrap();
        let integrity: String = database
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "{when}");
        let stored_sightings = column_of(&database, "SELECT id FROM sightings");
        let stored_audit = column_of(&database, "SELECT sequence FROM audit_entries");
        let stored_alerts = column_of(&database, "SELECT id FROM alerts");
        let lost = |seen: &[i64], stored: &[i64]| -> Vec<i64> {
            seen.iter()
                .filter(|id| !stored.contains(id))
                .copied()
                .collect()
        };
        assert_eq!(
            lost(&before.sightings, &stored_sightings),
            Vec::<i64>::new(),
            "{when}: lost sightings"
        );
        assert_eq!(
            lost(&before.audited, &stored_audit),
            Vec::<i64>::new(),
            "{when}: lost audit entries"
        );
        assert_eq!(
            lost(&before.alerts, &stored_alerts),
            Vec::<i64>::new(),
            "{when}: lost alerts"
        );
        // Every outbox row committed before the kill is there, unchanged but for its progress.
        let rows = outbox(&database);
        for seen in &before.outbox {
            let row = rows
                .iter()
                .find(|r| r.id == seen.id)
                .unwrap_or_else(|| panic!("{when}: lost outbox row {seen:?}"));
            assert_eq!(
                (&row.subscription, &row.event_kind, &row.payload),
                (&seen.subscription, &seen.event_kind, &seen.payload),
                "{when}: outbox row {} changed",
                seen.id
            );
            assert!(row.attempts >= seen.attempts, "{when}: {seen:?} -> {row:?}");
            if seen.state == "delivered" {
                assert_eq!(row, seen, "{when}: a delivered row changed");
            }
        }
        assert!(
            rows.iter().all(|r| r.state != "failed"),
            "{when}: a delivery gave up: {:?}",
            rows.iter()
                .filter(|r| r.state == "failed")
                .collect::<Vec<_>>()
        );
        outbox_matches_alerts(&database, &rows, &when);
        receipts_agree_with_the_outbox(&receiver.receipts.lock().unwrap(), &rows, &secret, &when);
        pending_after_kills.extend(rows.iter().filter(|r| r.state == "pending").map(|r| r.id));

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
            "{when}: rows without their file {missing:?}"
        );
        drop(statement);
        drop(database);
        let verified = vigil(&data).args(["audit", "verify"]).output().unwrap();
        assert!(
            verified.status.success(),
            "{when}: {}",
            String::from_utf8_lossy(&verified.stderr)
        );
        let by_state =
            |rows: &[OutboxRow], state: &str| rows.iter().filter(|r| r.state == state).count();
        eprintln!(
            "{when}: {} deliveries in flight at the receiver; seen before and kept: {} sightings, \
             {} alerts, {} audit entries, {} outbox rows ({} delivered, {} pending of which {} \
             retrying); after: {} rows ({} pending); {} recording rows, all with their file",
            in_flight,
            before.sightings.len(),
            before.alerts.len(),
            before.audited.len(),
            before.outbox.len(),
            by_state(&before.outbox, "delivered"),
            by_state(&before.outbox, "pending"),
            before
                .outbox
                .iter()
                .filter(|r| r.state == "pending" && r.attempts > 0)
                .count(),
            rows.len(),
            by_state(&rows, "pending"),
            segments.len()
        );
        moments.push(delay);
        in_flight_at_kills.push(in_flight);
        rows_checked += before.outbox.len();
        alerts_checked += before.alerts.len();
        segments_at_last = segments.len();
        last = before;
    }

    // The last start after a kill (its cameras resume: the config's cameras are kept in the
    // store): the index must agree with the store, and the receiver, healthy now, gets every
    // delivery queued before the kill.
    let queued_before_kill = outbox_beside(&database_path)
        .iter()
        .map(|r| r.id)
        .max()
        .unwrap_or(0);
    receiver.run.store(runs, Ordering::SeqCst);
    receiver.healthy.store(true, Ordering::SeqCst);
    let mut server = serve(&data, &config);
    assert!(
        !server
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("rebuilding the sightings index")),
        "the index did not match the store after the last kill"
    );
    let restarted = Instant::now();
    // a delivery leased at the kill is due again when its lease ends (2 × 5 s timeout + 10 s)
    wait_until(
        "every delivery queued before the last kill delivered after the restart",
        Duration::from_secs(90),
        || {
            outbox_beside(&database_path)
                .iter()
                .all(|r| r.id > queued_before_kill || r.state == "delivered")
        },
    );
    let drained = restarted.elapsed();
    server.signal("TERM");
    assert!(server
        .wait_exit(Duration::from_secs(30))
        .is_some_and(|s| s.success()));
    let database = rusqlite::Connection::open(&database_path).unwrap();
    let rows = outbox(&database);
    outbox_matches_alerts(&database, &rows, "at the end");
    let receipts = receiver.receipts.lock().unwrap().clone();
    receipts_agree_with_the_outbox(&receipts, &rows, &secret, "at the end");
    let verified = vigil(&data).args(["audit", "verify"]).output().unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // At least once (design 010, invariant 5): a delivery is repeated only when a kill cut it
    // between sending and recording, and then with the same X-Vigil-Delivery (the key a
    // receiver deduplicates on) and a fresh signature. Within one run, never.
    let mut repeated_deliveries = 0;
    let mut twice_answered = 0;
    let mut attempt_repeated = 0;
    // how long before the kill a repeated delivery had been answered 200 (the window in which
    // the outcome was known to the dispatcher but not yet recorded)
    let mut answered_before_kill = Vec::new();
    for row in &rows {
        let of_row: Vec<&Receipt> = receipts.iter().filter(|r| r.delivery == row.id).collect();
        let answered: Vec<&&Receipt> = of_row.iter().filter(|r| r.answer == Answer::Ok).collect();
        for pair in answered.windows(2) {
            assert!(
                pair[0].run < pair[1].run,
                "delivery {} answered 200 twice in run {}",
                row.id,
                pair[0].run
            );
            answered_before_kill.push(kills[pair[0].run].duration_since(pair[0].received_at));
        }
        twice_answered += answered.len().saturating_sub(1);
        for (index, receipt) in of_row.iter().enumerate() {
            if let Some(earlier) = of_row[..index]
                .iter()
                .find(|e| e.attempt == receipt.attempt)
            {
                assert!(
                    earlier.run < receipt.run,
                    "delivery {} attempt {} sent twice in run {}",
                    row.id,
                    receipt.attempt,
                    receipt.run
                );
                attempt_repeated += 1;
            }
        }
        repeated_deliveries += usize::from(answered.len() > 1);
    }
    answered_before_kill.sort();
    let not_delivered: Vec<_> = pending_after_kills
        .iter()
        .filter(|id| !rows.iter().any(|r| r.id == **id && r.state == "delivered"))
        .collect();
    assert!(not_delivered.is_empty(), "{not_delivered:?}");
    eprintln!(
        "{runs} kills at {:?}..{:?}; deliveries in flight at the receiver at {} of them ({:?}); \
         {alerts_checked} alerts and {rows_checked} outbox rows checked across kills; at the \
         last: {} sightings, {} alerts, {} audit entries, {} outbox rows, {segments_at_last} \
         recording rows kept; {} deliveries pending after some kill, all delivered after a \
         restart ({} outbox rows in all, the last start drained in {drained:?}); {} requests received, \
         {twice_answered} repeated 200s (to {repeated_deliveries} deliveries; the first answer \
         came {:?}..{:?} before the kill) and {attempt_repeated} requests repeating an attempt \
         number, each across a kill",
        moments.iter().min(),
        moments.iter().max(),
        in_flight_at_kills.iter().filter(|n| **n > 0).count(),
        in_flight_at_kills,
        last.sightings.len(),
        last.alerts.len(),
        last.audited.len(),
        last.outbox.len(),
        pending_after_kills.len(),
        rows.len(),
        receipts.len(),
        answered_before_kill.first(),
        answered_before_kill.last(),
    );
}
