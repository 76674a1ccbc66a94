//! A long log (200 000 entries, every tenth with a probe image) is verified and exported with
//! flat memory, and tampering deep inside it is still found (issue 13 §3). Memory is the
//! process's peak resident set (`VmHWM` in /proc/self/status), reset before each walk by
//! writing 5 to /proc/self/clear_refs. This file holds one test so no other test's
//! allocations share the process while it measures.

mod common;

use common::{drop_triggers, entry};
use std::io::{BufReader, Write};
use vigil_audit::{append, export, verify, verify_export, AuditAction, Problem};

const ENTRIES: u64 = 200_000;
/// What a walk may add to the peak resident set: SQLite's page cache (2 MiB by default), the
/// statement and the report, with room for the allocator's slack.
const WALK_MEMORY_LIMIT_BYTES: u64 = 16 * 1024 * 1024;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// Runs `walk` and returns its result and how far it raised the peak resident set, in bytes.
fn peak_growth<T>(walk: impl FnOnce() -> T) -> (T, u64) {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak resident set");
    let before = status_kib("VmHWM:");
    let value = walk();
    let after = status_kib("VmHWM:");
    (value, after.saturating_sub(before) * 1024)
}

/// Counts what is written, keeping nothing.
struct CountingSink(u64);

impl Write for CountingSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len() as u64;
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_long_log_is_verified_and_exported_in_flat_memory_and_tampering_deep_inside_is_found() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("vigil.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "journal_mode", "wal").unwrap();
    conn.execute_batch(vigil_audit::SCHEMA_SQL).unwrap();
    {
        // One transaction: the public `append`, as the store calls it inside its own.
        let transaction = conn.unchecked_transaction().unwrap();
        for n in 1..=ENTRIES {
            let mut new = entry("alice", AuditAction::Identify, &n.to_string());
            new.reason = format!("investigation {n} of a long-running case, with its notes");
            if n % 10 == 0 {
                new.probe_image = Some(format!("probe image {n}").into_bytes());
            }
            append(&transaction, &new, 1_700_000_000_000 + n as i64).unwrap();
        }
        transaction.commit().unwrap();
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let database_bytes = std::fs::metadata(&path).unwrap().len();
    assert!(
        database_bytes > 4 * WALK_MEMORY_LIMIT_BYTES,
        "the log ({database_bytes} bytes) must dwarf the memory a walk may use"
    );

    // A fresh connection, as `vigil audit verify` and the API's read connection open it.
    let reader = rusqlite::Connection::open(&path).unwrap();
    let (report, verify_growth) = peak_growth(|| verify(&reader, &[]).unwrap());
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.entries_checked, ENTRIES);
    assert!(
        verify_growth < WALK_MEMORY_LIMIT_BYTES,
        "verify raised the peak resident set by {verify_growth} bytes over a {database_bytes}-byte log"
    );

    let mut sink = CountingSink(0);
    let (head, export_growth) = peak_growth(|| export(&reader, &mut sink, 1).unwrap());
    assert_eq!(head.sequence, ENTRIES);
    assert!(sink.0 > database_bytes / 2, "export wrote {} bytes", sink.0);
    assert!(
        export_growth < WALK_MEMORY_LIMIT_BYTES,
        "export raised the peak resident set by {export_growth} bytes"
    );

    // An attacker with the file edits one entry deep in the log and removes one probe image.
    let attacker = rusqlite::Connection::open(&path).unwrap();
    drop_triggers(&attacker);
    attacker
        .execute_batch(
            "UPDATE audit_entries SET actor_name = 'mallory' WHERE sequence = 173205;
             DELETE FROM audit_probes WHERE sha256 =
                 (SELECT probe_sha256 FROM audit_entries WHERE sequence = 190000);",
        )
        .unwrap();
    drop(attacker);
    let (report, tampered_growth) = peak_growth(|| verify(&reader, &[]).unwrap());
    assert!(
        matches!(
            report.first("edited"),
            Some(Problem::Edited {
                sequence: 173_205,
                ..
            })
        ),
        "{:?}",
        report.problems
    );
    assert!(
        matches!(
            report.first("probe_missing"),
            Some(Problem::ProbeMissing {
                sequence: 190_000,
                ..
            })
        ),
        "{:?}",
        report.problems
    );
    assert_eq!(report.problem_counts.get("probe_missing"), Some(&1));
    assert!(tampered_growth < WALK_MEMORY_LIMIT_BYTES);

    // The export of the tampered log, verified offline line by line, shows the edit too.
    let exported = folder.path().join("audit.jsonl");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&exported).unwrap());
        export(&reader, &mut file, 1).unwrap();
        file.flush().unwrap();
    }
    let (report, offline_growth) = peak_growth(|| {
        verify_export(BufReader::new(std::fs::File::open(&exported).unwrap()), &[]).unwrap()
    });
    assert!(matches!(
        report.first("edited"),
        Some(Problem::Edited {
            sequence: 173_205,
            ..
        })
    ));
    assert!(offline_growth < WALK_MEMORY_LIMIT_BYTES);
    eprintln!(
        "{ENTRIES} entries, {database_bytes} bytes: peak RSS growth verify {verify_growth} B, \
         export {export_growth} B, tampered verify {tampered_growth} B, offline verify \
         {offline_growth} B"
    );
}
