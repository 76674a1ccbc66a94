mod common;

use common::{database, dead_url, Receiver};
use std::time::{Duration, Instant};
use vigil_notify::{
    attempts, create_subscription, delete_subscription, delivery, enqueue, recent_deliveries,
    redeliver, set_subscription_enabled, verify_signature, DeliveryState, Dispatcher,
    DispatcherOptions, NewSubscription, NotifyError, RetryPolicy, SubscriptionId, TargetPolicy,
    SCHEMA_SQL,
};

const T0: i64 = 1_700_000_000_000;
const SECRET: &str = "s3cret-for-tests";
const PAYLOAD: &str = r#"{"alert_id":17,"subject":"Jane Roe","state":"open","score":0.83}"#;

/// The test receivers listen on 127.0.0.1 over plain http, which only an allowance permits
/// (design 010); `b.example` is a plain-http subscription that is never sent to.
fn receivers() -> TargetPolicy {
    TargetPolicy::allowing(["127.0.0.1", "b.example"])
}

fn subscribe(conn: &rusqlite::Connection, url: &str, kinds: &[&str]) -> SubscriptionId {
    create_subscription(
        conn,
        &NewSubscription {
            url: url.to_owned(),
            secret: SECRET.to_owned(),
            event_kinds: kinds.iter().map(|kind| (*kind).to_owned()).collect(),
            enabled: true,
            description: "test receiver".to_owned(),
        },
        &receivers(),
        T0,
    )
    .expect("subscribe")
    .id
}

fn options(max_attempts: u32) -> DispatcherOptions {
    DispatcherOptions {
        retry: RetryPolicy {
            max_attempts,
            timeout: Duration::from_secs(2),
            ..RetryPolicy::default()
        },
        targets: receivers(),
        ..DispatcherOptions::default()
    }
}

#[test]
fn webhook_retried_until_delivered() {
    let receiver = Receiver::start(vec![500, 500]);
    let (_directory, path, conn) = database();
    subscribe(&conn, &receiver.url, &["alert.created"]);
    let transaction = conn.unchecked_transaction().unwrap();
    let ids = enqueue(&transaction, "alert.created", PAYLOAD, T0).unwrap();
    transaction.commit().unwrap();
    assert_eq!(ids.len(), 1);
    let id = ids[0];

    let dispatcher = Dispatcher::open(&path, options(10)).unwrap();
    let mut now = T0;
    for round in 1..=3 {
        let report = dispatcher.deliver_due(now).unwrap();
        assert_eq!(report.attempted, 1, "round {round}");
        // Nothing more is due until the backoff has passed.
        assert_eq!(dispatcher.deliver_due(now).unwrap().attempted, 0);
        if let Some(next) = delivery(&conn, id).unwrap().unwrap().next_attempt_at_ms {
            assert!(next > now, "round {round}");
            now = next;
        }
    }

    let delivered = delivery(&conn, id).unwrap().unwrap();
    assert_eq!(delivered.state, DeliveryState::Delivered);
    assert_eq!(delivered.attempts, 3);
    assert!(delivered.next_attempt_at_ms.is_none() && delivered.finished_at_ms.is_some());
    let log = attempts(&conn, id).unwrap();
    let statuses: Vec<_> = log.iter().map(|attempt| attempt.status_code).collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(200)]);
    assert_eq!(log.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(log[0].error.as_deref().unwrap().contains("HTTP 500"));
    assert!(log[2].error.is_none());

    let requests = receiver.received();
    assert_eq!(requests.len(), 3);
    for (index, request) in requests.iter().enumerate() {
        assert_eq!(request.method, "POST");
        assert_eq!(request.body, PAYLOAD.as_bytes(), "payload altered");
        assert_eq!(request.header("content-type"), "application/json");
        assert_eq!(request.header("x-vigil-event"), "alert.created");
        assert_eq!(request.header("x-vigil-delivery"), id.to_string());
        assert_eq!(request.header("x-vigil-attempt"), (index + 1).to_string());
        let timestamp = request.header("x-vigil-timestamp");
        let signature = request.header("x-vigil-signature");
        assert!(signature.starts_with("sha256="));
        assert!(verify_signature(
            SECRET,
            timestamp,
            &request.body,
            signature
        ));
        assert!(!verify_signature(
            "another secret",
            timestamp,
            &request.body,
            signature
        ));
    }
    assert_eq!(
        requests[0].header("x-vigil-timestamp"),
        (T0 / 1000).to_string()
    );
}

#[test]
fn unreachable_receiver_is_retried_with_growing_backoff_then_failed() {
    let (_directory, path, conn) = database();
    subscribe(&conn, &dead_url(), &[]);
    let id = enqueue(&conn, "alert.created", PAYLOAD, T0).unwrap()[0];
    let dispatcher = Dispatcher::open(&path, options(5)).unwrap();

    let mut now = T0;
    let mut delays = Vec::new();
    for round in 1..=5 {
        let report = dispatcher.deliver_due(now).unwrap();
        assert_eq!(report.attempted, 1, "round {round}");
        let state = delivery(&conn, id).unwrap().unwrap();
        assert_eq!(state.attempts, round);
        match state.next_attempt_at_ms {
            Some(next) => {
                delays.push(next - now);
                now = next;
            }
            None => assert_eq!(report.failed, 1),
        }
    }
    assert_eq!(delays.len(), 4);
    assert!(
        delays.windows(2).all(|pair| pair[1] > pair[0]),
        "{delays:?}"
    );
    assert!(delays[0] >= 750 && delays[0] < 1500, "{delays:?}");

    let failed = delivery(&conn, id).unwrap().unwrap();
    assert_eq!(failed.state, DeliveryState::Failed);
    let log = attempts(&conn, id).unwrap();
    assert_eq!(log.len(), 5);
    assert!(log
        .iter()
        .all(|attempt| attempt.status_code.is_none() && attempt.error.is_some()));
    assert_eq!(
        dispatcher.deliver_due(now + 3_600_000).unwrap().attempted,
        0
    );
}

#[test]
fn delivery_past_the_retry_window_fails_without_another_attempt() {
    let receiver = Receiver::start(vec![]);
    let (_directory, path, conn) = database();
    let subscription = subscribe(&conn, &receiver.url, &[]);
    // Queued, then the subscription stayed switched off for more than a day.
    let id = enqueue(&conn, "alert.created", PAYLOAD, T0).unwrap()[0];
    set_subscription_enabled(&conn, subscription, false).unwrap();
    let dispatcher = Dispatcher::open(&path, options(10)).unwrap();
    assert_eq!(dispatcher.deliver_due(T0 + 1000).unwrap().attempted, 0);
    set_subscription_enabled(&conn, subscription, true).unwrap();
    let report = dispatcher.deliver_due(T0 + 25 * 3_600_000).unwrap();
    assert_eq!((report.attempted, report.failed), (0, 1));
    let failed = delivery(&conn, id).unwrap().unwrap();
    assert_eq!(failed.state, DeliveryState::Failed);
    assert!(failed.last_error.unwrap().contains("retry window"));
    assert!(receiver.received().is_empty());

    // An operator can send it again once the receiver is fixed.
    redeliver(&conn, id, T0 + 26 * 3_600_000).unwrap();
    dispatcher.deliver_due(T0 + 26 * 3_600_000).unwrap();
    assert_eq!(
        delivery(&conn, id).unwrap().unwrap().state,
        DeliveryState::Delivered
    );
}

#[test]
fn receiver_that_never_answers_times_out_and_is_retried() {
    let receiver = Receiver::silent();
    let (_directory, path, conn) = database();
    subscribe(&conn, &receiver.url, &[]);
    let id = enqueue(&conn, "alert.created", PAYLOAD, T0).unwrap()[0];
    let mut options = options(10);
    options.retry.timeout = Duration::from_millis(300);
    let dispatcher = Dispatcher::open(&path, options).unwrap();
    let started = Instant::now();
    let report = dispatcher.deliver_due(T0).unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(report.retrying, 1);
    let log = attempts(&conn, id).unwrap();
    assert_eq!(log[0].status_code, None);
    assert!(log[0].duration_ms >= 250, "{log:?}");
    assert_eq!(
        delivery(&conn, id).unwrap().unwrap().state,
        DeliveryState::Pending
    );
}

#[test]
fn pending_deliveries_resume_after_a_restart() {
    let receiver = Receiver::start(vec![503]);
    let (_directory, path, conn) = database();
    subscribe(&conn, &receiver.url, &[]);
    let id = enqueue(&conn, "alert.created", PAYLOAD, T0).unwrap()[0];
    {
        let first = Dispatcher::open(&path, options(10)).unwrap();
        assert_eq!(first.deliver_due(T0).unwrap().retrying, 1);
    }
    let second = Dispatcher::open(&path, options(10)).unwrap();
    let due = second.next_due_at_ms().unwrap().expect("still pending");
    assert_eq!(second.deliver_due(due).unwrap().delivered, 1);
    assert_eq!(attempts(&conn, id).unwrap().len(), 2);
}

#[test]
fn background_dispatcher_delivers_when_woken() {
    let receiver = Receiver::start(vec![]);
    let (_directory, path, conn) = database();
    subscribe(&conn, &receiver.url, &[]);
    let handle = Dispatcher::open(&path, options(10))
        .unwrap()
        .spawn()
        .unwrap();
    let id = enqueue(
        &conn,
        "alert.created",
        PAYLOAD,
        vigil_notify::system_now_ms(),
    )
    .unwrap()[0];
    handle.wake();
    let deadline = Instant::now() + Duration::from_secs(10);
    while delivery(&conn, id).unwrap().unwrap().state != DeliveryState::Delivered {
        assert!(Instant::now() < deadline, "not delivered in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.stop();
    assert_eq!(receiver.received().len(), 1);
}

#[test]
fn subscription_filter_excludes_other_event_kinds() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(SCHEMA_SQL).unwrap();
    let created_only = subscribe(&conn, "https://a.example/hook", &["alert.created"]);
    let everything = subscribe(&conn, "http://b.example:8080/hook", &[]);
    let disabled = subscribe(&conn, "https://c.example/hook", &[]);
    set_subscription_enabled(&conn, disabled, false).unwrap();

    let changed = enqueue(&conn, "alert.state_changed", PAYLOAD, T0).unwrap();
    let created = enqueue(&conn, "alert.created", PAYLOAD, T0).unwrap();
    let targets = |ids: &[vigil_notify::DeliveryId]| -> Vec<SubscriptionId> {
        ids.iter()
            .map(|id| delivery(&conn, *id).unwrap().unwrap().subscription_id)
            .collect()
    };
    assert_eq!(targets(&changed), [everything]);
    assert_eq!(targets(&created), [created_only, everything]);

    delete_subscription(&conn, everything).unwrap();
    assert_eq!(recent_deliveries(&conn, None, 10).unwrap().len(), 1);
    assert!(matches!(
        delete_subscription(&conn, everything),
        Err(NotifyError::NoSuchSubscription(_))
    ));
}

#[test]
fn enqueue_in_a_rolled_back_transaction_leaves_nothing() {
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(SCHEMA_SQL).unwrap();
    conn.execute_batch("CREATE TABLE alerts (id INTEGER PRIMARY KEY, subject TEXT)")
        .unwrap();
    subscribe(&conn, "https://a.example/hook", &[]);

    let transaction = conn.transaction().unwrap();
    transaction
        .execute("INSERT INTO alerts (subject) VALUES ('x')", [])
        .unwrap();
    assert_eq!(
        enqueue(&transaction, "alert.created", PAYLOAD, T0)
            .unwrap()
            .len(),
        1
    );
    transaction.rollback().unwrap();
    assert!(recent_deliveries(&conn, None, 10).unwrap().is_empty());

    let transaction = conn.transaction().unwrap();
    transaction
        .execute("INSERT INTO alerts (subject) VALUES ('x')", [])
        .unwrap();
    enqueue(&transaction, "alert.created", PAYLOAD, T0).unwrap();
    transaction.commit().unwrap();
    assert_eq!(recent_deliveries(&conn, None, 10).unwrap().len(), 1);
}

#[test]
fn malformed_subscriptions_and_events_are_refused() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(SCHEMA_SQL).unwrap();
    let base = NewSubscription {
        url: "https://receiver.example/hook".to_owned(),
        secret: SECRET.to_owned(),
        event_kinds: vec![],
        enabled: true,
        description: String::new(),
    };
    let refused = |change: &dyn Fn(&mut NewSubscription)| {
        let mut subscription = base.clone();
        change(&mut subscription);
        matches!(
            create_subscription(&conn, &subscription, &TargetPolicy::default(), T0),
            Err(NotifyError::Invalid(_))
        )
    };
    assert!(refused(
        &|s| s.url = "ftp://receiver.example/hook".to_owned()
    ));
    assert!(refused(&|s| s.url = "file:///etc/passwd".to_owned()));
    assert!(refused(&|s| s.url = "not a url".to_owned()));
    assert!(refused(&|s| s.secret = String::new()));
    assert!(refused(
        &|s| s.event_kinds = vec!["Alert Created".to_owned()]
    ));
    let stored = create_subscription(&conn, &base, &TargetPolicy::default(), T0).unwrap();
    assert!(!format!("{stored:?}").contains(SECRET));

    for (kind, payload) in [("alert.created", "{not json"), ("", PAYLOAD)] {
        assert!(matches!(
            enqueue(&conn, kind, payload, T0),
            Err(NotifyError::Invalid(_))
        ));
    }
}
