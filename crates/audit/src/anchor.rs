//! Published heads ("anchors"): copies of the chain's head kept outside the database, so that
//! cutting off the chain's tail, or rewriting it, is detectable.

use crate::entry::ChainHead;
use crate::error::AuditError;
use crate::log::head;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

/// One line of an anchor file.
#[derive(Debug, Serialize, Deserialize)]
struct AnchorLine {
    sequence: u64,
    hash: crate::EntryHash,
    published_at_ms: i64,
}

/// Appends the chain's current head to the JSON Lines file at `path` (created if absent) and
/// fsyncs it; returns the head. A copy kept where the database's writer cannot reach (another
/// machine, a printout, a notary) is what makes it an anchor.
pub fn publish_head(conn: &Connection, path: &Path) -> Result<ChainHead, AuditError> {
    let chain_head = head(conn)?;
    let created = !path.exists();
    let line = AnchorLine {
        sequence: chain_head.sequence,
        hash: chain_head.hash,
        published_at_ms: now_ms(),
    };
    let mut text = serde_json::to_string(&line).map_err(std::io::Error::from)?;
    text.push('\n');
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    // One write call, so a crash leaves at most a torn last line, which `read_anchors` skips.
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    if created {
        // The new file's directory entry must be durable too, or a crash could lose the file.
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::File::open(parent)?.sync_all()?;
        }
    }
    Ok(chain_head)
}

/// The heads in an anchor file, oldest first. A final line without its newline is a write torn
/// by a crash and is skipped; any other malformed line is an error, since an anchor file that
/// cannot be read fully cannot vouch for anything.
pub fn read_anchors(path: &Path) -> Result<Vec<ChainHead>, AuditError> {
    let mut reader = BufReader::new(std::fs::File::open(path)?);
    let mut anchors = Vec::new();
    let mut line = String::new();
    let mut line_number = 0u64;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        line_number += 1;
        let complete = line.ends_with('\n');
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<AnchorLine>(line.trim_end()) {
            Ok(anchor) => anchors.push(ChainHead {
                sequence: anchor.sequence,
                hash: anchor.hash,
            }),
            Err(_) if !complete => break,
            Err(error) => {
                return Err(AuditError::Malformed {
                    line: line_number,
                    reason: error.to_string(),
                })
            }
        }
    }
    Ok(anchors)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since_epoch| i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
