//! JSON Lines export: one entry per line, then the chain's head, verifiable without the database.

use crate::entry::ChainHead;
use crate::error::AuditError;
use crate::hash::RawEntry;
use crate::log::{head, raw_entry_from_row, sql_sequence, ENTRY_COLUMNS};
use rusqlite::{Connection, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::io::Write;

/// One line of an export: `{"type":"entry", ...the AuditRecord fields}` or, last,
/// `{"type":"head","sequence":N,"hash":"..."}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ExportLine {
    // Boxed: an entry is far larger than a head.
    Entry(Box<RawEntry>),
    Head(ChainHead),
}

/// Writes the entries from `from_sequence` (1 for the whole chain) to the end, then the head, as
/// JSON Lines; returns that head. Entries and head come from one snapshot of the database.
/// Probe images are not included, only their sha256.
pub fn export(
    conn: &Connection,
    mut writer: impl Write,
    from_sequence: u64,
) -> Result<ChainHead, AuditError> {
    let _snapshot = if conn.is_autocommit() {
        Some(rusqlite::Transaction::new_unchecked(
            conn,
            TransactionBehavior::Deferred,
        )?)
    } else {
        None
    };
    let sql =
        format!("SELECT {ENTRY_COLUMNS} FROM audit_entries WHERE sequence >= ?1 ORDER BY sequence");
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query([sql_sequence(from_sequence)?])?;
    while let Some(row) = rows.next()? {
        write_line(
            &mut writer,
            &ExportLine::Entry(Box::new(raw_entry_from_row(row)?)),
        )?;
    }
    let chain_head = head(conn)?;
    write_line(&mut writer, &ExportLine::Head(chain_head))?;
    writer.flush()?;
    Ok(chain_head)
}

fn write_line(writer: &mut impl Write, line: &ExportLine) -> Result<(), AuditError> {
    serde_json::to_writer(&mut *writer, line).map_err(std::io::Error::from)?;
    writer.write_all(b"\n")?;
    Ok(())
}
