//! Where webhooks may go (issue 13 §2.4): https to public addresses unless a host is allowed,
//! refusals on the resolved address at send time, no receiver body kept; and the purge of
//! finished deliveries.

mod common;

use common::{database, Receiver, RECEIVER_BODY_MARKER};
use std::time::Duration;
use vigil_notify::{
    attempts, create_subscription, delivery, enqueue, purge_finished, DeliveryState, Dispatcher,
    DispatcherOptions, NewSubscription, NotifyError, RetryPolicy, TargetPolicy,
};

const T0: i64 = 1_700_000_000_000;
const PAYLOAD: &str = r#"{"alert_id":17}"#;

fn subscription(url: &str) -> NewSubscription {
    NewSubscription {
        url: url.to_owned(),
        secret: "s3cret-for-tests".to_owned(),
        event_kinds: vec![],
        enabled: true,
        description: String::new(),
    }
}

fn dispatcher_options(targets: TargetPolicy) -> DispatcherOptions {
    DispatcherOptions {
        retry: RetryPolicy {
            timeout: Duration::from_secs(2),
            ..RetryPolicy::default()
        },
        targets,
        ..DispatcherOptions::default()
    }
}

#[test]
fn plain_http_and_private_or_loopback_literals_are_refused_at_creation_unless_allowed() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(vigil_notify::SCHEMA_SQL).unwrap();
    let strict = TargetPolicy::default();
    for url in [
        "http://127.0.0.1:9/x",
        "http://hooks.example.org/x",
        "https://127.0.0.1:9/x",
        "https://10.1.2.3/x",
        "https://192.168.0.10/x",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]:8443/x",
        "https://[fd00:ec2::254]/x",
        "https://[fe80::1]/x",
        "https://0.0.0.0/x",
        "https://224.0.0.1/x",
    ] {
        let refused = create_subscription(&conn, &subscription(url), &strict, T0);
        assert!(
            matches!(refused, Err(NotifyError::Invalid(_))),
            "{url} was accepted"
        );
    }
    assert!(create_subscription(
        &conn,
        &subscription("https://hooks.example.org/x"),
        &strict,
        T0
    )
    .is_ok());
    let allowing = TargetPolicy::allowing(["127.0.0.1"]);
    assert!(
        create_subscription(&conn, &subscription("http://127.0.0.1:9/x"), &allowing, T0).is_ok()
    );
    // The allowance names one host, not the private ranges.
    assert!(create_subscription(&conn, &subscription("http://10.1.2.3/x"), &allowing, T0).is_err());
}

#[test]
fn a_name_resolving_to_loopback_is_refused_at_send_time_and_the_delivery_records_why() {
    let receiver = Receiver::start(vec![]);
    let (_directory, path, conn) = database();
    // https and a name: acceptable at creation; `localhost` resolves to a loopback address.
    let url = format!("https://localhost:{}/hooks", receiver.port());
    create_subscription(&conn, &subscription(&url), &TargetPolicy::default(), T0).unwrap();
    let id = enqueue(&conn, "alert.raised", PAYLOAD, T0).unwrap()[0];

    let dispatcher = Dispatcher::open(&path, dispatcher_options(TargetPolicy::default())).unwrap();
    let report = dispatcher.deliver_due(T0).unwrap();
    assert_eq!((report.attempted, report.delivered), (1, 0));
    assert!(
        receiver.received().is_empty(),
        "a refused target was connected to"
    );
    let log = attempts(&conn, id).unwrap();
    let error = log[0].error.as_deref().unwrap();
    assert!(
        error.contains("refused target")
            && error.contains("localhost")
            && error.contains("loopback"),
        "{error}"
    );
    assert_eq!(log[0].status_code, None);
    let pending = delivery(&conn, id).unwrap().unwrap();
    assert!(pending.last_error.unwrap().contains("refused target"));
}

#[test]
fn a_subscription_allowed_once_is_refused_at_send_when_the_allowance_is_withdrawn() {
    let receiver = Receiver::start(vec![]);
    let (_directory, path, conn) = database();
    let allowing = TargetPolicy::allowing(["127.0.0.1"]);
    create_subscription(&conn, &subscription(&receiver.url), &allowing, T0).unwrap();
    let first = enqueue(&conn, "alert.raised", PAYLOAD, T0).unwrap()[0];

    let allowed = Dispatcher::open(&path, dispatcher_options(allowing)).unwrap();
    assert_eq!(allowed.deliver_due(T0).unwrap().delivered, 1);
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(
        delivery(&conn, first).unwrap().unwrap().state,
        DeliveryState::Delivered
    );

    let second = enqueue(&conn, "alert.raised", PAYLOAD, T0).unwrap()[0];
    let strict = Dispatcher::open(&path, dispatcher_options(TargetPolicy::default())).unwrap();
    assert_eq!(strict.deliver_due(T0).unwrap().delivered, 0);
    assert_eq!(receiver.received().len(), 1, "sent without the allowance");
    let error = attempts(&conn, second).unwrap()[0].error.clone().unwrap();
    assert!(error.contains("https"), "{error}");
}

#[test]
fn a_receivers_answer_body_is_never_stored() {
    let receiver = Receiver::start(vec![500, 404]);
    let (_directory, path, conn) = database();
    let allowing = TargetPolicy::allowing(["127.0.0.1"]);
    create_subscription(&conn, &subscription(&receiver.url), &allowing, T0).unwrap();
    let id = enqueue(&conn, "alert.raised", PAYLOAD, T0).unwrap()[0];
    let dispatcher = Dispatcher::open(&path, dispatcher_options(allowing)).unwrap();
    let mut now = T0;
    for _ in 0..3 {
        dispatcher.deliver_due(now).unwrap();
        if let Some(next) = delivery(&conn, id).unwrap().unwrap().next_attempt_at_ms {
            now = next;
        }
    }
    let log = attempts(&conn, id).unwrap();
    let statuses: Vec<_> = log.iter().map(|attempt| attempt.status_code).collect();
    assert_eq!(statuses, [Some(500), Some(404), Some(200)]);
    assert_eq!(log[0].error.as_deref(), Some("HTTP 500"));
    assert_eq!(log[1].error.as_deref(), Some("HTTP 404"));
    // Nothing the receiver wrote is anywhere in the database file.
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert!(!bytes
        .windows(RECEIVER_BODY_MARKER.len())
        .any(|window| window == RECEIVER_BODY_MARKER.as_bytes()));
}

#[test]
fn finished_deliveries_are_purged_with_their_attempts_and_pending_ones_kept() {
    let receiver = Receiver::start(vec![]);
    let (_directory, path, conn) = database();
    let allowing = TargetPolicy::allowing(["127.0.0.1"]);
    create_subscription(&conn, &subscription(&receiver.url), &allowing, T0).unwrap();
    let delivered = enqueue(&conn, "alert.raised", PAYLOAD, T0).unwrap()[0];
    Dispatcher::open(&path, dispatcher_options(allowing))
        .unwrap()
        .deliver_due(T0)
        .unwrap();
    let pending = enqueue(&conn, "alert.raised", PAYLOAD, T0 + 10).unwrap()[0];

    // Not yet past the cutoff: kept.
    assert_eq!(purge_finished(&conn, T0 - 1).unwrap(), 0);
    assert!(delivery(&conn, delivered).unwrap().is_some());
    assert_eq!(purge_finished(&conn, T0 + 3_600_000).unwrap(), 1);
    assert!(delivery(&conn, delivered).unwrap().is_none());
    assert!(attempts(&conn, delivered).unwrap().is_empty());
    assert_eq!(
        delivery(&conn, pending).unwrap().unwrap().state,
        DeliveryState::Pending
    );
}
