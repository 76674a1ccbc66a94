//! The embedded store: one SQLite file in WAL mode.

mod cases;
mod evidence;
mod migrations;
mod misuse;
mod rows;
mod sealing;
mod video;
mod watchlists;

pub use cases::{Case, NewCase, DEFAULT_EVIDENCE_RETENTION_DAYS};
pub use migrations::LATEST_SCHEMA_VERSION;
pub use misuse::{is_off_hours, local_day_start, MisuseAlert, MisuseRule, UserSearchActivity};
pub use sealing::{ColumnSealing, ResealProgress};
pub use watchlists::{
    ActiveWatchEntry, AlertRecord, AlertReview, AlertState, NewAlert, NewWatchEntry, RejectedAlert,
    ReviewDecision, WatchEntry, Watchlist, CONFIRMATIONS_NEEDED,
};

use crate::error::StoreError;
use crate::face_store::FaceStore;
use crate::records::{
    normalise_notes, normalise_subject_name, validate_new_template, Enrolment, EnrolmentReceipt,
    NewTemplate, Subject, SubjectRef, SubjectSummary, TemplateInfo, TemplateRecord,
};
use parking_lot::{Mutex, RwLock};
use rows::{
    count_from_sql, decode_embedding, is_unique_violation, now_ms, subject_from_row,
    template_info_from_row, to_sql_integer, SUBJECT_COLUMNS, TEMPLATE_INFO_COLUMNS,
};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;
use vigil_audit::NewAuditEntry;
use vigil_base::{Embedding, ModelId, SubjectId, TemplateId};
use vigil_seal::Sealer;

pub(crate) use sealing::audit_in;

/// How long a statement waits for another process's write lock before failing with "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read-only connections kept open for reuse; more are opened while all are busy.
const IDLE_READ_CONNECTIONS: usize = 4;

/// `FaceStore` on SQLite. One read-write connection behind a mutex: the gallery is written
/// rarely and read mostly at start-up. Long read-only work (audit verification and export,
/// audit listing, subject access reports) runs on separate read-only connections instead
/// ([`SqliteStore::with_read_connection`]): in WAL mode readers see a snapshot and never wait
/// for the writer, so a report over a long log does not hold up identify or enrol.
pub struct SqliteStore {
    connection: Mutex<Connection>,
    /// The database file, for read-only connections; `None` for an in-memory store, whose
    /// readers share the one connection.
    path: Option<PathBuf>,
    /// Idle read-only connections to `path`.
    readers: Mutex<Vec<Connection>>,
    /// Keys for encryption at rest (docs/design/011); `None`: blobs are written in plaintext.
    sealer: Option<Sealer>,
    /// Where webhook subscriptions may point (`[webhooks] allowed_hosts`); set at start-up.
    webhook_targets: RwLock<vigil_notify::TargetPolicy>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and its parent directories, and
    /// migrates it to `LATEST_SCHEMA_VERSION`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_sealed(path, None)
    }

    /// `open`, with encryption at rest when `sealer` is given: embeddings, face crops and probe
    /// images are sealed on write and opened on read. Refuses a database holding blobs sealed
    /// with a key `sealer` lacks (or any sealed blob when `sealer` is `None`), naming the key.
    pub fn open_sealed(path: impl AsRef<Path>, sealer: Option<Sealer>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| {
                StoreError::Database(format!("cannot create {}: {error}", parent.display()))
            })?;
        }
        let connection = Connection::open(path).map_err(|error| {
            StoreError::Database(format!("cannot open {}: {error}", path.display()))
        })?;
        let journal_mode: String =
            connection.pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))?;
        if !journal_mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Database(format!(
                "{} refused WAL mode (journal_mode is {journal_mode})",
                path.display()
            )));
        }
        // In WAL mode NORMAL never corrupts the database; a power cut can lose only the last
        // transactions, not the fsync per commit that FULL costs.
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        let mut store = Self::configure_and_migrate(connection, sealer)?;
        store.path = Some(path.to_path_buf());
        Ok(store)
    }

    /// Runs read-only `work` on a connection of its own (a snapshot in WAL mode), so it neither
    /// waits for nor holds up writers on the store's connection. For an in-memory store, or if
    /// no read-only connection can be opened, it runs on the store's connection: slower under
    /// load, never a different answer. A write through a read-only connection fails.
    pub fn with_read_connection<T>(&self, work: impl FnOnce(&Connection) -> T) -> T {
        let Some(path) = &self.path else {
            return work(&self.connection.lock());
        };
        let idle = self.readers.lock().pop();
        let reader = match idle.map_or_else(|| open_reader(path), Ok) {
            Ok(reader) => reader,
            Err(error) => {
                tracing::warn!(%error, "reading on the store's connection instead");
                return work(&self.connection.lock());
            }
        };
        let result = work(&reader);
        // A reader left inside a transaction by `work` would pin an old snapshot: drop it.
        if reader.is_autocommit() {
            let mut readers = self.readers.lock();
            if readers.len() < IDLE_READ_CONNECTIONS {
                readers.push(reader);
            }
        }
        result
    }

    /// Runs `work` on the store's connection: the user directory (`vigil_auth`) and the audit
    /// log (`vigil_audit`) keep their tables in this database and work on a caller's connection.
    pub fn with_connection<T>(&self, work: impl FnOnce(&Connection) -> T) -> T {
        work(&self.connection.lock())
    }

    /// Appends one audit entry in its own transaction (for operations that change nothing else:
    /// searches, views, exports).
    /// Runs `work` in one `BEGIN IMMEDIATE` transaction that also appends `audit` (with the
    /// keys' sealing), for changes made by other crates' SQL (users, tokens): the change and its
    /// entry commit together or not at all. `audit` gets `work`'s summary merged into its
    /// request when `summary` returns one.
    pub fn audited_transaction<T, E: From<StoreError>>(
        &self,
        audit: &vigil_audit::NewAuditEntry,
        work: impl FnOnce(&Connection) -> Result<T, E>,
        summary: impl FnOnce(&T) -> Option<serde_json::Value>,
    ) -> Result<T, E> {
        let mut connection = self.connection.lock();
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| E::from(e.into()))?;
        let value = work(&transaction)?;
        let mut audit = audit.clone();
        if let (Some(extra), Some(request)) = (summary(&value), audit.request.as_object_mut()) {
            if let Some(extra) = extra.as_object() {
                request.extend(extra.clone());
            }
        }
        audit_in(&transaction, &audit, now_ms(), self.sealer.as_ref()).map_err(E::from)?;
        transaction.commit().map_err(|e| E::from(e.into()))?;
        Ok(value)
    }

    pub fn audit(
        &self,
        entry: &vigil_audit::NewAuditEntry,
    ) -> Result<vigil_audit::AuditRecord, StoreError> {
        let connection = self.connection.lock();
        audit_in(&connection, entry, now_ms(), self.sealer.as_ref())
    }

    /// A private database that vanishes when the store is dropped; for tests and dry runs.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::configure_and_migrate(Connection::open_in_memory()?, None)
    }

    fn configure_and_migrate(
        mut connection: Connection,
        sealer: Option<Sealer>,
    ) -> Result<Self, StoreError> {
        // Off by default in SQLite; the cascades and media references depend on it.
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        if sealer.is_some() {
            // Freed space is zeroed, so a plaintext blob replaced by the reseal job (or a
            // deleted row) does not linger in free pages of the file.
            connection.pragma_update(None, "secure_delete", "ON")?;
        }
        migrations::migrate(&mut connection)?;
        sealing::check_keys(&connection, sealer.as_ref())?;
        Ok(Self {
            connection: Mutex::new(connection),
            path: None,
            readers: Mutex::new(Vec::new()),
            sealer,
            webhook_targets: RwLock::new(vigil_notify::TargetPolicy::default()),
        })
    }
}

/// A read-only connection to the database file at `path` (already migrated, in WAL mode).
fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let reader = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| {
        StoreError::Database(format!(
            "cannot open {} for reading: {error}",
            path.display()
        ))
    })?;
    reader.busy_timeout(BUSY_TIMEOUT)?;
    reader.pragma_update(None, "query_only", "ON")?;
    Ok(reader)
}

fn find_subject(connection: &Connection, id: SubjectId) -> Result<Option<Subject>, StoreError> {
    let sql = format!("SELECT {SUBJECT_COLUMNS} FROM subjects WHERE id = ?1");
    Ok(connection
        .query_row(&sql, [id.0], subject_from_row)
        .optional()?)
}

fn find_subject_by_name(
    connection: &Connection,
    name: &str,
) -> Result<Option<Subject>, StoreError> {
    let sql = format!("SELECT {SUBJECT_COLUMNS} FROM subjects WHERE name = ?1");
    Ok(connection
        .query_row(&sql, [name], subject_from_row)
        .optional()?)
}

/// Inserts a subject whose name is already normalised.
fn insert_subject(
    connection: &Connection,
    name: &str,
    notes: Option<String>,
) -> Result<Subject, StoreError> {
    let created_at_ms = now_ms();
    connection
        .execute(
            "INSERT INTO subjects (name, notes, created_at_ms) VALUES (?1, ?2, ?3)",
            params![name, notes, created_at_ms],
        )
        .map_err(|error| name_conflict_or(error, name))?;
    Ok(Subject {
        id: SubjectId(connection.last_insert_rowid()),
        name: name.to_owned(),
        notes,
        created_at_ms,
    })
}

fn name_conflict_or(error: rusqlite::Error, name: &str) -> StoreError {
    if is_unique_violation(&error) {
        StoreError::Conflict(format!("a subject named {name:?} already exists"))
    } else {
        error.into()
    }
}

/// Stores one validated template (and its media row, if new) for `subject`.
fn insert_template(
    connection: &Connection,
    subject: SubjectId,
    template: &NewTemplate,
    created_at_ms: i64,
    sealer: Option<&Sealer>,
) -> Result<TemplateId, StoreError> {
    let model = template.embedding.model();
    let dimension = template.embedding.dimension();
    let existing_dimension: Option<i64> = connection
        .prepare_cached("SELECT dimension FROM templates WHERE model = ?1 LIMIT 1")?
        .query_row([model.as_str()], |row| row.get(0))
        .optional()?;
    let dimension_sql = to_sql_integer(dimension, "embedding dimension")?;
    if let Some(existing) = existing_dimension.filter(|existing| *existing != dimension_sql) {
        return Err(StoreError::Invalid(format!(
            "embedding of model {model} has dimension {dimension}, \
             but stored templates of that model have dimension {existing}"
        )));
    }
    connection
        .prepare_cached(
            "INSERT INTO media (sha256, first_seen_at_ms) VALUES (?1, ?2) \
             ON CONFLICT (sha256) DO NOTHING",
        )?
        .execute(params![template.source_sha256, created_at_ms])?;
    let [x1, y1, x2, y2] = template.bbox;
    // The id is chosen here, as SQLite would (largest + 1; the caller holds the write lock), so
    // the sealed blob can be bound to its row before any byte is written.
    let template_id: i64 = connection
        .prepare_cached("SELECT coalesce(max(id), 0) + 1 FROM templates")?
        .query_row([], |row| row.get(0))?;
    let plaintext = template.embedding.to_le_bytes();
    let embedding = sealing::seal(
        sealer,
        &plaintext,
        &sealing::template_embedding(template_id),
    )?;
    let thumbnail = sealing::seal(
        sealer,
        &template.thumbnail_jpeg,
        &sealing::template_thumbnail(template_id),
    )?;
    connection
        .prepare_cached(
            "INSERT INTO templates (id, subject_id, model, dimension, embedding, quality, \
             detector, source_media, source_name, bbox_x1, bbox_y1, bbox_x2, bbox_y2, \
             created_at_ms) \
             VALUES (?14, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(params![
            subject.0,
            model.as_str(),
            dimension_sql,
            embedding.as_ref(),
            f64::from(template.quality),
            template.detector.trim(),
            template.source_sha256,
            template.source_name,
            f64::from(x1),
            f64::from(y1),
            f64::from(x2),
            f64::from(y2),
            created_at_ms,
            template_id,
        ])?;
    connection
        .prepare_cached("INSERT INTO template_thumbnails (template_id, jpeg) VALUES (?1, ?2)")?
        .execute(params![template_id, thumbnail.as_ref()])?;
    Ok(TemplateId(template_id))
}

/// Deletes the media rows among `sha256s` that no template references any more, so deleting a
/// person leaves no trace of which photos they were enrolled from.
fn delete_unreferenced_media(
    connection: &Connection,
    sha256s: &[String],
) -> Result<(), StoreError> {
    let mut statement = connection.prepare_cached(
        "DELETE FROM media WHERE sha256 = ?1 \
         AND NOT EXISTS (SELECT 1 FROM templates WHERE source_media = ?1)",
    )?;
    for sha256 in sha256s {
        statement.execute([sha256])?;
    }
    Ok(())
}

/// Refuses to delete a subject that a watchlist entry not yet removed holds, naming the entry
/// and its case: the entry would stay in force with no face to match (its subject set NULL).
/// Removing the entry, under its case's rules, is what deletes such a subject. Checked here,
/// in the deletion's transaction, so that every path (API, CLI) refuses alike.
fn refuse_if_watched(connection: &Connection, subject: SubjectId) -> Result<(), StoreError> {
    let holding: Option<(i64, i64, String)> = connection
        .prepare_cached(
            "SELECT id, watchlist, case_ref FROM watchlist_entries \
             WHERE subject = ?1 AND removed_at IS NULL ORDER BY id LIMIT 1",
        )?
        .query_row([subject.0], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    match holding {
        Some((entry, watchlist, case_ref)) => Err(StoreError::Conflict(format!(
            "subject {subject} is on watchlist {watchlist} (entry {entry}) under case \
             {case_ref}: remove the entry first (DELETE /v1/watchlist-entries/{entry})"
        ))),
        None => Ok(()),
    }
}

/// Prefixes an `Invalid` reason with the template's position, so the caller knows which photo.
fn naming_template(position: usize) -> impl Fn(StoreError) -> StoreError {
    move |error| match error {
        StoreError::Invalid(reason) => {
            StoreError::Invalid(format!("template {position}: {reason}"))
        }
        other => other,
    }
}

impl FaceStore for SqliteStore {
    fn enroll(&self, enrolment: Enrolment) -> Result<EnrolmentReceipt, StoreError> {
        if enrolment.templates.is_empty() {
            return Err(StoreError::Invalid(
                "an enrolment needs at least one template".into(),
            ));
        }
        for (position, template) in enrolment.templates.iter().enumerate() {
            validate_new_template(template).map_err(naming_template(position))?;
        }
        let mut connection = self.connection.lock();
        // Dropping the transaction on any early return rolls back: all or nothing.
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (subject_id, subject_created) = match &enrolment.subject {
            SubjectRef::ByName(name) => {
                let name = normalise_subject_name(name)?;
                match find_subject_by_name(&transaction, &name)? {
                    Some(subject) => (subject.id, false),
                    None => {
                        let notes = normalise_notes(enrolment.notes);
                        (insert_subject(&transaction, &name, notes)?.id, true)
                    }
                }
            }
            SubjectRef::ById(id) => match find_subject(&transaction, *id)? {
                Some(subject) => (subject.id, false),
                None => return Err(StoreError::NotFound(format!("subject {id}"))),
            },
        };
        let created_at_ms = now_ms();
        let mut template_ids = Vec::with_capacity(enrolment.templates.len());
        for (position, template) in enrolment.templates.iter().enumerate() {
            let id = insert_template(
                &transaction,
                subject_id,
                template,
                created_at_ms,
                self.sealer.as_ref(),
            )
            .map_err(naming_template(position))?;
            template_ids.push(id);
        }
        if let Some(audit) = &enrolment.audit {
            // The entry names what was stored, known only now.
            let mut audit = audit.clone();
            if let Some(request) = audit.request.as_object_mut() {
                request.insert("subject_id".into(), subject_id.0.into());
                request.insert(
                    "template_ids".into(),
                    template_ids.iter().map(|t| t.0).collect::<Vec<_>>().into(),
                );
            }
            audit_in(&transaction, &audit, created_at_ms, self.sealer.as_ref())?;
        }
        transaction.commit()?;
        Ok(EnrolmentReceipt {
            subject_id,
            subject_created,
            template_ids,
        })
    }

    fn create_subject(&self, name: &str, notes: Option<String>) -> Result<Subject, StoreError> {
        let name = normalise_subject_name(name)?;
        let connection = self.connection.lock();
        insert_subject(&connection, &name, normalise_notes(notes))
    }

    fn subject(&self, id: SubjectId) -> Result<Option<Subject>, StoreError> {
        find_subject(&self.connection.lock(), id)
    }

    fn subject_by_name(&self, name: &str) -> Result<Option<Subject>, StoreError> {
        find_subject_by_name(&self.connection.lock(), name.trim())
    }

    fn list_subjects(&self, offset: u64, limit: u64) -> Result<Vec<SubjectSummary>, StoreError> {
        // Past i64::MAX both mean "everything"; SQLite takes signed integers.
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let connection = self.connection.lock();
        let sql = format!("SELECT {SUBJECT_COLUMNS} FROM subjects ORDER BY id LIMIT ?1 OFFSET ?2");
        let subjects = connection
            .prepare(&sql)?
            .query_map([limit, offset], subject_from_row)?
            .collect::<rusqlite::Result<Vec<Subject>>>()?;
        let mut per_model = connection.prepare_cached(
            "SELECT model, count(*) FROM templates WHERE subject_id = ?1 \
             GROUP BY model ORDER BY model",
        )?;
        let mut summaries = Vec::with_capacity(subjects.len());
        for subject in subjects {
            let counts = per_model
                .query_map([subject.id.0], |row| {
                    Ok((ModelId(row.get(0)?), row.get::<_, i64>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<(ModelId, i64)>>>()?;
            let mut template_count = 0;
            for (_, count) in &counts {
                template_count += count_from_sql(*count)?;
            }
            summaries.push(SubjectSummary {
                subject,
                template_count,
                models: counts.into_iter().map(|(model, _)| model).collect(),
            });
        }
        Ok(summaries)
    }

    fn update_subject(
        &self,
        id: SubjectId,
        name: Option<&str>,
        notes: Option<String>,
    ) -> Result<Subject, StoreError> {
        let name = name.map(normalise_subject_name).transpose()?;
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut subject = find_subject(&transaction, id)?
            .ok_or_else(|| StoreError::NotFound(format!("subject {id}")))?;
        if let Some(name) = name {
            transaction
                .execute(
                    "UPDATE subjects SET name = ?1 WHERE id = ?2",
                    params![name, id.0],
                )
                .map_err(|error| name_conflict_or(error, &name))?;
            subject.name = name;
        }
        if let Some(notes) = notes {
            subject.notes = normalise_notes(Some(notes));
            transaction.execute(
                "UPDATE subjects SET notes = ?1 WHERE id = ?2",
                params![subject.notes, id.0],
            )?;
        }
        transaction.commit()?;
        Ok(subject)
    }

    fn delete_subject_audited(
        &self,
        id: SubjectId,
        audit: Option<&NewAuditEntry>,
    ) -> Result<Vec<TemplateId>, StoreError> {
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        refuse_if_watched(&transaction, id)?;
        let templates: Vec<(TemplateId, String)> = transaction
            .prepare("SELECT id, source_media FROM templates WHERE subject_id = ?1 ORDER BY id")?
            .query_map([id.0], |row| Ok((TemplateId(row.get(0)?), row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        // The cascade removes templates and thumbnails with the subject.
        let deleted = transaction.execute("DELETE FROM subjects WHERE id = ?1", [id.0])?;
        if deleted == 0 {
            return Err(StoreError::NotFound(format!("subject {id}")));
        }
        let mut sha256s: Vec<String> = templates.iter().map(|(_, sha)| sha.clone()).collect();
        sha256s.sort();
        sha256s.dedup();
        delete_unreferenced_media(&transaction, &sha256s)?;
        if let Some(audit) = audit {
            let mut audit = audit.clone();
            if let Some(request) = audit.request.as_object_mut() {
                request.insert("templates_removed".into(), templates.len().into());
            }
            audit_in(&transaction, &audit, now_ms(), self.sealer.as_ref())?;
        }
        transaction.commit()?;
        Ok(templates
            .into_iter()
            .map(|(template_id, _)| template_id)
            .collect())
    }

    fn count_subjects(&self) -> Result<u64, StoreError> {
        let connection = self.connection.lock();
        count_from_sql(connection.query_row("SELECT count(*) FROM subjects", [], |row| row.get(0))?)
    }

    fn templates_of(&self, subject: SubjectId) -> Result<Vec<TemplateInfo>, StoreError> {
        let connection = self.connection.lock();
        if find_subject(&connection, subject)?.is_none() {
            return Err(StoreError::NotFound(format!("subject {subject}")));
        }
        let sql = format!(
            "SELECT {TEMPLATE_INFO_COLUMNS} FROM templates WHERE subject_id = ?1 ORDER BY id"
        );
        let templates = connection
            .prepare(&sql)?
            .query_map([subject.0], template_info_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(templates)
    }

    fn template(&self, id: TemplateId) -> Result<Option<TemplateRecord>, StoreError> {
        let connection = self.connection.lock();
        let sql = format!("SELECT {TEMPLATE_INFO_COLUMNS}, embedding FROM templates WHERE id = ?1");
        let found = connection
            .query_row(&sql, [id.0], |row| {
                Ok((template_info_from_row(row)?, row.get::<_, Vec<u8>>(13)?))
            })
            .optional()?;
        let Some((info, blob)) = found else {
            return Ok(None);
        };
        let blob = sealing::open(
            self.sealer.as_ref(),
            &blob,
            &sealing::template_embedding(id.0),
            &format!("template {id} embedding"),
        )?;
        let embedding = decode_embedding(id, &info.model, info.dimension, &blob)?;
        Ok(Some(TemplateRecord { info, embedding }))
    }

    fn thumbnail(&self, template: TemplateId) -> Result<Option<Vec<u8>>, StoreError> {
        let connection = self.connection.lock();
        let stored: Option<Vec<u8>> = connection
            .query_row(
                "SELECT jpeg FROM template_thumbnails WHERE template_id = ?1",
                [template.0],
                |row| row.get(0),
            )
            .optional()?;
        sealing::open_found(
            self.sealer.as_ref(),
            stored,
            &sealing::template_thumbnail(template.0),
            &format!("template {template} thumbnail"),
        )
    }

    fn delete_template_audited(
        &self,
        id: TemplateId,
        audit: Option<&NewAuditEntry>,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let source_media: Option<String> = transaction
            .query_row(
                "SELECT source_media FROM templates WHERE id = ?1",
                [id.0],
                |row| row.get(0),
            )
            .optional()?;
        let Some(source_media) = source_media else {
            return Ok(false);
        };
        transaction.execute("DELETE FROM templates WHERE id = ?1", [id.0])?;
        delete_unreferenced_media(&transaction, &[source_media])?;
        if let Some(audit) = audit {
            audit_in(&transaction, audit, now_ms(), self.sealer.as_ref())?;
        }
        transaction.commit()?;
        Ok(true)
    }

    fn templates_for_model(
        &self,
        model: &ModelId,
    ) -> Result<Vec<(TemplateId, SubjectId, Embedding)>, StoreError> {
        let connection = self.connection.lock();
        let mut statement = connection.prepare(
            "SELECT id, subject_id, dimension, embedding FROM templates \
             WHERE model = ?1 ORDER BY id",
        )?;
        let mut rows = statement.query([model.as_str()])?;
        let mut templates = Vec::new();
        while let Some(row) = rows.next()? {
            let template_id = TemplateId(row.get(0)?);
            let subject_id = SubjectId(row.get(1)?);
            let dimension: i64 = row.get(2)?;
            let dimension = usize::try_from(dimension).map_err(|_| {
                StoreError::Database(format!("template {template_id}: dimension {dimension}"))
            })?;
            // Borrow the blob in place: start-up reads every row, so a copy per row adds up.
            let blob = row.get_ref(3)?.as_blob().map_err(|error| {
                StoreError::Database(format!("template {template_id}: embedding: {error}"))
            })?;
            let blob = sealing::open(
                self.sealer.as_ref(),
                blob,
                &sealing::template_embedding(template_id.0),
                &format!("template {template_id} embedding"),
            )?;
            let embedding = decode_embedding(template_id, model, dimension, &blob)?;
            templates.push((template_id, subject_id, embedding));
        }
        Ok(templates)
    }

    fn template_count(&self, model: &ModelId) -> Result<u64, StoreError> {
        let connection = self.connection.lock();
        count_from_sql(connection.query_row(
            "SELECT count(*) FROM templates WHERE model = ?1",
            [model.as_str()],
            |row| row.get(0),
        )?)
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        migrations::schema_version(&self.connection.lock())
    }
}

#[cfg(test)]
mod tests;
