//! Appending, the database-level guards, probes, queries, export and published heads.

mod common;

use common::{drop_triggers, entry, log_with, open_log};
use rusqlite::TransactionBehavior;
use serde_json::json;
use std::io::Cursor;
use vigil_audit::{
    actor_activity, append, entries, export, head, probe_image, publish_head, read_anchors, verify,
    verify_export, AuditAction, AuditError, AuditFilter, ChainHead, EntryHash, Outcome, Problem,
};

#[test]
fn appended_entries_are_numbered_and_chained_from_genesis() {
    let (conn, records) = log_with(3);
    assert_eq!(records[0].sequence, 1);
    assert_eq!(records[0].previous_hash, EntryHash::GENESIS);
    for pair in records.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence + 1);
        assert_eq!(pair[1].previous_hash, pair[0].entry_hash);
    }
    for record in &records {
        assert_eq!(record.computed_hash(), record.entry_hash);
    }
    assert_eq!(head(&conn).unwrap(), records[2].head());
    assert_eq!(
        entries(&conn, &AuditFilter::default()).unwrap(),
        records,
        "what append returns is what is stored"
    );
}

#[test]
fn triggers_refuse_update_and_delete_of_entries_and_probes() {
    let conn = open_log();
    let mut search = entry("alice", AuditAction::Search, "all");
    search.probe_image = Some(b"probe bytes".to_vec());
    let record = append(&conn, &search, 1).unwrap();
    let sha256 = record.probe_sha256.clone().unwrap();

    for sql in [
        "UPDATE audit_entries SET reason = 'x' WHERE sequence = 1".to_owned(),
        "DELETE FROM audit_entries WHERE sequence = 1".to_owned(),
        "DELETE FROM audit_entries".to_owned(),
        format!("UPDATE audit_probes SET image = x'00' WHERE sha256 = '{sha256}'"),
        format!("DELETE FROM audit_probes WHERE sha256 = '{sha256}'"),
        format!(
            "INSERT OR REPLACE INTO audit_probes (sha256, image, first_stored_at_ms) \
             VALUES ('{sha256}', x'00', 2)"
        ),
    ] {
        let error = conn.execute_batch(&sql).unwrap_err();
        assert!(error.to_string().contains("append-only"), "{sql}: {error}");
    }
    // INSERT OR REPLACE would delete the old row without firing the delete trigger; the insert
    // trigger refuses it because it does not continue the chain.
    let error = conn
        .execute_batch(&format!(
            "INSERT OR REPLACE INTO audit_entries (sequence, at_ms, actor_name, action, \
             target_kind, target_id, reason, request, outcome, outcome_detail, previous_hash, \
             entry_hash) VALUES (1, 1, 'mallory', 'login', 'user', 'x', '', '{{}}', 'success', \
             '', '{zero}', '{zero}')",
            zero = EntryHash::GENESIS
        ))
        .unwrap_err();
    assert!(error.to_string().contains("continue the chain"), "{error}");
    assert!(verify(&conn, &[]).unwrap().is_intact());
    assert_eq!(
        entries(&conn, &AuditFilter::default()).unwrap(),
        vec![record]
    );
}

#[test]
fn same_probe_is_stored_once_and_an_altered_probe_is_detected() {
    let conn = open_log();
    let mut search = entry("alice", AuditAction::Search, "all");
    search.probe_image = Some(b"the same probe".to_vec());
    let first = append(&conn, &search, 1).unwrap();
    let second = append(&conn, &search, 2).unwrap();
    search.probe_image = Some(b"another probe".to_vec());
    let third = append(&conn, &search, 3).unwrap();

    assert_eq!(first.probe_sha256, second.probe_sha256);
    assert_ne!(first.probe_sha256, third.probe_sha256);
    let probes: i64 = conn
        .query_row("SELECT count(*) FROM audit_probes", [], |row| row.get(0))
        .unwrap();
    assert_eq!(probes, 2);
    let sha256 = first.probe_sha256.unwrap();
    assert_eq!(
        sha256,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"the same probe"))
    );
    assert_eq!(
        probe_image(&conn, &sha256, None).unwrap().as_deref(),
        Some(&b"the same probe"[..])
    );
    assert!(verify(&conn, &[]).unwrap().is_intact());

    drop_triggers(&conn);
    conn.execute(
        "UPDATE audit_probes SET image = x'00' WHERE sha256 = ?1",
        [&sha256],
    )
    .unwrap();
    let report = verify(&conn, &[]).unwrap();
    assert_eq!(
        report.problems,
        vec![Problem::ProbeAltered {
            sha256: sha256.clone()
        }]
    );

    conn.execute("DELETE FROM audit_probes WHERE sha256 = ?1", [&sha256])
        .unwrap();
    let report = verify(&conn, &[]).unwrap();
    assert_eq!(
        report.problems,
        vec![Problem::ProbeMissing {
            sequence: 1,
            sha256
        }]
    );
}

#[test]
fn append_in_a_rolled_back_transaction_leaves_no_entry() {
    let mut conn = open_log();
    conn.execute_batch("CREATE TABLE subjects (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        .unwrap();
    append(&conn, &entry("alice", AuditAction::Login, "alice"), 1).unwrap();

    {
        let transaction = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        transaction
            .execute("INSERT INTO subjects (name) VALUES ('x')", [])
            .unwrap();
        let record = append(&transaction, &entry("alice", AuditAction::Enrol, "1"), 2).unwrap();
        assert_eq!(record.sequence, 2);
        // dropped without commit: the change and its entry go together
    }
    assert_eq!(head(&conn).unwrap().sequence, 1);
    let subjects: i64 = conn
        .query_row("SELECT count(*) FROM subjects", [], |row| row.get(0))
        .unwrap();
    assert_eq!(subjects, 0);

    let transaction = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    transaction
        .execute("INSERT INTO subjects (name) VALUES ('x')", [])
        .unwrap();
    let record = append(&transaction, &entry("alice", AuditAction::Enrol, "1"), 3).unwrap();
    transaction.commit().unwrap();
    assert_eq!(
        record.sequence, 2,
        "the rolled-back number is reused: no gap"
    );
    assert!(verify(&conn, &[]).unwrap().is_intact());
}

#[test]
fn invalid_entries_are_refused_and_write_nothing() {
    let conn = open_log();
    let mut not_object = entry("alice", AuditAction::Search, "all");
    not_object.request = json!([1, 2]);
    let mut no_actor = entry(" ", AuditAction::Search, "all");
    no_actor.actor.user_id = None;
    let mut long_reason = entry("alice", AuditAction::Search, "all");
    long_reason.reason = "x".repeat(vigil_audit::MAX_TEXT_BYTES + 1);
    let mut empty_probe = entry("alice", AuditAction::Search, "all");
    empty_probe.probe_image = Some(Vec::new());
    for bad in [not_object, no_actor, long_reason, empty_probe] {
        assert!(matches!(
            append(&conn, &bad, 1),
            Err(AuditError::Invalid(_))
        ));
    }
    assert_eq!(head(&conn).unwrap().sequence, 0);
    assert!(matches!(
        "teleport".parse::<AuditAction>(),
        Err(AuditError::UnknownAction(_))
    ));
    for action in AuditAction::ALL {
        assert_eq!(action.as_str().parse::<AuditAction>().unwrap(), *action);
        assert_eq!(
            serde_json::to_value(action).unwrap(),
            json!(action.as_str())
        );
    }
}

#[test]
fn entries_filter_by_actor_action_case_time_and_page() {
    let conn = open_log();
    let hour = 3_600_000;
    let mut bob_search = entry("bob", AuditAction::Search, "all");
    bob_search.case_ref = Some("CASE-B".to_owned());
    append(&conn, &entry("alice", AuditAction::Enrol, "1"), 0).unwrap();
    append(&conn, &bob_search, hour).unwrap();
    append(&conn, &entry("alice", AuditAction::Search, "all"), 2 * hour).unwrap();
    let mut refused = entry("alice", AuditAction::Search, "all");
    refused.outcome = Outcome::refused("no case reference");
    append(&conn, &refused, 26 * hour).unwrap();

    let sequences = |filter: AuditFilter| -> Vec<u64> {
        entries(&conn, &filter)
            .unwrap()
            .iter()
            .map(|record| record.sequence)
            .collect()
    };
    assert_eq!(
        sequences(AuditFilter {
            actor_name: Some("alice".into()),
            ..Default::default()
        }),
        [1, 3, 4]
    );
    assert_eq!(
        sequences(AuditFilter {
            actor_id: Some("id-bob".into()),
            ..Default::default()
        }),
        [2]
    );
    assert_eq!(
        sequences(AuditFilter {
            action: Some(AuditAction::Search),
            ..Default::default()
        }),
        [2, 3, 4]
    );
    assert_eq!(
        sequences(AuditFilter {
            case_ref: Some("CASE-B".into()),
            ..Default::default()
        }),
        [2]
    );
    assert_eq!(
        sequences(AuditFilter {
            from_ms: Some(hour),
            to_ms: Some(26 * hour),
            ..Default::default()
        }),
        [2, 3]
    );
    assert_eq!(
        sequences(AuditFilter {
            after_sequence: Some(1),
            limit: Some(2),
            ..Default::default()
        }),
        [2, 3]
    );

    let activity = actor_activity(&conn, "alice", 0, 48 * hour).unwrap();
    assert_eq!(activity.total, 3);
    assert_eq!(activity.by_action.get("search"), Some(&2));
    assert_eq!(activity.by_action.get("enrol"), Some(&1));
    assert_eq!(activity.by_outcome.get("refused"), Some(&1));
    assert_eq!(activity.by_hour_utc[0], 1);
    assert_eq!(
        activity.by_hour_utc[2], 2,
        "26 h after the epoch is 02:00 UTC"
    );
    assert_eq!(
        actor_activity(&conn, "alice", hour, 2 * hour)
            .unwrap()
            .total,
        0
    );
}

#[test]
fn hour_of_day_is_right_before_1970() {
    let conn = open_log();
    append(
        &conn,
        &entry("alice", AuditAction::Login, "alice"),
        -3_600_000,
    )
    .unwrap();
    let activity = actor_activity(&conn, "alice", i64::MIN, i64::MAX).unwrap();
    assert_eq!(activity.by_hour_utc[23], 1);
}

fn exported(conn: &rusqlite::Connection, from_sequence: u64) -> (String, ChainHead) {
    let mut out = Vec::new();
    let chain_head = export(conn, &mut out, from_sequence).unwrap();
    (String::from_utf8(out).unwrap(), chain_head)
}

fn verify_text(text: &str, anchors: &[ChainHead]) -> vigil_audit::VerifyReport {
    verify_export(Cursor::new(text.as_bytes()), anchors).unwrap()
}

#[test]
fn export_verifies_offline_with_anchors() {
    let (conn, records) = log_with(5);
    let (text, chain_head) = exported(&conn, 1);
    assert_eq!(chain_head, records[4].head());
    assert_eq!(text.lines().count(), 6);
    assert!(text.lines().last().unwrap().contains(r#""type":"head""#));

    let report = verify_text(&text, &[records[0].head(), records[4].head()]);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.entries_checked, 5);
    assert_eq!(report.anchors_checked, 2);

    // A partial export checks the anchor just before its start and leaves earlier ones.
    let (partial, _) = exported(&conn, 3);
    let report = verify_text(&partial, &[records[0].head(), records[1].head()]);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.anchors_checked, report.anchors_unchecked), (1, 1));

    // An export past the end is just the head.
    let (empty, _) = exported(&conn, 6);
    let report = verify_text(&empty, &[records[4].head()]);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.last, Some(records[4].head()));
}

#[test]
fn tampered_export_is_detected() {
    let (conn, records) = log_with(5);
    let (text, _) = exported(&conn, 1);
    let lines: Vec<&str> = text.lines().collect();
    let join = |lines: &[&str]| lines.join("\n") + "\n";

    let edited = text.replacen("investigation of burglary", "routine check", 1);
    assert!(matches!(
        verify_text(&edited, &[]).first("edited"),
        Some(Problem::Edited { sequence: 1, .. })
    ));

    let deleted = join(&[lines[0], lines[1], lines[3], lines[4], lines[5]]);
    assert_eq!(
        verify_text(&deleted, &[]).first("missing"),
        Some(&Problem::Missing {
            after_sequence: 2,
            next_sequence: 4
        })
    );

    let swapped = join(&[lines[0], lines[2], lines[1], lines[3], lines[4], lines[5]]);
    let report = verify_text(&swapped, &[]);
    assert!(report.first("out_of_order").is_some(), "{report:?}");
    assert!(report.first("chain_broken").is_some(), "{report:?}");

    let no_head = join(&lines[..5]);
    assert_eq!(
        verify_text(&no_head, &[]).problems,
        vec![Problem::ExportHeadMissing]
    );

    // Cut entries but keep the head line: the head betrays it; rewrite the head too and only
    // an anchor does.
    let cut = join(&[lines[0], lines[1], lines[2], lines[5]]);
    assert!(verify_text(&cut, &[])
        .first("export_head_mismatch")
        .is_some());
    let head_3 = json!({"type": "head", "sequence": 3, "hash": records[2].entry_hash});
    let short_export = join(&[lines[0], lines[1], lines[2], &head_3.to_string()]);
    assert!(verify_text(&short_export, &[]).is_intact());
    assert_eq!(
        verify_text(&short_export, &[records[4].head()]).problems,
        vec![Problem::Truncated {
            anchor: records[4].head(),
            last_sequence: 3
        }]
    );

    let garbled = join(&[
        lines[0],
        "{not json",
        lines[2],
        lines[3],
        lines[4],
        lines[5],
    ]);
    let report = verify_text(&garbled, &[]);
    assert!(matches!(
        report.first("unreadable"),
        Some(Problem::Unreadable { position: 2, .. })
    ));
}

#[test]
fn published_heads_round_trip_through_the_anchor_file() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("audit-head.jsonl");
    let (conn, _) = log_with(2);
    let first = publish_head(&conn, &path).unwrap();
    append(&conn, &entry("alice", AuditAction::Export, "case"), 10).unwrap();
    let second = publish_head(&conn, &path).unwrap();
    assert_eq!((first.sequence, second.sequence), (2, 3));
    assert_eq!(read_anchors(&path).unwrap(), vec![first, second]);
    assert!(verify(&conn, &read_anchors(&path).unwrap())
        .unwrap()
        .is_intact());

    // A write torn by a crash is skipped; a malformed complete line is an error.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(r#"{"sequence":4,"ha"#);
    std::fs::write(&path, &text).unwrap();
    assert_eq!(read_anchors(&path).unwrap(), vec![first, second]);
    std::fs::write(&path, format!("garbage\n{text}")).unwrap();
    assert!(matches!(
        read_anchors(&path),
        Err(AuditError::Malformed { line: 1, .. })
    ));
}
