//! Encryption at rest in the store (docs/design/011): which columns hold sealed blobs, what binds
//! each blob to its row, the start-up key check, and the rotation (reseal) job.

use super::SqliteStore;
use crate::error::StoreError;
use rusqlite::{params, Connection, TransactionBehavior};
use std::borrow::Cow;
use std::collections::BTreeMap;
use vigil_audit::NewAuditEntry;
use vigil_seal::{row_binding, sealed_key_id, Sealer};

/// Associated data of `templates.embedding`.
pub(crate) fn template_embedding(id: i64) -> Vec<u8> {
    row_binding("template", id, "embedding")
}

/// Associated data of `template_thumbnails.jpeg`.
pub(crate) fn template_thumbnail(id: i64) -> Vec<u8> {
    row_binding("template", id, "thumbnail")
}

/// Associated data of `sightings.crop_jpeg`.
pub(crate) fn sighting_crop(id: i64) -> Vec<u8> {
    row_binding("sighting", id, "crop")
}

/// Associated data of `sighting_embeddings.embedding`: a sighting has several, by rank.
pub(crate) fn sighting_embedding(sighting: i64, rank: i64) -> Vec<u8> {
    row_binding("sighting", sighting, &format!("embedding.{rank}"))
}

/// Associated data of `cameras.config`: the camera's settings, whose URLs may carry a password.
/// Camera ids are text, so this is `row_binding`'s format with a text id.
pub(crate) fn camera_config(id: &str) -> Vec<u8> {
    format!("camera:{id}:config").into_bytes()
}

/// The bytes to store: sealed when a sealer is configured, else the plaintext (a store without
/// keys never writes sealed blobs).
pub(crate) fn seal<'a>(
    sealer: Option<&Sealer>,
    plaintext: &'a [u8],
    binding: &[u8],
) -> Result<Cow<'a, [u8]>, StoreError> {
    match sealer {
        Some(sealer) => sealer
            .seal(plaintext, binding)
            .map(Cow::Owned)
            .map_err(|error| StoreError::Seal(error.to_string())),
        None => Ok(Cow::Borrowed(plaintext)),
    }
}

/// The plaintext of a stored blob: a legacy plaintext blob as it is, a sealed one opened and
/// authenticated against `binding`. `place` names the row in errors.
pub(crate) fn open<'a>(
    sealer: Option<&Sealer>,
    stored: &'a [u8],
    binding: &[u8],
    place: &str,
) -> Result<Cow<'a, [u8]>, StoreError> {
    match (sealed_key_id(stored), sealer) {
        (None, _) => Ok(Cow::Borrowed(stored)),
        (Some(_), Some(sealer)) => sealer
            .open(stored, binding)
            .map(Cow::Owned)
            .map_err(|error| StoreError::Seal(format!("{place}: {error}"))),
        (Some(key), None) => Err(StoreError::MissingKey {
            key_id: key.to_string(),
            place: place.to_owned(),
        }),
    }
}

/// `open` for a blob read with `.optional()`: `None` stays `None`, and the plaintext is owned.
pub(crate) fn open_found(
    sealer: Option<&Sealer>,
    stored: Option<Vec<u8>>,
    binding: &[u8],
    place: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    stored
        .map(|stored| open(sealer, &stored, binding, place).map(Cow::into_owned))
        .transpose()
}

/// Appends an audit entry in the caller's transaction, sealing its probe image when keys are
/// configured.
pub(crate) fn audit_in(
    connection: &Connection,
    entry: &NewAuditEntry,
    now_ms: i64,
    sealer: Option<&Sealer>,
) -> Result<vigil_audit::AuditRecord, StoreError> {
    vigil_audit::append_sealed(connection, entry, now_ms, sealer).map_err(audit_error)
}

/// A failed audit append as a store error; a full disk stays `StorageFull`, so that callers
/// answer 507 `storage_full` rather than a generic fault.
pub(crate) fn audit_error(error: vigil_audit::AuditError) -> StoreError {
    match error {
        vigil_audit::AuditError::Database(error) => match StoreError::from(error) {
            StoreError::StorageFull(detail) => {
                StoreError::StorageFull(format!("audit log: {detail}"))
            }
            other => StoreError::Database(format!("audit log: {other}")),
        },
        other => StoreError::Database(format!("audit log: {other}")),
    }
}

/// How a sealed column's rows are bound: by which key columns.
#[derive(Clone, Copy)]
enum RowKey {
    /// One integer column, bound with `bind`.
    Integer(&'static str, fn(i64) -> Vec<u8>),
    /// One text column, bound with `bind`.
    Text(&'static str, fn(&str) -> Vec<u8>),
    /// `sighting, rank`.
    SightingRank,
    /// `sha256` (audit probes).
    Sha256,
}

/// A column that holds sealed blobs when encryption at rest is on.
#[derive(Clone, Copy)]
struct SealedColumn {
    table: &'static str,
    column: &'static str,
    key: RowKey,
}

impl SealedColumn {
    fn place(&self) -> String {
        format!("{}.{}", self.table, self.column)
    }
}

/// Every sealed column. Recordings are not sealed (design 011).
const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "templates",
        column: "embedding",
        key: RowKey::Integer("id", template_embedding),
    },
    SealedColumn {
        table: "template_thumbnails",
        column: "jpeg",
        key: RowKey::Integer("template_id", template_thumbnail),
    },
    SealedColumn {
        table: "sightings",
        column: "crop_jpeg",
        key: RowKey::Integer("id", sighting_crop),
    },
    SealedColumn {
        table: "sighting_embeddings",
        column: "embedding",
        key: RowKey::SightingRank,
    },
    SealedColumn {
        table: "audit_probes",
        column: "image",
        key: RowKey::Sha256,
    },
    // JSON text when plaintext (written before encryption was on), a sealed blob otherwise.
    SealedColumn {
        table: "cameras",
        column: "config",
        key: RowKey::Text("id", camera_config),
    },
];

/// SQL true for a sealed blob in `column` (the `is_sealed` test: header and minimum length).
fn sealed_condition(column: &str) -> String {
    format!(
        "(substr({column}, 1, 4) = X'56475331' AND length({column}) >= {})",
        vigil_seal::OVERHEAD
    )
}

/// Blobs of one column: how many per key id (lowercase hex, as `KeyId` displays), and how many
/// are plaintext.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnSealing {
    /// `table.column`.
    pub place: String,
    pub by_key: BTreeMap<String, u64>,
    pub plaintext: u64,
}

fn column_sealing(
    connection: &Connection,
    column: &SealedColumn,
) -> Result<ColumnSealing, StoreError> {
    let sealed = sealed_condition(column.column);
    let sql = format!(
        "SELECT CASE WHEN {sealed} THEN lower(hex(substr({c}, 5, {id_bytes}))) END, count(*) \
         FROM {t} GROUP BY 1",
        c = column.column,
        t = column.table,
        id_bytes = vigil_seal::KEY_ID_BYTES,
    );
    let mut statement = connection.prepare(&sql)?;
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, Option<String>>(0)?, row.get::<_, i64>(1)?))
    })?;
    let mut report = ColumnSealing {
        place: column.place(),
        ..ColumnSealing::default()
    };
    for row in rows {
        let (key, count) = row?;
        let count = u64::try_from(count).unwrap_or(0);
        match key {
            Some(key) => {
                report.by_key.insert(key, count);
            }
            None => report.plaintext = count,
        }
    }
    Ok(report)
}

/// Refuses a database holding blobs sealed with a key the keyring lacks (or any sealed blob when
/// there is no keyring), naming the first missing key and where it was found: better than
/// failing on every read later.
pub(crate) fn check_keys(
    connection: &Connection,
    sealer: Option<&Sealer>,
) -> Result<(), StoreError> {
    let known: Vec<String> = sealer
        .map(|sealer| sealer.key_ids().iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    for column in SEALED_COLUMNS {
        let sealing = column_sealing(connection, column)?;
        if let Some(missing) = sealing.by_key.keys().find(|key| !known.contains(key)) {
            return Err(StoreError::MissingKey {
                key_id: missing.clone(),
                place: sealing.place,
            });
        }
    }
    Ok(())
}

/// Rows rewritten per transaction by the reseal job: small, so the server's writes wait at most
/// one batch.
const RESEAL_BATCH_ROWS: usize = 256;

/// Progress of the reseal job, reported after every batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResealProgress {
    /// `table.column` being worked on.
    pub place: String,
    /// Rows of that column looked at so far.
    pub scanned: u64,
    /// Rows rewritten so far (resealed with the active key, or sealed from plaintext).
    pub rewritten: u64,
}

impl SqliteStore {
    /// The keyring this store seals with, if encryption at rest is on.
    pub fn sealer(&self) -> Option<&Sealer> {
        self.sealer.as_ref()
    }

    /// Per sealed column: blobs per key id and plaintext blobs (`vigil keys status`).
    pub fn sealing_status(&self) -> Result<Vec<ColumnSealing>, StoreError> {
        let connection = self.connection.lock();
        SEALED_COLUMNS
            .iter()
            .map(|column| column_sealing(&connection, column))
            .collect()
    }

    /// The rotation job (`vigil keys reseal`): every blob of every sealed column that is
    /// plaintext or sealed with an older key is rewritten under the active key, in transactions
    /// of a few hundred rows. Idempotent and safe to interrupt. Returns the status afterwards,
    /// which shows whether any blob is left under an old key. Refused without keys.
    pub fn reseal_all(
        &self,
        progress: &mut dyn FnMut(&ResealProgress),
    ) -> Result<Vec<ColumnSealing>, StoreError> {
        let sealer = self.sealer.as_ref().ok_or_else(|| {
            StoreError::Invalid("resealing needs keys: none are configured".to_owned())
        })?;
        for column in SEALED_COLUMNS {
            let mut state = ResealProgress {
                place: column.place(),
                scanned: 0,
                rewritten: 0,
            };
            let mut after_rowid = i64::MIN;
            loop {
                let mut connection = self.connection.lock();
                let transaction =
                    connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let (last, scanned, rewritten) =
                    reseal_batch(&transaction, column, sealer, after_rowid)?;
                transaction.commit()?;
                drop(connection);
                state.scanned += scanned;
                state.rewritten += rewritten;
                progress(&state);
                match last {
                    Some(rowid) => after_rowid = rowid,
                    None => break,
                }
            }
        }
        // Old page images (plaintext, or blobs under the old key) stay in the write-ahead log
        // until a checkpoint; truncate it so the rotation really retires them from the disk.
        self.connection
            .lock()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        self.sealing_status()
    }
}

/// Reseals up to `RESEAL_BATCH_ROWS` rows after `after_rowid`; returns the last rowid looked at
/// (`None` when there were no rows left), how many were looked at and how many rewritten.
fn reseal_batch(
    connection: &Connection,
    column: &SealedColumn,
    sealer: &Sealer,
    after_rowid: i64,
) -> Result<(Option<i64>, u64, u64), StoreError> {
    let keys = match column.key {
        RowKey::Integer(name, _) | RowKey::Text(name, _) => name,
        RowKey::SightingRank => "sighting, rank",
        RowKey::Sha256 => "sha256",
    };
    let select = format!(
        "SELECT rowid, {c}, {keys} FROM {t} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
        c = column.column,
        t = column.table,
    );
    let update = format!(
        "UPDATE {t} SET {c} = ?1 WHERE rowid = ?2",
        c = column.column,
        t = column.table,
    );
    let mut statement = connection.prepare(&select)?;
    let mut rows = statement.query(params![after_rowid, RESEAL_BATCH_ROWS as i64])?;
    let mut last = None;
    let mut scanned = 0;
    let mut rewritten = 0;
    while let Some(row) = rows.next()? {
        let rowid: i64 = row.get(0)?;
        last = Some(rowid);
        scanned += 1;
        // `as_bytes`: camera settings written without keys are JSON text, not a blob.
        let stored = row.get_ref(1)?.as_bytes().map_err(|error| {
            StoreError::Database(format!("{} row {rowid}: {error}", column.place()))
        })?;
        if !sealer.needs_reseal(stored) {
            continue;
        }
        let binding = match column.key {
            RowKey::Integer(_, bind) => bind(row.get(2)?),
            RowKey::Text(_, bind) => bind(&row.get::<_, String>(2)?),
            RowKey::SightingRank => sighting_embedding(row.get(2)?, row.get(3)?),
            RowKey::Sha256 => vigil_audit::probe_binding(&row.get::<_, String>(2)?),
        };
        let resealed = if vigil_seal::is_sealed(stored) {
            sealer.reseal(stored, &binding)
        } else {
            sealer.seal(stored, &binding)
        }
        .map_err(|error| StoreError::Seal(format!("{} row {rowid}: {error}", column.place())))?;
        connection
            .prepare_cached(&update)?
            .execute(params![resealed, rowid])?;
        rewritten += 1;
    }
    Ok((last, scanned, rewritten))
}
