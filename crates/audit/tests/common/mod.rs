//! Helpers shared by the integration tests: a fresh log, sample entries, and an attacker who
//! has file access and therefore can drop the append-only triggers.
#![allow(dead_code)]

use rusqlite::{params, Connection};
use serde_json::json;
use vigil_audit::{
    append, canonical_json, Actor, AuditAction, AuditRecord, NewAuditEntry, Outcome, Target,
    SCHEMA_SQL,
};

pub fn open_log() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(SCHEMA_SQL).unwrap();
    conn
}

pub fn entry(user: &str, action: AuditAction, target_id: &str) -> NewAuditEntry {
    NewAuditEntry {
        actor: Actor {
            user_id: Some(format!("id-{user}")),
            user_name: user.to_owned(),
        },
        action,
        target: Target {
            kind: "subject".to_owned(),
            id: target_id.to_owned(),
        },
        case_ref: Some("CASE-2024-001".to_owned()),
        reason: "investigation of burglary".to_owned(),
        request: json!({"top_k": 10, "false_match_rate": 0.0001}),
        probe_image: None,
        outcome: Outcome::success("ok"),
    }
}

/// A log of `count` entries at one-minute intervals from 1_700_000_000_000 ms.
pub fn log_with(count: u64) -> (Connection, Vec<AuditRecord>) {
    let conn = open_log();
    let records = (1..=count)
        .map(|n| {
            let action = if n % 2 == 0 {
                AuditAction::Search
            } else {
                AuditAction::Enrol
            };
            let at_ms = 1_700_000_000_000 + i64::try_from(n).unwrap() * 60_000;
            append(&conn, &entry("alice", action, &n.to_string()), at_ms).unwrap()
        })
        .collect();
    (conn, records)
}

/// What someone with write access to the file can do: remove the triggers.
pub fn drop_triggers(conn: &Connection) {
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF;
         DROP TRIGGER audit_entries_insert_continues_chain;
         DROP TRIGGER audit_entries_no_update;
         DROP TRIGGER audit_entries_no_delete;
         DROP TRIGGER audit_probes_insert_once;
         DROP TRIGGER audit_probes_no_update;
         DROP TRIGGER audit_probes_no_delete;",
    )
    .unwrap();
}

/// Writes `record` as a row, exactly as given (hashes included).
pub fn insert_raw(conn: &Connection, record: &AuditRecord) {
    conn.execute(
        "INSERT INTO audit_entries (sequence, at_ms, actor_id, actor_name, action, target_kind, \
         target_id, case_ref, reason, request, probe_sha256, outcome, outcome_detail, \
         previous_hash, entry_hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            i64::try_from(record.sequence).unwrap(),
            record.at_ms,
            record.actor.user_id,
            record.actor.user_name,
            record.action.as_str(),
            record.target.kind,
            record.target.id,
            record.case_ref,
            record.reason,
            canonical_json(&record.request),
            record.probe_sha256,
            record.outcome.kind.as_str(),
            record.outcome.detail,
            record.previous_hash.to_hex(),
            record.entry_hash.to_hex(),
        ],
    )
    .unwrap();
}

pub fn delete_raw(conn: &Connection, sequence: u64) {
    conn.execute(
        "DELETE FROM audit_entries WHERE sequence = ?1",
        [i64::try_from(sequence).unwrap()],
    )
    .unwrap();
}
