//! Issue 13 §3: recordings behind sightings held as case evidence are held too; delivered
//! webhook rows go with sighting retention; long read-only work runs on a read connection that
//! neither waits for nor holds up the writer.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use vigil_audit::{Actor, AuditAction, NewAuditEntry, Outcome, Target};
use vigil_base::{CameraId, SubjectId};
use vigil_store::{
    FaceStore, NewAlert, NewCase, NewSegment, NewSighting, NewWatchEntry, ReviewDecision,
    SqliteStore, StoreError, VideoStore,
};

const HOUR: i64 = 3_600_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn note(action: AuditAction) -> NewAuditEntry {
    NewAuditEntry {
        actor: Actor {
            user_id: None,
            user_name: "alice".into(),
        },
        action,
        target: Target {
            kind: "test".into(),
            id: String::new(),
        },
        case_ref: Some("CASE-1".into()),
        reason: "test".into(),
        request: serde_json::json!({}),
        probe_image: None,
        outcome: Outcome::success(""),
    }
}

fn sighting(camera: &str, started_at_ms: i64, ended_at_ms: i64) -> NewSighting {
    NewSighting {
        camera: CameraId::parse(camera).unwrap(),
        track: 1,
        started_at_ms,
        ended_at_ms,
        best_at_ms: started_at_ms,
        observations: 3,
        end_reason: "lost".into(),
        quality: 0.9,
        detector_score: 0.9,
        bbox: [0.0, 0.0, 10.0, 10.0],
        frame_width: 100,
        frame_height: 100,
        crop_jpeg: vec![0xff, 0xd8, 0xff, 0xd9],
        embeddings: Vec::new(),
        trajectory: Vec::new(),
        candidates: Vec::new(),
    }
}

/// A case, a watchlist with an entry for a new subject, a sighting at `camera` between the
/// given times and a candidate alert on it. Returns the alert's id.
fn alert_on_a_sighting(store: &SqliteStore, camera: &str, from_ms: i64, to_ms: i64) -> i64 {
    let now = now_ms();
    let subject = store.create_subject("Jane Roe", None).unwrap();
    store
        .open_case(
            &NewCase {
                reference: "CASE-1".into(),
                purpose: "test".into(),
                legal_basis: "warrant 1".into(),
                owner: "alice".into(),
                members: vec![],
                expires_at_ms: now + 24 * HOUR,
                evidence_retention_days: Some(0),
            },
            &note(AuditAction::CaseOpen),
            now,
        )
        .unwrap();
    let list = store
        .create_watchlist(
            "wanted",
            None,
            1e-5,
            "alice",
            &note(AuditAction::WatchlistAdd),
            now,
        )
        .unwrap();
    let entry = store
        .add_watch_entry(
            &NewWatchEntry {
                watchlist: list.id,
                subject: subject.id,
                subject_name: "Jane Roe".into(),
                legal_basis: "warrant 1".into(),
                case_ref: "CASE-1".into(),
                responsible: "alice".into(),
                expires_at_ms: now + HOUR,
                created_by: "alice".into(),
            },
            &note(AuditAction::WatchlistAdd),
            now,
        )
        .unwrap();
    let seen = store
        .insert_sighting(&sighting(camera, from_ms, to_ms))
        .unwrap();
    store
        .insert_alert(
            &NewAlert {
                sighting: seen.0,
                watchlist_entry: entry.id,
                subject: SubjectId(subject.id.0),
                best_template: 1,
                score: 0.7,
                false_match_rate: 1e-7,
                extrapolated: false,
                expected_false_candidates: 1e-6,
                gallery_templates: 1,
            },
            now,
        )
        .unwrap()
        .id
}

fn segment(store: &SqliteStore, camera: &str, index: i64, base_ms: i64) -> i64 {
    store
        .add_segment(&NewSegment {
            camera: CameraId::parse(camera).unwrap(),
            path: format!("{camera}/{index}.mp4"),
            started_at_ms: base_ms + index * 10_000,
            ended_at_ms: base_ms + (index + 1) * 10_000,
            bytes: 1000,
        })
        .unwrap()
}

#[test]
fn recordings_showing_a_sighting_held_as_evidence_are_kept_until_the_hold_ends() {
    let store = SqliteStore::open_in_memory().unwrap();
    let base = now_ms() - 2 * HOUR;
    // The alert's sighting is on the gate camera, 15 s to 16 s after `base`: segment 1.
    let alert = alert_on_a_sighting(&store, "gate", base + 15_000, base + 16_000);
    let gate: Vec<i64> = (0..3).map(|i| segment(&store, "gate", i, base)).collect();
    let door = segment(&store, "door", 1, base);

    // Retention asks for everything: the held footage stays, the rest goes.
    let mut all = gate.clone();
    all.push(door);
    let retired = store.retire_segments(&all).unwrap();
    assert_eq!(retired, ["gate/0.mp4", "gate/2.mp4", "door/1.mp4"]);
    let kept: Vec<String> = store
        .segments(None)
        .unwrap()
        .into_iter()
        .map(|s| s.path)
        .collect();
    assert_eq!(kept, ["gate/1.mp4"]);
    // The sighting itself is held the same way.
    assert!(store
        .delete_sightings_ended_before(now_ms(), None, now_ms())
        .unwrap()
        .is_empty());

    // A rejected alert holds nothing: its footage goes at the next pass.
    for reviewer in ["bob", "carol"] {
        store
            .review_alert(
                alert,
                reviewer,
                ReviewDecision::Reject,
                None,
                &note(AuditAction::ReviewAlert),
                now_ms(),
            )
            .unwrap();
        if store.alert(alert).unwrap().unwrap().state == vigil_store::AlertState::Rejected {
            break;
        }
    }
    assert_eq!(store.retire_segments(&gate).unwrap(), ["gate/1.mp4"]);
    assert!(store.segments(None).unwrap().is_empty());
}

/// Answers every request with 200 on 127.0.0.1; returns its URL.
fn receiver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = std::io::Read::read_exact(&mut reader, &mut body);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    url
}

#[test]
fn delivered_webhooks_are_purged_with_retention_and_pending_ones_stay() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("vigil.db");
    let store = SqliteStore::open(&path).unwrap();
    let url = receiver();
    let subscription = vigil_notify::NewSubscription {
        url: url.clone(),
        secret: "s3cret".into(),
        event_kinds: vec![],
        enabled: true,
        description: String::new(),
    };
    // Plain http to 127.0.0.1 is refused until an admin allows the host.
    assert!(matches!(
        store.create_webhook(&subscription, &note(AuditAction::ConfigChange), now_ms()),
        Err(StoreError::Invalid(_))
    ));
    let allowance = vigil_notify::TargetPolicy::allowing(["127.0.0.1"]);
    store.set_webhook_targets(allowance.clone());
    store
        .create_webhook(&subscription, &note(AuditAction::ConfigChange), now_ms())
        .unwrap();

    // An alert queues a delivery in its transaction; the dispatcher delivers it.
    let sighting_end = now_ms() - HOUR;
    alert_on_a_sighting(&store, "gate", sighting_end - 1000, sighting_end);
    let dispatcher = vigil_notify::Dispatcher::open(
        &path,
        vigil_notify::DispatcherOptions {
            targets: allowance,
            ..Default::default()
        },
    )
    .unwrap();
    let delivered_at = now_ms();
    assert_eq!(dispatcher.deliver_due(delivered_at).unwrap().delivered, 1);
    // A second delivery, still pending (its subscription now disabled, so never sent).
    store.with_connection(|connection| {
        connection
            .execute("UPDATE notify_subscriptions SET enabled = 0", [])
            .unwrap();
        connection
            .execute("UPDATE notify_subscriptions SET enabled = 1", [])
            .unwrap();
        vigil_notify::enqueue(connection, "alert.raised", "{}", delivered_at + 10).unwrap();
    });
    assert_eq!(store.webhook_deliveries(None, 10).unwrap().len(), 2);

    // Retention's cutoff before the delivery: kept; after it: the delivered row goes.
    assert_eq!(
        store
            .purge_finished_webhook_deliveries(delivered_at - HOUR)
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .purge_finished_webhook_deliveries(delivered_at + HOUR)
            .unwrap(),
        1
    );
    let left = store.webhook_deliveries(None, 10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].state, vigil_notify::DeliveryState::Pending);
}

#[test]
fn a_long_read_on_the_read_connection_does_not_hold_up_writes() {
    let directory = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(directory.path().join("vigil.db")).unwrap());
    for _ in 0..50 {
        store.audit(&note(AuditAction::Search)).unwrap();
    }
    let (started, reading) = mpsc::channel();
    let (finish, finished) = mpsc::channel::<()>();
    let reader = {
        let store = store.clone();
        std::thread::spawn(move || {
            store.with_read_connection(|connection| {
                // A report's read transaction: open, reading, for as long as it takes.
                connection.execute_batch("BEGIN").unwrap();
                let report = vigil_audit::verify(connection, &[]).unwrap();
                started.send(report.entries_checked).unwrap();
                finished.recv().unwrap();
                let seen: i64 = connection
                    .query_row("SELECT count(*) FROM audit_entries", [], |row| row.get(0))
                    .unwrap();
                // Writes through it are refused.
                let refused = connection.execute("DELETE FROM notify_subscriptions", []);
                connection.execute_batch("COMMIT").unwrap();
                (seen, refused.is_err())
            })
        })
    };
    assert_eq!(reading.recv().unwrap(), 50);

    // While that read is open, enrolment-side writes and audit entries go through at once.
    let writing = Instant::now();
    store.create_subject("Jane Roe", None).unwrap();
    for _ in 0..20 {
        store.audit(&note(AuditAction::Identify)).unwrap();
    }
    let took = writing.elapsed();
    assert!(took < Duration::from_secs(2), "writes waited {took:?}");
    assert_eq!(store.count_subjects().unwrap(), 1);

    finish.send(()).unwrap();
    let (seen, write_refused) = reader.join().unwrap();
    assert_eq!(seen, 50, "the reader kept its snapshot");
    assert!(write_refused);
    // The next read sees the new entries.
    let now_checked = store
        .with_read_connection(|connection| vigil_audit::verify(connection, &[]))
        .unwrap();
    assert_eq!(now_checked.entries_checked, 70);
    assert!(now_checked.is_intact());
}
