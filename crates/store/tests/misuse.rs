//! Misuse detection: each rule raises exactly for the user who broke it, once per day.

use vigil_audit::{Actor, AuditAction, NewAuditEntry, Outcome, Target};
use vigil_base::config::MisuseConfig;
use vigil_store::{MisuseRule, SqliteStore, StoreError};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
/// A Monday, 00:00 UTC.
const TODAY: i64 = 1_800_230_400_000 - 1_800_230_400_000 % DAY;

fn entry(user: &str, action: AuditAction, outcome: Outcome) -> NewAuditEntry {
    NewAuditEntry {
        actor: Actor {
            user_id: None,
            user_name: user.into(),
        },
        action,
        target: Target {
            kind: "search".into(),
            id: String::new(),
        },
        case_ref: Some("CASE-1".into()),
        reason: "test".into(),
        request: serde_json::json!({}),
        probe_image: None,
        outcome,
    }
}

fn searches(store: &SqliteStore, user: &str, at_ms: i64, count: usize) {
    store.with_connection(|connection| {
        for n in 0..count {
            vigil_audit::append(
                connection,
                &entry(user, AuditAction::Search, Outcome::success("200")),
                at_ms + n as i64,
            )
            .unwrap();
        }
    });
}

#[test]
fn searches_above_norm_off_hours_or_outside_cases_raise_one_alert_each() {
    let store = SqliteStore::open_in_memory().unwrap();
    let policy = MisuseConfig::default();
    // alice: 2 a day for four weeks, then 25 today.
    for day in 1..=28 {
        searches(&store, "alice", TODAY - day * DAY + 10 * HOUR, 2);
    }
    searches(&store, "alice", TODAY + 10 * HOUR, 25);
    // erin: 10 a day is her norm, so 25 today is within three times it.
    for day in 1..=28 {
        searches(&store, "erin", TODAY - day * DAY + 10 * HOUR, 10);
    }
    searches(&store, "erin", TODAY + 10 * HOUR, 25);
    // dave: new, 15 today: below the floor of 20.
    searches(&store, "dave", TODAY + 11 * HOUR, 15);
    // bob: a few searches, one at 02:30.
    searches(&store, "bob", TODAY + 9 * HOUR, 3);
    searches(&store, "bob", TODAY + 2 * HOUR + HOUR / 2, 1);
    // carol: tried a case she is not in.
    store.with_connection(|connection| {
        vigil_audit::append(
            connection,
            &entry(
                "carol",
                AuditAction::Search,
                Outcome::refused("not_in_case"),
            ),
            TODAY + 12 * HOUR,
        )
        .unwrap();
    });

    let now = TODAY + 13 * HOUR;
    let activity = store.search_activity(now, &policy).unwrap();
    let alice = activity.iter().find(|a| a.user_name == "alice").unwrap();
    assert_eq!(alice.searches, 25);
    assert!((alice.baseline_per_day - 2.0).abs() < 1e-9);

    let mut raised: Vec<(String, MisuseRule)> = store
        .scan_for_misuse(&policy, now)
        .unwrap()
        .into_iter()
        .map(|alert| (alert.user_name, alert.rule))
        .collect();
    raised.sort();
    assert_eq!(
        raised,
        vec![
            ("alice".to_string(), MisuseRule::AboveNorm),
            ("bob".to_string(), MisuseRule::OffHours),
            ("carol".to_string(), MisuseRule::OutsideCases),
        ]
    );
    // A second scan raises nothing new but keeps counting.
    searches(&store, "alice", TODAY + 12 * HOUR, 5);
    assert!(store.scan_for_misuse(&policy, now).unwrap().is_empty());
    let alerts = store.misuse_alerts(true, 100).unwrap();
    assert_eq!(alerts.len(), 3);
    let alice_alert = alerts.iter().find(|a| a.user_name == "alice").unwrap();
    assert_eq!(alice_alert.observed, 30);

    // An auditor does not acknowledge an alert about themselves; another one does, with a note,
    // and the acknowledgement is in the (intact) audit log.
    let acknowledge = |who: &str, id: i64| {
        store.acknowledge_misuse_alert(
            id,
            who,
            "spoke to alice: bulk check under warrant 7",
            &entry(who, AuditAction::MisuseReview, Outcome::success("")),
            now + 1,
        )
    };
    assert!(matches!(
        acknowledge("alice", alice_alert.id),
        Err(StoreError::Conflict(_))
    ));
    let done = acknowledge("zoe", alice_alert.id).unwrap();
    assert_eq!(done.acknowledged_by.as_deref(), Some("zoe"));
    assert!(matches!(
        acknowledge("yann", alice_alert.id),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.misuse_alerts(true, 100).unwrap().len(), 2);
    let report = store
        .with_connection(|connection| vigil_audit::verify(connection, &[]))
        .unwrap();
    assert!(report.is_intact());
}

#[test]
fn working_hours_follow_the_site_offset_and_weekends() {
    let policy = MisuseConfig {
        utc_offset_minutes: 120,
        weekends_off: true,
        ..MisuseConfig::default()
    };
    // 05:30 UTC is 07:30 at UTC+2: working hours on a Monday.
    assert!(!vigil_store::is_off_hours(
        TODAY + 5 * HOUR + HOUR / 2,
        &policy
    ));
    // 18:30 UTC is 20:30 local: off hours.
    assert!(vigil_store::is_off_hours(
        TODAY + 18 * HOUR + HOUR / 2,
        &policy
    ));
    // Saturday noon.
    assert!(vigil_store::is_off_hours(
        TODAY + 5 * DAY + 10 * HOUR,
        &policy
    ));
    assert_eq!(
        vigil_store::local_day_start(TODAY + 23 * HOUR, &policy),
        TODAY + DAY - 2 * HOUR
    );
}

/// A permission refusal as the API's guard writes it: the first per user, route and window on
/// its own, then a summary standing for `repeats` more (crates/api/src/refusals.rs).
fn refusal(store: &SqliteStore, user: &str, route: &str, repeats: Option<u64>, at_ms: i64) {
    let mut request = serde_json::json!({ "permission": "ManageUsers" });
    if let Some(repeats) = repeats {
        request["repeats"] = repeats.into();
        request["window_ms"] = 60_000.into();
    }
    let mut refused = entry(
        user,
        AuditAction::AccessRefused,
        Outcome::refused("roles lack ManageUsers"),
    );
    refused.target = Target {
        kind: "route".into(),
        id: route.into(),
    };
    refused.case_ref = None;
    refused.request = request;
    store.with_connection(|connection| {
        vigil_audit::append(connection, &refused, at_ms).unwrap();
    });
}

#[test]
fn a_user_refused_more_than_the_daily_limit_raises_a_probing_alert() {
    let store = SqliteStore::open_in_memory().unwrap();
    let policy = MisuseConfig::default();
    assert_eq!(policy.refusals_per_day, 20);
    // mallory tries five routes she may not call, and keeps at one: 5 first entries, then a
    // summary of 19 more. 24 refusals, 6 entries: counted by what they stand for.
    for (n, route) in [
        "POST /v1/users",
        "GET /v1/audit",
        "POST /v1/cameras",
        "DELETE /v1/cameras/{id}",
        "GET /v1/misuse/alerts",
    ]
    .iter()
    .enumerate()
    {
        refusal(&store, "mallory", route, None, TODAY + 10 * HOUR + n as i64);
    }
    refusal(
        &store,
        "mallory",
        "POST /v1/users",
        Some(19),
        TODAY + 10 * HOUR + 60_000,
    );
    // trent: exactly the limit today, not above it; his 11 refusals yesterday (a summary of
    // 10 and its first) are another day's, under the limit there too.
    for n in 0..20 {
        refusal(
            &store,
            "trent",
            "GET /v1/audit",
            None,
            TODAY + 11 * HOUR + n,
        );
    }
    refusal(
        &store,
        "trent",
        "GET /v1/audit",
        None,
        TODAY - DAY + 11 * HOUR,
    );
    refusal(
        &store,
        "trent",
        "GET /v1/audit",
        Some(10),
        TODAY - DAY + 11 * HOUR + 60_000,
    );
    // Failed logins are not permission refusals.
    store.with_connection(|connection| {
        for n in 0..30 {
            vigil_audit::append(
                connection,
                &entry("trent", AuditAction::LoginFailed, Outcome::refused("")),
                TODAY + 12 * HOUR + n,
            )
            .unwrap();
        }
    });

    let now = TODAY + 13 * HOUR;
    let activity = store.search_activity(now, &policy).unwrap();
    let of = |user: &str| activity.iter().find(|a| a.user_name == user).unwrap();
    assert_eq!((of("mallory").refusals, of("mallory").searches), (24, 0));
    assert_eq!(of("trent").refusals, 20);

    let raised = store.scan_for_misuse(&policy, now).unwrap();
    assert_eq!(raised.len(), 1, "{raised:?}");
    let alert = &raised[0];
    assert_eq!(
        (alert.user_name.as_str(), alert.rule, alert.observed),
        ("mallory", MisuseRule::Refusals, 24)
    );
    assert!(alert.detail.contains("alert above 20"), "{}", alert.detail);
    assert!(alert.first_entry < alert.last_entry);

    // One more refusal for trent passes the limit; mallory's alert is not raised twice.
    refusal(
        &store,
        "trent",
        "POST /v1/users",
        None,
        TODAY + 12 * HOUR + 500,
    );
    let raised = store.scan_for_misuse(&policy, now).unwrap();
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(
        (
            raised[0].user_name.as_str(),
            raised[0].rule,
            raised[0].observed
        ),
        ("trent", MisuseRule::Refusals, 21)
    );
    // A stricter site alerts on trent's day earlier; a laxer one not on mallory's.
    let lax = MisuseConfig {
        refusals_per_day: 30,
        ..MisuseConfig::default()
    };
    let other = SqliteStore::open_in_memory().unwrap();
    refusal(
        &other,
        "mallory",
        "POST /v1/users",
        Some(25),
        TODAY + 10 * HOUR,
    );
    assert!(other.scan_for_misuse(&lax, now).unwrap().is_empty());
    assert_eq!(other.scan_for_misuse(&policy, now).unwrap().len(), 1);
}
