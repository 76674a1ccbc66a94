//! Appending to the chain and reading it back.

use crate::entry::{
    Actor, AuditAction, AuditRecord, ChainHead, EntryHash, NewAuditEntry, Outcome, OutcomeKind,
    Target,
};
use crate::error::AuditError;
use crate::hash::{canonical_json, RawEntry};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::BTreeMap;
use vigil_seal::Sealer;

/// Longest text field accepted, in bytes: audit fields are names and sentences, not documents.
pub const MAX_TEXT_BYTES: usize = 4096;
/// Longest request summary accepted, in bytes of canonical JSON.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Largest probe image accepted; larger uploads are refused long before they reach the log.
pub const MAX_PROBE_BYTES: usize = 64 * 1024 * 1024;

/// `entries` returns at most this many records when the filter names no limit.
pub const DEFAULT_LIMIT: usize = 1000;
/// ... and never more than this many.
pub const MAX_LIMIT: usize = 10_000;

pub(crate) const ENTRY_COLUMNS: &str = "sequence, at_ms, actor_id, actor_name, action, \
    target_kind, target_id, case_ref, reason, request, probe_sha256, outcome, outcome_detail, \
    previous_hash, entry_hash";

/// Appends one entry and returns it as stored.
///
/// Call it with the caller's open transaction (a `rusqlite::Transaction` derefs to
/// `Connection`): the entry then commits or rolls back with the change it records. Take that
/// transaction with `BEGIN IMMEDIATE`, so no other writer can append between reading the chain's
/// tail and inserting (were one to, the insert would fail rather than fork the chain). On a
/// connection in autocommit mode the append runs in its own immediate transaction.
///
/// The probe image, if any, is stored as given: use [`append_sealed`] where encryption at rest
/// is configured.
pub fn append(
    conn: &Connection,
    entry: &NewAuditEntry,
    at_ms: i64,
) -> Result<AuditRecord, AuditError> {
    append_sealed(conn, entry, at_ms, None)
}

/// [`append`], sealing the probe image with `sealer` when one is given (encryption at rest,
/// docs/design/011), bound to its sha256 by [`probe_binding`]. The chain hashes the sha256 of
/// the plaintext either way, so sealing and resealing never touch the chain.
pub fn append_sealed(
    conn: &Connection,
    entry: &NewAuditEntry,
    at_ms: i64,
    sealer: Option<&Sealer>,
) -> Result<AuditRecord, AuditError> {
    validate(entry)?;
    if conn.is_autocommit() {
        let transaction =
            rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        let record = append_in_transaction(&transaction, entry, at_ms, sealer)?;
        transaction.commit()?;
        Ok(record)
    } else {
        append_in_transaction(conn, entry, at_ms, sealer)
    }
}

/// The associated data that binds a sealed probe image to its row: `probe:<sha256>:image`.
pub fn probe_binding(sha256: &str) -> Vec<u8> {
    format!("probe:{sha256}:image").into_bytes()
}

fn append_in_transaction(
    conn: &Connection,
    entry: &NewAuditEntry,
    at_ms: i64,
    sealer: Option<&Sealer>,
) -> Result<AuditRecord, AuditError> {
    let previous = head(conn)?;
    let sequence = previous
        .sequence
        .checked_add(1)
        .ok_or_else(|| AuditError::Corrupt("the sequence number is at its maximum".to_owned()))?;
    let probe_sha256 = match &entry.probe_image {
        Some(image) => Some(store_probe(conn, image, at_ms, sealer)?),
        None => None,
    };
    let mut raw = RawEntry {
        sequence,
        at_ms,
        actor: entry.actor.clone(),
        action: entry.action.as_str().to_owned(),
        target: entry.target.clone(),
        case_ref: entry.case_ref.clone(),
        reason: entry.reason.clone(),
        request: entry.request.clone(),
        probe_sha256,
        outcome: entry.outcome.clone(),
        previous_hash: previous.hash,
        entry_hash: EntryHash::GENESIS,
    };
    raw.entry_hash = raw.computed_hash();
    conn.prepare_cached(
        "INSERT INTO audit_entries (sequence, at_ms, actor_id, actor_name, action, target_kind, \
         target_id, case_ref, reason, request, probe_sha256, outcome, outcome_detail, \
         previous_hash, entry_hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        sql_sequence(sequence)?,
        raw.at_ms,
        raw.actor.user_id,
        raw.actor.user_name,
        raw.action,
        raw.target.kind,
        raw.target.id,
        raw.case_ref,
        raw.reason,
        canonical_json(&raw.request),
        raw.probe_sha256,
        raw.outcome.kind.as_str(),
        raw.outcome.detail,
        raw.previous_hash.to_hex(),
        raw.entry_hash.to_hex(),
    ])?;
    AuditRecord::try_from(raw)
}

/// Stores the probe unless an identical one is already there; returns its sha256.
fn store_probe(
    conn: &Connection,
    image: &[u8],
    at_ms: i64,
    sealer: Option<&Sealer>,
) -> Result<String, AuditError> {
    let sha256 = hex::encode(Sha256::digest(image));
    let stored = match sealer {
        Some(sealer) => Cow::Owned(sealer.seal(image, &probe_binding(&sha256))?),
        None => Cow::Borrowed(image),
    };
    // INSERT ... SELECT WHERE NOT EXISTS rather than ON CONFLICT: the table's insert trigger
    // refuses a second row for one sha256 before any conflict clause is consulted.
    conn.prepare_cached(
        "INSERT INTO audit_probes (sha256, image, first_stored_at_ms) \
         SELECT ?1, ?2, ?3 WHERE NOT EXISTS (SELECT 1 FROM audit_probes WHERE sha256 = ?1)",
    )?
    .execute(params![sha256, stored.as_ref(), at_ms])?;
    Ok(sha256)
}

fn validate(entry: &NewAuditEntry) -> Result<(), AuditError> {
    let mut fields: Vec<(&str, &str)> = vec![
        ("actor user name", &entry.actor.user_name),
        ("target kind", &entry.target.kind),
        ("target id", &entry.target.id),
        ("reason", &entry.reason),
        ("outcome detail", &entry.outcome.detail),
    ];
    if let Some(user_id) = &entry.actor.user_id {
        fields.push(("actor user id", user_id));
    }
    if let Some(case_ref) = &entry.case_ref {
        fields.push(("case reference", case_ref));
    }
    for (name, value) in fields {
        if value.len() > MAX_TEXT_BYTES {
            return Err(AuditError::Invalid(format!(
                "{name} is {} bytes, more than {MAX_TEXT_BYTES}",
                value.len()
            )));
        }
    }
    if entry.actor.user_name.trim().is_empty() {
        return Err(AuditError::Invalid("actor user name is empty".to_owned()));
    }
    if entry.target.kind.trim().is_empty() {
        return Err(AuditError::Invalid("target kind is empty".to_owned()));
    }
    if !entry.request.is_object() {
        return Err(AuditError::Invalid(
            "request summary must be a JSON object".to_owned(),
        ));
    }
    let request_bytes = canonical_json(&entry.request).len();
    if request_bytes > MAX_REQUEST_BYTES {
        return Err(AuditError::Invalid(format!(
            "request summary is {request_bytes} bytes, more than {MAX_REQUEST_BYTES}"
        )));
    }
    if let Some(image) = &entry.probe_image {
        if image.is_empty() || image.len() > MAX_PROBE_BYTES {
            return Err(AuditError::Invalid(format!(
                "probe image is {} bytes; expected 1 to {MAX_PROBE_BYTES}",
                image.len()
            )));
        }
    }
    Ok(())
}

/// The chain's last entry; sequence 0 and `EntryHash::GENESIS` when it is empty.
pub fn head(conn: &Connection) -> Result<ChainHead, AuditError> {
    let last: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT sequence, entry_hash FROM audit_entries ORDER BY sequence DESC LIMIT 1",
        )?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    match last {
        None => Ok(ChainHead {
            sequence: 0,
            hash: EntryHash::GENESIS,
        }),
        Some((sequence, hash)) => Ok(ChainHead {
            sequence: stored_sequence(sequence)?,
            hash: stored_hash(&hash, "entry_hash", sequence)?,
        }),
    }
}

/// How many distinct probe images entries of `actions` name: the work ahead of a report that
/// compares every stored probe with a person (one scan, nothing kept).
pub fn distinct_probes_of(conn: &Connection, actions: &[AuditAction]) -> Result<u64, AuditError> {
    if actions.is_empty() {
        return Ok(0);
    }
    let placeholders = vec!["?"; actions.len()].join(", ");
    let count: i64 = conn.query_row(
        &format!(
            "SELECT count(DISTINCT probe_sha256) FROM audit_entries \
             WHERE probe_sha256 IS NOT NULL AND action IN ({placeholders})"
        ),
        rusqlite::params_from_iter(actions.iter().map(|action| action.as_str())),
        |row| row.get(0),
    )?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The probe image stored under `sha256`, if any, opened with `sealer` when it is sealed (a
/// sealed image without a sealer is an error, never returned as is).
pub fn probe_image(
    conn: &Connection,
    sha256: &str,
    sealer: Option<&Sealer>,
) -> Result<Option<Vec<u8>>, AuditError> {
    let stored: Option<Vec<u8>> = conn
        .prepare_cached("SELECT image FROM audit_probes WHERE sha256 = ?1")?
        .query_row([sha256], |row| row.get(0))
        .optional()?;
    match stored {
        Some(image) => Ok(Some(open_probe(&image, sha256, sealer)?)),
        None => Ok(None),
    }
}

/// A stored probe image's plaintext: legacy plaintext as is, a sealed one opened.
pub(crate) fn open_probe(
    stored: &[u8],
    sha256: &str,
    sealer: Option<&Sealer>,
) -> Result<Vec<u8>, AuditError> {
    match (vigil_seal::sealed_key_id(stored), sealer) {
        (None, _) => Ok(stored.to_vec()),
        (Some(_), Some(sealer)) => Ok(sealer.open(stored, &probe_binding(sha256))?),
        (Some(key), None) => Err(vigil_seal::SealError::UnknownKey(key).into()),
    }
}

/// What an auditor asks for; every field left `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub actor_name: Option<String>,
    pub actor_id: Option<String>,
    pub action: Option<AuditAction>,
    pub case_ref: Option<String>,
    /// Inclusive, unix ms.
    pub from_ms: Option<i64>,
    /// Exclusive, unix ms.
    pub to_ms: Option<i64>,
    /// Only entries after this sequence number: the cursor for the next page.
    pub after_sequence: Option<u64>,
    /// At most this many records (default `DEFAULT_LIMIT`, capped at `MAX_LIMIT`).
    pub limit: Option<usize>,
}

/// Entries matching `filter`, in sequence order.
pub fn entries(conn: &Connection, filter: &AuditFilter) -> Result<Vec<AuditRecord>, AuditError> {
    let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let after = match filter.after_sequence {
        Some(sequence) => sql_sequence(sequence)?,
        None => 0,
    };
    // Only the conditions asked for, so SQLite can pick the matching index.
    let mut conditions = vec!["sequence > ?".to_owned()];
    let mut values: Vec<rusqlite::types::Value> = vec![after.into()];
    let mut condition = |sql: &str, value: rusqlite::types::Value| {
        conditions.push(sql.to_owned());
        values.push(value);
    };
    if let Some(name) = &filter.actor_name {
        condition("actor_name = ?", name.clone().into());
    }
    if let Some(id) = &filter.actor_id {
        condition("actor_id = ?", id.clone().into());
    }
    if let Some(action) = filter.action {
        condition("action = ?", action.as_str().to_owned().into());
    }
    if let Some(case_ref) = &filter.case_ref {
        condition("case_ref = ?", case_ref.clone().into());
    }
    if let Some(from_ms) = filter.from_ms {
        condition("at_ms >= ?", from_ms.into());
    }
    if let Some(to_ms) = filter.to_ms {
        condition("at_ms < ?", to_ms.into());
    }
    values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM audit_entries WHERE {} ORDER BY sequence LIMIT ?",
        conditions.join(" AND ")
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(rusqlite::params_from_iter(values))?;
    let mut records = Vec::new();
    while let Some(row) = rows.next()? {
        records.push(AuditRecord::try_from(raw_entry_from_row(row)?)?);
    }
    Ok(records)
}

/// One user's activity over a time range, for spotting misuse (searches at 3 a.m., bursts of
/// refused requests).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorActivity {
    pub total: u64,
    /// Count per action name; names this build does not know are counted too.
    pub by_action: BTreeMap<String, u64>,
    /// Count per hour of the day, UTC: index 0 is 00:00–00:59.
    pub by_hour_utc: [u64; 24],
    pub by_outcome: BTreeMap<String, u64>,
}

/// Counts the entries of the user named `user_name` with `from_ms <= at_ms < to_ms`.
pub fn actor_activity(
    conn: &Connection,
    user_name: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<ActorActivity, AuditError> {
    const DAY_MS: i64 = 86_400_000;
    const HOUR_MS: i64 = 3_600_000;
    // The double modulo keeps the hour right for times before 1970, where % is negative.
    let mut statement = conn.prepare_cached(
        "SELECT action, outcome, ((at_ms % ?4) + ?4) % ?4 / ?5 AS hour, count(*) \
         FROM audit_entries WHERE actor_name = ?1 AND at_ms >= ?2 AND at_ms < ?3 \
         GROUP BY action, outcome, hour",
    )?;
    let mut rows = statement.query(params![user_name, from_ms, to_ms, DAY_MS, HOUR_MS])?;
    let mut activity = ActorActivity::default();
    while let Some(row) = rows.next()? {
        let action: String = row.get(0)?;
        let outcome: String = row.get(1)?;
        let hour: i64 = row.get(2)?;
        let count: i64 = row.get(3)?;
        let count = u64::try_from(count).unwrap_or(0);
        let hour = usize::try_from(hour)
            .ok()
            .filter(|hour| *hour < 24)
            .ok_or_else(|| AuditError::Corrupt(format!("hour of day {hour}")))?;
        activity.total += count;
        *activity.by_action.entry(action).or_default() += count;
        *activity.by_outcome.entry(outcome).or_default() += count;
        activity.by_hour_utc[hour] += count;
    }
    Ok(activity)
}

/// Reads a row selected with `ENTRY_COLUMNS`.
pub(crate) fn raw_entry_from_row(row: &Row<'_>) -> Result<RawEntry, AuditError> {
    let sequence: i64 = row.get(0)?;
    let request_text: String = row.get(9)?;
    let request = serde_json::from_str(&request_text).map_err(|error| {
        AuditError::Corrupt(format!("entry {sequence}: request is not JSON: {error}"))
    })?;
    let outcome_text: String = row.get(11)?;
    let outcome_kind = OutcomeKind::parse(&outcome_text).ok_or_else(|| {
        AuditError::Corrupt(format!(
            "entry {sequence}: unknown outcome {outcome_text:?}"
        ))
    })?;
    let previous_hash: String = row.get(13)?;
    let entry_hash: String = row.get(14)?;
    Ok(RawEntry {
        sequence: stored_sequence(sequence)?,
        at_ms: row.get(1)?,
        actor: Actor {
            user_id: row.get(2)?,
            user_name: row.get(3)?,
        },
        action: row.get(4)?,
        target: Target {
            kind: row.get(5)?,
            id: row.get(6)?,
        },
        case_ref: row.get(7)?,
        reason: row.get(8)?,
        request,
        probe_sha256: row.get(10)?,
        outcome: Outcome {
            kind: outcome_kind,
            detail: row.get(12)?,
        },
        previous_hash: stored_hash(&previous_hash, "previous_hash", sequence)?,
        entry_hash: stored_hash(&entry_hash, "entry_hash", sequence)?,
    })
}

pub(crate) fn sql_sequence(sequence: u64) -> Result<i64, AuditError> {
    i64::try_from(sequence)
        .map_err(|_| AuditError::Invalid(format!("sequence {sequence} is out of range")))
}

fn stored_sequence(sequence: i64) -> Result<u64, AuditError> {
    u64::try_from(sequence)
        .map_err(|_| AuditError::Corrupt(format!("sequence {sequence} is negative")))
}

fn stored_hash(text: &str, column: &str, sequence: i64) -> Result<EntryHash, AuditError> {
    EntryHash::from_hex(text).ok_or_else(|| {
        AuditError::Corrupt(format!(
            "entry {sequence}: {column} {text:?} is not 64 lowercase hex"
        ))
    })
}
