//! Conversions between SQLite rows and the store's records.

use crate::error::StoreError;
use crate::records::{Subject, TemplateInfo};
use crate::stored_embedding::embedding_from_stored_bytes;
use rusqlite::Row;
use vigil_base::{Embedding, ModelId, SubjectId, TemplateId};

pub(crate) const SUBJECT_COLUMNS: &str = "id, name, notes, created_at_ms";

pub(crate) fn subject_from_row(row: &Row<'_>) -> rusqlite::Result<Subject> {
    Ok(Subject {
        id: SubjectId(row.get(0)?),
        name: row.get(1)?,
        notes: row.get(2)?,
        created_at_ms: row.get(3)?,
    })
}

pub(crate) const TEMPLATE_INFO_COLUMNS: &str = "id, subject_id, model, dimension, quality, \
     detector, source_media, source_name, bbox_x1, bbox_y1, bbox_x2, bbox_y2, created_at_ms";

/// Reads the columns of `TEMPLATE_INFO_COLUMNS`, in that order, starting at column 0.
pub(crate) fn template_info_from_row(row: &Row<'_>) -> rusqlite::Result<TemplateInfo> {
    let dimension: i64 = row.get(3)?;
    // REAL columns hold f64; the values were written from f32, so narrowing is exact.
    let real = |index: usize| -> rusqlite::Result<f32> { Ok(row.get::<_, f64>(index)? as f32) };
    Ok(TemplateInfo {
        id: TemplateId(row.get(0)?),
        subject_id: SubjectId(row.get(1)?),
        model: ModelId(row.get(2)?),
        dimension: usize::try_from(dimension)
            .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(3, dimension))?,
        quality: real(4)?,
        detector: row.get(5)?,
        source_sha256: row.get(6)?,
        source_name: row.get(7)?,
        bbox: [real(8)?, real(9)?, real(10)?, real(11)?],
        created_at_ms: row.get(12)?,
    })
}

/// Decodes a stored embedding blob exactly, refusing one that is corrupt.
pub(crate) fn decode_embedding(
    template: TemplateId,
    model: &ModelId,
    dimension: usize,
    blob: &[u8],
) -> Result<Embedding, StoreError> {
    embedding_from_stored_bytes(model, dimension, blob).map_err(|error| {
        StoreError::Database(format!(
            "template {template}: stored embedding is unreadable: {error}"
        ))
    })
}

/// Converts a count or size for SQLite, which stores signed 64-bit integers.
pub(crate) fn to_sql_integer(value: usize, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Invalid(format!("{what} {value} is too large")))
}

/// Converts a `count(*)` result, which SQLite never returns negative.
pub(crate) fn count_from_sql(count: i64) -> Result<u64, StoreError> {
    u64::try_from(count).map_err(|_| StoreError::Database(format!("negative count {count}")))
}

/// True when `error` is a UNIQUE constraint violation, which callers report as `Conflict`.
pub(crate) fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

/// Current Unix time in milliseconds. A clock before 1970 is a broken clock; 0 keeps ordering sane.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since_epoch| i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
