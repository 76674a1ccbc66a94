//! Walking a chain and reporting where it was tampered with.

use crate::entry::{ChainHead, EntryHash};
use crate::error::AuditError;
use crate::export::ExportLine;
use crate::hash::RawEntry;
use crate::log::{raw_entry_from_row, ENTRY_COLUMNS};
use rusqlite::{Connection, TransactionBehavior};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use vigil_seal::Sealer;

/// One kind of damage. `verify` reports the first of each kind (and counts them all): the
/// first is where an investigation starts, and one edit usually causes more than one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// The entry's fields do not hash to its stored `entry_hash`: a field was edited, or the
    /// entry was renumbered (sequence numbers are hashed) as when entries are reordered.
    Edited {
        sequence: u64,
        stored_hash: EntryHash,
        computed_hash: EntryHash,
    },
    /// A row or line that cannot be read as an entry at all.
    Unreadable {
        /// Sequence number for a database row, line number for an export.
        position: u64,
        detail: String,
    },
    /// Sequence numbers jump: the entries in between were deleted.
    Missing {
        after_sequence: u64,
        next_sequence: u64,
    },
    /// A sequence number at or below one already seen (an export's lines reordered or repeated).
    OutOfOrder {
        expected_sequence: u64,
        found_sequence: u64,
    },
    /// The entry's `previous_hash` is not the stored hash of the entry before it: an entry was
    /// inserted, replaced, removed or moved here.
    ChainBroken {
        sequence: u64,
        expected_previous: EntryHash,
        found_previous: EntryHash,
    },
    /// The chain ends before a published head: its tail was cut off.
    Truncated {
        anchor: ChainHead,
        last_sequence: u64,
    },
    /// The entry at a published head's sequence has another hash: history up to there was
    /// rewritten (and re-hashed consistently, or another problem would show first).
    AnchorMismatch {
        anchor: ChainHead,
        found_hash: EntryHash,
    },
    /// An entry names a probe image that is not stored.
    ProbeMissing { sequence: u64, sha256: String },
    /// A stored probe image does not hash to the sha256 it is stored under: it was replaced.
    ProbeAltered { sha256: String },
    /// A sealed probe image could not be opened to check it: no key for it was given, or it
    /// fails authentication (altered, or copied from another row).
    ProbeUnreadable { sha256: String, reason: String },
    /// An export has no final head line: it was cut off or its head removed.
    ExportHeadMissing,
    /// An export's head line disagrees with its last entry.
    ExportHeadMismatch {
        head_line: ChainHead,
        last_entry: ChainHead,
    },
}

impl Problem {
    /// The snake_case name of the kind, as serialised in `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::Edited { .. } => "edited",
            Problem::Unreadable { .. } => "unreadable",
            Problem::Missing { .. } => "missing",
            Problem::OutOfOrder { .. } => "out_of_order",
            Problem::ChainBroken { .. } => "chain_broken",
            Problem::Truncated { .. } => "truncated",
            Problem::AnchorMismatch { .. } => "anchor_mismatch",
            Problem::ProbeMissing { .. } => "probe_missing",
            Problem::ProbeAltered { .. } => "probe_altered",
            Problem::ProbeUnreadable { .. } => "probe_unreadable",
            Problem::ExportHeadMissing => "export_head_missing",
            Problem::ExportHeadMismatch { .. } => "export_head_mismatch",
        }
    }
}

/// What a walk of the chain found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyReport {
    pub entries_checked: u64,
    /// The last entry walked, as stored (sequence 0, genesis for an empty chain). Publish it
    /// only from a report without problems.
    pub last: Option<ChainHead>,
    /// Anchors compared with the chain (including those beyond its end, which are `Truncated`).
    pub anchors_checked: usize,
    /// Anchors that could not be compared: before the start of an export, or at a missing entry.
    pub anchors_unchecked: usize,
    /// The first problem of each kind, in the order found.
    pub problems: Vec<Problem>,
    /// How many problems of each kind were found in all.
    pub problem_counts: BTreeMap<String, u64>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }

    /// The first problem of `kind` (a `Problem::kind` name), if any.
    pub fn first(&self, kind: &str) -> Option<&Problem> {
        self.problems.iter().find(|problem| problem.kind() == kind)
    }

    fn report(&mut self, problem: Problem) {
        let count = self
            .problem_counts
            .entry(problem.kind().to_owned())
            .or_default();
        *count += 1;
        if *count == 1 {
            self.problems.push(problem);
        }
    }
}

/// Checks entries in the order given against each other and against `anchors`.
struct Walker {
    report: VerifyReport,
    /// Sequence and stored hash of the entry before the next one; `None` before the first.
    previous: Option<(u64, Option<EntryHash>)>,
    /// Whether the first entry must be sequence 1 chained to genesis (a whole chain) or may
    /// start anywhere (an export from a later sequence).
    whole_chain: bool,
    /// The stored hash at each anchored sequence walked (and the one before an export's start).
    anchored: HashMap<u64, EntryHash>,
    anchors: Vec<ChainHead>,
}

impl Walker {
    fn new(anchors: &[ChainHead], whole_chain: bool) -> Self {
        Walker {
            report: VerifyReport::default(),
            previous: None,
            whole_chain,
            anchored: HashMap::new(),
            anchors: anchors.to_vec(),
        }
    }

    fn is_anchored(&self, sequence: u64) -> bool {
        self.anchors
            .iter()
            .any(|anchor| anchor.sequence == sequence)
    }

    fn entry(&mut self, entry: &RawEntry) {
        self.report.entries_checked += 1;
        let computed_hash = entry.computed_hash();
        if computed_hash != entry.entry_hash {
            self.report.report(Problem::Edited {
                sequence: entry.sequence,
                stored_hash: entry.entry_hash,
                computed_hash,
            });
        }
        let expected_previous = match self.previous {
            Some((sequence, hash)) => {
                self.check_sequence(sequence, entry.sequence);
                hash
            }
            None if self.whole_chain || entry.sequence == 1 => {
                self.check_sequence(0, entry.sequence);
                self.anchored.insert(0, EntryHash::GENESIS);
                Some(EntryHash::GENESIS)
            }
            None => {
                // An export from a later sequence: its first link is taken as given, and an
                // anchor just before the start can still be compared with it.
                if let Some(before) = entry.sequence.checked_sub(1) {
                    if self.is_anchored(before) {
                        self.anchored.insert(before, entry.previous_hash);
                    }
                }
                None
            }
        };
        if let Some(expected_previous) = expected_previous {
            if expected_previous != entry.previous_hash {
                self.report.report(Problem::ChainBroken {
                    sequence: entry.sequence,
                    expected_previous,
                    found_previous: entry.previous_hash,
                });
            }
        }
        if self.is_anchored(entry.sequence) {
            self.anchored.insert(entry.sequence, entry.entry_hash);
        }
        self.previous = Some((entry.sequence, Some(entry.entry_hash)));
        self.report.last = Some(entry.head());
    }

    /// A row that could not be decoded: its successor's link cannot be checked.
    fn unreadable(&mut self, position: u64, sequence: Option<u64>, detail: String) {
        self.report.entries_checked += 1;
        self.report.report(Problem::Unreadable { position, detail });
        if let Some(sequence) = sequence {
            if let Some((previous, _)) = self.previous {
                self.check_sequence(previous, sequence);
            }
            self.previous = Some((sequence, None));
        }
    }

    fn check_sequence(&mut self, previous: u64, found: u64) {
        let expected = previous.saturating_add(1);
        if found > expected {
            self.report.report(Problem::Missing {
                after_sequence: previous,
                next_sequence: found,
            });
        } else if found < expected {
            self.report.report(Problem::OutOfOrder {
                expected_sequence: expected,
                found_sequence: found,
            });
        }
    }

    fn finish(mut self) -> VerifyReport {
        let last_sequence = self.previous.map_or(0, |(sequence, _)| sequence);
        if self.whole_chain && self.previous.is_none() {
            self.anchored.insert(0, EntryHash::GENESIS);
        }
        for anchor in std::mem::take(&mut self.anchors) {
            if anchor.sequence > last_sequence {
                self.report.anchors_checked += 1;
                self.report.report(Problem::Truncated {
                    anchor,
                    last_sequence,
                });
            } else if let Some(found_hash) = self.anchored.get(&anchor.sequence).copied() {
                self.report.anchors_checked += 1;
                if found_hash != anchor.hash {
                    self.report
                        .report(Problem::AnchorMismatch { anchor, found_hash });
                }
            } else {
                self.report.anchors_unchecked += 1;
            }
        }
        if self.report.last.is_none() && self.whole_chain {
            self.report.last = Some(ChainHead {
                sequence: 0,
                hash: EntryHash::GENESIS,
            });
        }
        self.report
    }
}

/// Walks the whole chain in the database, checks it against `anchors` (heads published
/// earlier) and checks every stored probe image against its sha256.
///
/// Without anchors a cut-off tail is undetectable: what remains is a valid, shorter chain.
/// On a connection in autocommit mode the walk reads one consistent snapshot.
///
/// Sealed probe images (encryption at rest) cannot be checked without their keys: use
/// [`verify_sealed`] there, or each is reported as `ProbeUnreadable`.
pub fn verify(conn: &Connection, anchors: &[ChainHead]) -> Result<VerifyReport, AuditError> {
    verify_sealed(conn, anchors, None)
}

/// [`verify`], opening sealed probe images with `sealer` to check them against their sha256.
pub fn verify_sealed(
    conn: &Connection,
    anchors: &[ChainHead],
    sealer: Option<&Sealer>,
) -> Result<VerifyReport, AuditError> {
    // Dropped at the end, which ends the read transaction; nothing is written.
    let _snapshot = if conn.is_autocommit() {
        Some(rusqlite::Transaction::new_unchecked(
            conn,
            TransactionBehavior::Deferred,
        )?)
    } else {
        None
    };
    let mut walker = Walker::new(anchors, true);
    // The walk streams: one cursor over the chain, each row checked and dropped, so memory
    // stays flat however long the log (docs/design/008). Only the first missing probe is kept.
    let mut first_missing_probe = None;
    let mut missing_probes = 0_u64;
    {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM audit_entries ORDER BY sequence");
        let mut statement = conn.prepare(&sql)?;
        let mut probe_stored = conn.prepare("SELECT 1 FROM audit_probes WHERE sha256 = ?1")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            match raw_entry_from_row(row) {
                Ok(entry) => {
                    if let Some(sha256) = &entry.probe_sha256 {
                        if !probe_stored.exists([sha256])? {
                            missing_probes += 1;
                            first_missing_probe.get_or_insert_with(|| Problem::ProbeMissing {
                                sequence: entry.sequence,
                                sha256: sha256.clone(),
                            });
                        }
                    }
                    walker.entry(&entry);
                }
                Err(error) => {
                    let sequence = row
                        .get::<_, i64>(0)
                        .ok()
                        .and_then(|sequence| u64::try_from(sequence).ok());
                    walker.unreadable(sequence.unwrap_or(0), sequence, error.to_string());
                }
            }
        }
    }
    let mut report = walker.finish();
    if let Some(problem) = first_missing_probe {
        report.report(problem);
        *report
            .problem_counts
            .entry("probe_missing".to_owned())
            .or_default() = missing_probes;
    }
    check_probes(conn, &mut report, sealer)?;
    Ok(report)
}

/// Checks every stored probe image against the sha256 it is stored under, one row at a time.
fn check_probes(
    conn: &Connection,
    report: &mut VerifyReport,
    sealer: Option<&Sealer>,
) -> Result<(), AuditError> {
    let mut statement = conn.prepare("SELECT sha256, image FROM audit_probes ORDER BY sha256")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let sha256: String = row.get(0)?;
        let stored = row.get_ref(1)?.as_blob().unwrap_or_default();
        let image = match crate::log::open_probe(stored, &sha256, sealer) {
            Ok(image) => image,
            Err(error) => {
                report.report(Problem::ProbeUnreadable {
                    sha256,
                    reason: error.to_string(),
                });
                continue;
            }
        };
        if hex::encode(Sha256::digest(&image)) != sha256 {
            report.report(Problem::ProbeAltered { sha256 });
        }
    }
    Ok(())
}

/// Verifies an export written by `export` without the database: the entries' hashes and links,
/// the final head line, and `anchors`. An export that starts after sequence 1 is trusted for its
/// first link; anchors before its start are counted as unchecked.
pub fn verify_export(
    reader: impl BufRead,
    anchors: &[ChainHead],
) -> Result<VerifyReport, AuditError> {
    let mut walker = Walker::new(anchors, false);
    let mut head_line = None;
    for (index, line) in reader.lines().enumerate() {
        let line = line?;
        let line_number = index as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        if head_line.is_some() {
            walker.unreadable(line_number, None, "a line after the head line".to_owned());
            continue;
        }
        match serde_json::from_str::<ExportLine>(&line) {
            Ok(ExportLine::Entry(entry)) => walker.entry(&entry),
            Ok(ExportLine::Head(head)) => head_line = Some(head),
            Err(error) => {
                let sequence = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|value| value.get("sequence").and_then(|s| s.as_u64()));
                walker.unreadable(line_number, sequence, error.to_string());
            }
        }
    }
    if let (Some(head), None) = (head_line, walker.previous) {
        // No entries after the export's start: its head line is all there is to anchor against.
        walker.previous = Some((head.sequence, Some(head.hash)));
        walker.anchored.insert(head.sequence, head.hash);
        walker.report.last = Some(head);
    }
    let mut report = walker.finish();
    match (head_line, report.last) {
        (None, _) => report.report(Problem::ExportHeadMissing),
        (Some(head), Some(last)) if head != last => report.report(Problem::ExportHeadMismatch {
            head_line: head,
            last_entry: last,
        }),
        _ => {}
    }
    Ok(report)
}
