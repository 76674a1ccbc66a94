//! Every kind of tampering issue 5 names is detected: edited, deleted, inserted, reordered
//! entries, and a truncated tail given a published head.

mod common;

use common::{delete_raw, drop_triggers, insert_raw, log_with};
use vigil_audit::{verify, AuditAction, ChainHead, EntryHash, Problem};

#[test]
fn untouched_chain_verifies_clean() {
    let (conn, records) = log_with(5);
    let report = verify(&conn, &[records[2].head(), records[4].head()]).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.entries_checked, 5);
    assert_eq!(report.last, Some(records[4].head()));
    assert_eq!(report.anchors_checked, 2);
}

#[test]
fn empty_chain_verifies_clean_and_its_head_is_genesis() {
    let (conn, _) = log_with(0);
    let genesis = ChainHead {
        sequence: 0,
        hash: EntryHash::GENESIS,
    };
    let report = verify(&conn, &[genesis]).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.last, Some(genesis));
}

#[test]
fn each_edited_field_is_detected() {
    let edits = [
        (
            "actor_name",
            "UPDATE audit_entries SET actor_name = 'mallory' WHERE sequence = 3",
        ),
        (
            "actor_id",
            "UPDATE audit_entries SET actor_id = NULL WHERE sequence = 3",
        ),
        (
            "at_ms",
            "UPDATE audit_entries SET at_ms = at_ms + 1 WHERE sequence = 3",
        ),
        (
            "action",
            "UPDATE audit_entries SET action = 'verify' WHERE sequence = 3",
        ),
        (
            "target_id",
            "UPDATE audit_entries SET target_id = '99' WHERE sequence = 3",
        ),
        (
            "case_ref",
            "UPDATE audit_entries SET case_ref = NULL WHERE sequence = 3",
        ),
        (
            "reason",
            "UPDATE audit_entries SET reason = 'routine' WHERE sequence = 3",
        ),
        (
            "request",
            r#"UPDATE audit_entries SET request = '{"top_k":1000}' WHERE sequence = 3"#,
        ),
        (
            "outcome",
            "UPDATE audit_entries SET outcome = 'refused' WHERE sequence = 3",
        ),
        (
            "outcome_detail",
            "UPDATE audit_entries SET outcome_detail = '' WHERE sequence = 3",
        ),
        (
            "probe_sha256",
            "UPDATE audit_entries SET probe_sha256 = \
             'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' WHERE sequence = 3",
        ),
    ];
    for (field, sql) in edits {
        let (conn, records) = log_with(5);
        drop_triggers(&conn);
        conn.execute_batch(sql).unwrap();
        let report = verify(&conn, &[]).unwrap();
        assert!(
            matches!(
                report.first("edited"),
                Some(Problem::Edited { sequence: 3, stored_hash, computed_hash })
                    if *stored_hash == records[2].entry_hash && computed_hash != stored_hash
            ),
            "{field}: {report:?}"
        );
        assert_eq!(report.problem_counts.get("edited"), Some(&1), "{field}");
        assert!(report.first("chain_broken").is_none(), "{field}");
    }
}

#[test]
fn edited_entry_with_a_recomputed_hash_breaks_the_next_link() {
    let (conn, records) = log_with(5);
    drop_triggers(&conn);
    let mut forged = records[2].clone();
    forged.reason = "routine check".to_owned();
    forged.entry_hash = forged.computed_hash();
    delete_raw(&conn, 3);
    insert_raw(&conn, &forged);

    let report = verify(&conn, &[]).unwrap();
    assert!(report.first("edited").is_none(), "{report:?}");
    assert_eq!(
        report.problems,
        vec![Problem::ChainBroken {
            sequence: 4,
            expected_previous: forged.entry_hash,
            found_previous: records[2].entry_hash,
        }]
    );
}

#[test]
fn deleted_middle_entry_is_detected() {
    let (conn, records) = log_with(5);
    drop_triggers(&conn);
    delete_raw(&conn, 3);

    let report = verify(&conn, &[]).unwrap();
    assert_eq!(
        report.first("missing"),
        Some(&Problem::Missing {
            after_sequence: 2,
            next_sequence: 4,
        })
    );
    assert_eq!(
        report.first("chain_broken"),
        Some(&Problem::ChainBroken {
            sequence: 4,
            expected_previous: records[1].entry_hash,
            found_previous: records[2].entry_hash,
        })
    );
}

#[test]
fn deleted_first_entry_is_detected() {
    let (conn, _) = log_with(3);
    drop_triggers(&conn);
    delete_raw(&conn, 1);
    let report = verify(&conn, &[]).unwrap();
    assert_eq!(
        report.first("missing"),
        Some(&Problem::Missing {
            after_sequence: 0,
            next_sequence: 2,
        })
    );
}

#[test]
fn inserted_forged_entry_is_detected() {
    let (conn, records) = log_with(5);
    drop_triggers(&conn);
    // Make room at 3 by renumbering the tail, then slip in an entry hashed correctly over its
    // own fields and linked to entry 2.
    conn.execute_batch("UPDATE audit_entries SET sequence = sequence + 100 WHERE sequence >= 3")
        .unwrap();
    conn.execute_batch("UPDATE audit_entries SET sequence = sequence - 99 WHERE sequence > 100")
        .unwrap();
    let mut forged = records[2].clone();
    forged.actor.user_name = "bob".to_owned();
    forged.action = AuditAction::Delete;
    forged.previous_hash = records[1].entry_hash;
    forged.entry_hash = forged.computed_hash();
    insert_raw(&conn, &forged);

    let report = verify(&conn, &[]).unwrap();
    assert_eq!(report.entries_checked, 6);
    // The renumbered entry no longer matches its hash (the sequence is hashed) ...
    assert!(matches!(
        report.first("edited"),
        Some(Problem::Edited { sequence: 4, .. })
    ));
    // ... and it does not link to the forged entry.
    assert_eq!(
        report.first("chain_broken"),
        Some(&Problem::ChainBroken {
            sequence: 4,
            expected_previous: forged.entry_hash,
            found_previous: records[1].entry_hash,
        })
    );
}

#[test]
fn forged_entry_with_its_own_hash_but_a_wrong_link_is_detected() {
    let (conn, records) = log_with(3);
    drop_triggers(&conn);
    let mut forged = records[2].clone();
    forged.sequence = 4;
    forged.previous_hash = records[1].entry_hash; // linked to the wrong predecessor
    forged.entry_hash = forged.computed_hash();
    insert_raw(&conn, &forged);

    let report = verify(&conn, &[]).unwrap();
    assert!(report.first("edited").is_none());
    assert_eq!(
        report.problems,
        vec![Problem::ChainBroken {
            sequence: 4,
            expected_previous: records[2].entry_hash,
            found_previous: records[1].entry_hash,
        }]
    );
}

#[test]
fn two_swapped_entries_are_detected() {
    let (conn, _) = log_with(5);
    drop_triggers(&conn);
    conn.execute_batch(
        "UPDATE audit_entries SET sequence = 1000 WHERE sequence = 2;
         UPDATE audit_entries SET sequence = 2 WHERE sequence = 3;
         UPDATE audit_entries SET sequence = 3 WHERE sequence = 1000;",
    )
    .unwrap();

    let report = verify(&conn, &[]).unwrap();
    assert!(matches!(
        report.first("edited"),
        Some(Problem::Edited { sequence: 2, .. })
    ));
    assert_eq!(report.problem_counts.get("edited"), Some(&2));
    assert!(matches!(
        report.first("chain_broken"),
        Some(Problem::ChainBroken { sequence: 2, .. })
    ));
}

#[test]
fn truncated_tail_is_detected_with_a_published_head() {
    let (conn, records) = log_with(5);
    let published = records[4].head();
    drop_triggers(&conn);
    delete_raw(&conn, 5);
    delete_raw(&conn, 4);

    let report = verify(&conn, &[published]).unwrap();
    assert_eq!(
        report.problems,
        vec![Problem::Truncated {
            anchor: published,
            last_sequence: 3,
        }]
    );
}

/// Documented limitation: what remains after cutting off the tail is a valid, shorter chain.
#[test]
fn truncated_tail_is_not_detectable_without_a_published_head() {
    let (conn, records) = log_with(5);
    drop_triggers(&conn);
    delete_raw(&conn, 5);
    delete_raw(&conn, 4);

    let report = verify(&conn, &[]).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.last, Some(records[2].head()));
}

#[test]
fn history_rewritten_consistently_is_detected_only_by_a_published_head() {
    let (conn, records) = log_with(5);
    let published = records[3].head();
    drop_triggers(&conn);
    // The attacker edits entry 2 and re-hashes everything after it.
    let mut previous = records[0].entry_hash;
    for (position, original) in records.iter().enumerate().skip(1) {
        let mut rewritten = original.clone();
        if position == 1 {
            rewritten.reason = "routine".to_owned();
        }
        rewritten.previous_hash = previous;
        rewritten.entry_hash = rewritten.computed_hash();
        previous = rewritten.entry_hash;
        delete_raw(&conn, rewritten.sequence);
        insert_raw(&conn, &rewritten);
    }

    assert!(verify(&conn, &[]).unwrap().is_intact());
    let report = verify(&conn, &[records[0].head(), published]).unwrap();
    assert_eq!(report.anchors_checked, 2);
    assert!(matches!(
        report.problems.as_slice(),
        [Problem::AnchorMismatch { anchor, .. }] if *anchor == published
    ));
}

#[test]
fn tampering_through_a_second_connection_to_the_file_is_detected() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("vigil.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(vigil_audit::SCHEMA_SQL).unwrap();
    for n in 1..=3 {
        vigil_audit::append(
            &conn,
            &common::entry("alice", AuditAction::Identify, &n.to_string()),
            n,
        )
        .unwrap();
    }
    let attacker = rusqlite::Connection::open(&path).unwrap();
    drop_triggers(&attacker);
    attacker
        .execute_batch("UPDATE audit_entries SET target_id = 'someone else' WHERE sequence = 2")
        .unwrap();
    drop(attacker);

    let report = verify(&conn, &[]).unwrap();
    assert!(matches!(
        report.problems.as_slice(),
        [Problem::Edited { sequence: 2, .. }]
    ));
}
