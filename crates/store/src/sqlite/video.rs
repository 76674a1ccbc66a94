//! `VideoStore` on the same SQLite database as the gallery.

use super::rows::now_ms;
use super::sealing;
use super::SqliteStore;
use crate::error::StoreError;
use crate::stored_embedding::embedding_from_stored_bytes;
use crate::video_store::{
    NewSegment, NewSighting, SegmentRecord, SightingEmbedding, SightingId, SightingQuery,
    SightingRecord, VideoStore,
};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, params_from_iter, OptionalExtension, Row, TransactionBehavior};
use vigil_base::{CameraConfig, CameraId, Embedding, ModelId};

const SIGHTING_COLUMNS: &str = "id, camera, track, started_at, ended_at, best_at, observations, \
     end_reason, quality, detector_score, box_x1, box_y1, box_x2, box_y2, frame_width, \
     frame_height, trajectory, candidates, created_at";

const SEGMENT_COLUMNS: &str = "id, camera, path, started_at, ended_at, bytes";

fn json_column<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, error.into())
    })
}

fn sighting_from_row(row: &Row<'_>) -> rusqlite::Result<SightingRecord> {
    Ok(SightingRecord {
        id: SightingId(row.get(0)?),
        camera: CameraId(row.get(1)?),
        track: row.get::<_, i64>(2)? as u64,
        started_at_ms: row.get(3)?,
        ended_at_ms: row.get(4)?,
        best_at_ms: row.get(5)?,
        observations: row.get(6)?,
        end_reason: row.get(7)?,
        quality: row.get::<_, f64>(8)? as f32,
        detector_score: row.get::<_, f64>(9)? as f32,
        bbox: [
            row.get::<_, f64>(10)? as f32,
            row.get::<_, f64>(11)? as f32,
            row.get::<_, f64>(12)? as f32,
            row.get::<_, f64>(13)? as f32,
        ],
        frame_width: row.get(14)?,
        frame_height: row.get(15)?,
        trajectory: json_column(row, 16)?,
        candidates: json_column(row, 17)?,
        created_at_ms: row.get(18)?,
    })
}

fn segment_from_row(row: &Row<'_>) -> rusqlite::Result<SegmentRecord> {
    Ok(SegmentRecord {
        id: row.get(0)?,
        camera: CameraId(row.get(1)?),
        path: row.get(2)?,
        started_at_ms: row.get(3)?,
        ended_at_ms: row.get(4)?,
        bytes: row.get::<_, i64>(5)?.max(0) as u64,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn stored_embedding(
    sighting: i64,
    model: &str,
    dimension: i64,
    blob: &[u8],
) -> Result<Embedding, StoreError> {
    let dimension = usize::try_from(dimension)
        .map_err(|_| StoreError::Database(format!("sighting {sighting}: bad dimension")))?;
    embedding_from_stored_bytes(&ModelId::new(model), dimension, blob).map_err(|error| {
        StoreError::Database(format!(
            "sighting {sighting}: stored embedding is unreadable: {error}"
        ))
    })
}

/// `sightings.id` is held by the case bound to parameter `?n`: a search under the case returned
/// it, or it raised an alert on one of the case's watchlist entries.
const CASE_HOLDS_SIGHTING_SQL: &str =
    "(id IN (SELECT sighting FROM case_sightings WHERE case_ref = ?{n}) \
     OR id IN (SELECT alerts.sighting FROM alerts \
               JOIN watchlist_entries ON watchlist_entries.id = alerts.watchlist_entry \
               WHERE watchlist_entries.case_ref = ?{n}))";

impl SqliteStore {
    fn open_sighting_embedding<'a>(
        &self,
        sighting: i64,
        rank: i64,
        stored: &'a [u8],
    ) -> Result<std::borrow::Cow<'a, [u8]>, StoreError> {
        sealing::open(
            self.sealer.as_ref(),
            stored,
            &sealing::sighting_embedding(sighting, rank),
            &format!("sighting {sighting} embedding {rank}"),
        )
    }
}

impl VideoStore for SqliteStore {
    fn save_camera_audited(
        &self,
        camera: &CameraConfig,
        audit: Option<&vigil_audit::NewAuditEntry>,
    ) -> Result<(), StoreError> {
        camera
            .validate()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let config = to_json(camera)?;
        // With keys the whole settings are sealed: the URLs may carry the camera's password.
        let config = match self.sealer() {
            Some(_) => Value::Blob(
                sealing::seal(
                    self.sealer(),
                    config.as_bytes(),
                    &sealing::camera_config(camera.id.as_str()),
                )?
                .into_owned(),
            ),
            None => Value::Text(config),
        };
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        transaction.execute(
            "INSERT INTO cameras (id, config, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at",
            params![camera.id.as_str(), config, now],
        )?;
        if let Some(audit) = audit {
            super::audit_in(&transaction, audit, now, self.sealer())?;
        }
        transaction.commit()?;
        Ok(())
    }

    fn delete_camera_audited(
        &self,
        id: &CameraId,
        audit: Option<&vigil_audit::NewAuditEntry>,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let deleted = transaction.execute("DELETE FROM cameras WHERE id = ?1", [id.as_str()])?;
        if deleted == 0 {
            return Err(StoreError::NotFound(format!("camera {id}")));
        }
        if let Some(audit) = audit {
            super::audit_in(&transaction, audit, now_ms(), self.sealer())?;
        }
        transaction.commit()?;
        Ok(())
    }

    fn audit_only(&self, audit: &vigil_audit::NewAuditEntry) -> Result<(), StoreError> {
        self.audit(audit).map(|_| ())
    }

    fn cameras(&self) -> Result<Vec<CameraConfig>, StoreError> {
        let connection = self.connection.lock();
        let mut statement = connection.prepare("SELECT id, config FROM cameras ORDER BY id")?;
        let mut rows = statement.query([])?;
        let mut cameras = Vec::new();
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let config = match row.get_ref(1)? {
                ValueRef::Blob(stored) => sealing::open(
                    self.sealer(),
                    stored,
                    &sealing::camera_config(&id),
                    &format!("camera {id} settings"),
                )?,
                other => std::borrow::Cow::Borrowed(other.as_bytes().map_err(|error| {
                    StoreError::Database(format!("camera {id}: stored settings: {error}"))
                })?),
            };
            let camera: CameraConfig = serde_json::from_slice(&config).map_err(|error| {
                StoreError::Database(format!(
                    "camera {id}: stored settings are unreadable: {error}"
                ))
            })?;
            cameras.push(camera);
        }
        Ok(cameras)
    }

    fn insert_sighting(&self, sighting: &NewSighting) -> Result<SightingId, StoreError> {
        if sighting.ended_at_ms < sighting.started_at_ms {
            return Err(StoreError::Invalid(
                "a sighting cannot end before it starts".into(),
            ));
        }
        if sighting.crop_jpeg.is_empty() {
            return Err(StoreError::Invalid(
                "a sighting needs its best-shot crop".into(),
            ));
        }
        let trajectory = to_json(&sighting.trajectory)?;
        let candidates = to_json(&sighting.candidates)?;
        let top_subject = sighting.candidates.first().map(|c| c.subject.0);
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // The id is chosen here, as SQLite would (largest + 1, under the write lock), so the
        // crop and embeddings can be sealed bound to their row before anything is written.
        let id: i64 = transaction.query_row(
            "SELECT coalesce(max(id), 0) + 1 FROM sightings",
            [],
            |row| row.get(0),
        )?;
        let sealer = self.sealer.as_ref();
        let crop = sealing::seal(sealer, &sighting.crop_jpeg, &sealing::sighting_crop(id))?;
        transaction.execute(
            "INSERT INTO sightings (id, camera, track, started_at, ended_at, best_at, observations,
                end_reason, quality, detector_score, box_x1, box_y1, box_x2, box_y2, frame_width,
                frame_height, crop_jpeg, trajectory, candidates, top_subject, created_at)
             VALUES (?21, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                ?17, ?18, ?19, ?20)",
            params![
                sighting.camera.as_str(),
                sighting.track as i64,
                sighting.started_at_ms,
                sighting.ended_at_ms,
                sighting.best_at_ms,
                sighting.observations,
                sighting.end_reason,
                sighting.quality as f64,
                sighting.detector_score as f64,
                sighting.bbox[0] as f64,
                sighting.bbox[1] as f64,
                sighting.bbox[2] as f64,
                sighting.bbox[3] as f64,
                sighting.frame_width,
                sighting.frame_height,
                crop.as_ref(),
                trajectory,
                candidates,
                top_subject,
                now_ms(),
                id,
            ],
        )?;
        for (rank, (embedding, quality)) in sighting.embeddings.iter().enumerate() {
            let plaintext = embedding.to_le_bytes();
            let stored = sealing::seal(
                sealer,
                &plaintext,
                &sealing::sighting_embedding(id, rank as i64),
            )?;
            transaction.execute(
                "INSERT INTO sighting_embeddings (sighting, rank, model, dimension, embedding, quality)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id,
                    rank as i64,
                    embedding.model().as_str(),
                    embedding.dimension() as i64,
                    stored.as_ref(),
                    *quality as f64,
                ],
            )?;
        }
        transaction.commit()?;
        Ok(SightingId(id))
    }

    fn sighting(&self, id: SightingId) -> Result<Option<SightingRecord>, StoreError> {
        let sql = format!("SELECT {SIGHTING_COLUMNS} FROM sightings WHERE id = ?1");
        Ok(self
            .connection
            .lock()
            .query_row(&sql, [id.0], sighting_from_row)
            .optional()?)
    }

    fn sighting_crop(&self, id: SightingId) -> Result<Option<Vec<u8>>, StoreError> {
        let stored: Option<Vec<u8>> = self
            .connection
            .lock()
            .query_row(
                "SELECT crop_jpeg FROM sightings WHERE id = ?1",
                [id.0],
                |row| row.get(0),
            )
            .optional()?;
        sealing::open_found(
            self.sealer.as_ref(),
            stored,
            &sealing::sighting_crop(id.0),
            &format!("sighting {id} crop"),
        )
    }

    fn list_sightings(&self, query: &SightingQuery) -> Result<Vec<SightingRecord>, StoreError> {
        let mut conditions = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        if let Some(camera) = &query.camera {
            values.push(Value::Text(camera.0.clone()));
            conditions.push(format!("camera = ?{}", values.len()));
        }
        if let Some(from) = query.from_ms {
            values.push(Value::Integer(from));
            conditions.push(format!("ended_at >= ?{}", values.len()));
        }
        if let Some(to) = query.to_ms {
            values.push(Value::Integer(to));
            conditions.push(format!("started_at <= ?{}", values.len()));
        }
        if let Some(subject) = query.subject {
            values.push(Value::Integer(subject.0));
            conditions.push(format!("top_subject = ?{}", values.len()));
        }
        if let Some(before) = query.before_id {
            values.push(Value::Integer(before.0));
            conditions.push(format!("id < ?{}", values.len()));
        }
        if let Some(case) = &query.case {
            values.push(Value::Text(case.clone()));
            conditions.push(CASE_HOLDS_SIGHTING_SQL.replace("{n}", &values.len().to_string()));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let limit = i64::try_from(query.limit.clamp(1, 10_000)).unwrap_or(10_000);
        let sql = format!(
            "SELECT {SIGHTING_COLUMNS} FROM sightings {filter} ORDER BY id DESC LIMIT {limit}"
        );
        let connection = self.connection.lock();
        let mut statement = connection.prepare(&sql)?;
        let rows = statement.query_map(params_from_iter(values), sighting_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn sighting_embeddings(
        &self,
        sighting: SightingId,
    ) -> Result<Vec<(Embedding, f32)>, StoreError> {
        let connection = self.connection.lock();
        let mut statement = connection.prepare(
            "SELECT model, dimension, embedding, quality, rank FROM sighting_embeddings
             WHERE sighting = ?1 ORDER BY rank",
        )?;
        let rows = statement.query_map([sighting.0], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Vec<u8>>(2)?,
                row.get::<_, f64>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })?;
        let mut embeddings = Vec::new();
        for row in rows {
            let (model, dimension, blob, quality, rank) = row?;
            let blob = self.open_sighting_embedding(sighting.0, rank, &blob)?;
            embeddings.push((
                stored_embedding(sighting.0, &model, dimension, &blob)?,
                quality as f32,
            ));
        }
        Ok(embeddings)
    }

    fn sighting_embeddings_for_model(
        &self,
        model: &ModelId,
    ) -> Result<Vec<SightingEmbedding>, StoreError> {
        let connection = self.connection.lock();
        let mut statement = connection.prepare(
            "SELECT e.sighting, s.camera, s.best_at, e.rank, e.dimension, e.embedding
             FROM sighting_embeddings e JOIN sightings s ON s.id = e.sighting
             WHERE e.model = ?1 ORDER BY e.sighting, e.rank",
        )?;
        let rows = statement.query_map([model.as_str()], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, Vec<u8>>(5)?,
            ))
        })?;
        let mut found = Vec::new();
        for row in rows {
            let (sighting, camera, best_at_ms, rank, dimension, blob) = row?;
            let blob = self.open_sighting_embedding(sighting, rank, &blob)?;
            found.push(SightingEmbedding {
                sighting: SightingId(sighting),
                camera: CameraId(camera),
                best_at_ms,
                rank: rank.max(0) as u32,
                embedding: stored_embedding(sighting, model.as_str(), dimension, &blob)?,
            });
        }
        Ok(found)
    }

    fn delete_sightings_ended_before(
        &self,
        before_ms: i64,
        matched: Option<bool>,
        now_ms: i64,
    ) -> Result<Vec<SightingId>, StoreError> {
        const ALERTED: &str = "EXISTS (SELECT 1 FROM alerts WHERE alerts.sighting = sightings.id)";
        let kind = match matched {
            None => String::new(),
            Some(true) => format!("AND (top_subject IS NOT NULL OR {ALERTED})"),
            Some(false) => format!("AND top_subject IS NULL AND NOT {ALERTED}"),
        };
        let condition = format!("ended_at < ?1 {kind} AND NOT {HELD_AS_EVIDENCE}");
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ids: Vec<i64> = {
            let mut statement =
                transaction.prepare(&format!("SELECT id FROM sightings WHERE {condition}"))?;
            let rows = statement.query_map(params![before_ms, now_ms], |row| row.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        transaction.execute(
            &format!("DELETE FROM sightings WHERE {condition}"),
            params![before_ms, now_ms],
        )?;
        transaction.commit()?;
        Ok(ids.into_iter().map(SightingId).collect())
    }

    fn add_segment(&self, segment: &NewSegment) -> Result<i64, StoreError> {
        if segment.ended_at_ms < segment.started_at_ms {
            return Err(StoreError::Invalid(
                "a segment cannot end before it starts".into(),
            ));
        }
        let bytes = i64::try_from(segment.bytes)
            .map_err(|_| StoreError::Invalid("segment size is too large".into()))?;
        let connection = self.connection.lock();
        connection
            .execute(
                "INSERT INTO recording_segments (camera, path, started_at, ended_at, bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    segment.camera.as_str(),
                    segment.path,
                    segment.started_at_ms,
                    segment.ended_at_ms,
                    bytes
                ],
            )
            .map_err(|error| {
                if super::rows::is_unique_violation(&error) {
                    StoreError::Conflict(format!("segment {} is already registered", segment.path))
                } else {
                    error.into()
                }
            })?;
        Ok(connection.last_insert_rowid())
    }

    fn segments_between(
        &self,
        camera: &CameraId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<SegmentRecord>, StoreError> {
        let sql = format!(
            "SELECT {SEGMENT_COLUMNS} FROM recording_segments
             WHERE camera = ?1 AND ended_at >= ?2 AND started_at <= ?3 ORDER BY started_at"
        );
        let connection = self.connection.lock();
        let mut statement = connection.prepare(&sql)?;
        let rows =
            statement.query_map(params![camera.as_str(), from_ms, to_ms], segment_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn segments(&self, camera: Option<&CameraId>) -> Result<Vec<SegmentRecord>, StoreError> {
        let connection = self.connection.lock();
        let (sql, values): (String, Vec<Value>) = match camera {
            Some(camera) => (
                format!(
                    "SELECT {SEGMENT_COLUMNS} FROM recording_segments WHERE camera = ?1
                     ORDER BY started_at, id"
                ),
                vec![Value::Text(camera.0.clone())],
            ),
            None => (
                format!("SELECT {SEGMENT_COLUMNS} FROM recording_segments ORDER BY started_at, id"),
                Vec::new(),
            ),
        };
        let mut statement = connection.prepare(&sql)?;
        let rows = statement.query_map(params_from_iter(values), segment_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn retire_segments(&self, ids: &[i64]) -> Result<Vec<String>, StoreError> {
        let now_ms = now_ms();
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut paths = Vec::with_capacity(ids.len());
        // A segment showing a sighting held as case evidence (the hold of
        // `delete_sightings_ended_before`) is the evidence's footage: it stays, whatever the
        // recording limits say, until the hold ends.
        let retire = format!(
            "DELETE FROM recording_segments WHERE id = ?1 AND NOT EXISTS (
                SELECT 1 FROM sightings WHERE sightings.camera = recording_segments.camera
                  AND sightings.started_at <= recording_segments.ended_at
                  AND sightings.ended_at >= recording_segments.started_at
                  AND {HELD_AS_EVIDENCE})
             RETURNING path"
        );
        for id in ids {
            let path: Option<String> = transaction
                .query_row(&retire, params![id, now_ms], |row| row.get(0))
                .optional()?;
            if let Some(path) = path {
                transaction.execute(
                    "INSERT OR IGNORE INTO recording_garbage (path) VALUES (?1)",
                    [&path],
                )?;
                paths.push(path);
            }
        }
        transaction.commit()?;
        Ok(paths)
    }

    fn garbage(&self) -> Result<Vec<String>, StoreError> {
        let connection = self.connection.lock();
        let mut statement =
            connection.prepare("SELECT path FROM recording_garbage ORDER BY path")?;
        let rows = statement.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn forget_garbage(&self, paths: &[String]) -> Result<(), StoreError> {
        let mut connection = self.connection.lock();
        let transaction = connection.transaction()?;
        for path in paths {
            transaction.execute("DELETE FROM recording_garbage WHERE path = ?1", [path])?;
        }
        transaction.commit()?;
        Ok(())
    }

    fn active_watch_entries(
        &self,
        now_ms: i64,
    ) -> Result<Vec<crate::ActiveWatchEntry>, StoreError> {
        SqliteStore::active_watch_entries(self, now_ms)
    }

    fn insert_alert(
        &self,
        alert: &crate::NewAlert,
        now_ms: i64,
    ) -> Result<crate::AlertRecord, StoreError> {
        SqliteStore::insert_alert(self, alert, now_ms)
    }

    fn rejected_alerts_of(
        &self,
        subject: vigil_base::SubjectId,
        limit: usize,
    ) -> Result<Vec<crate::RejectedAlert>, StoreError> {
        SqliteStore::rejected_alerts_of(self, subject, limit)
    }

    fn audit_decision(&self, entry: &vigil_audit::NewAuditEntry) -> Result<(), StoreError> {
        SqliteStore::audit(self, entry).map(|_| ())
    }
}

/// SQL: the row `sightings` is held as evidence at `?2` (unix ms): it raised an alert that is
/// not rejected, and the alert's case is open or ended less than its evidence period ago. The
/// case's end is its closing or its expiry, whichever came first.
const HELD_AS_EVIDENCE: &str = "EXISTS (
    SELECT 1 FROM alerts
    JOIN watchlist_entries ON watchlist_entries.id = alerts.watchlist_entry
    JOIN cases ON cases.reference = watchlist_entries.case_ref
    WHERE alerts.sighting = sightings.id AND alerts.state != 'rejected'
      AND ?2 < min(coalesce(cases.closed_at, cases.expires_at), cases.expires_at)
               + cases.evidence_retention_days * 86400000)";

impl SqliteStore {
    /// Records that a search under `case` returned these sightings: the case's investigators may
    /// see them from now on (and only they, of the investigators).
    pub fn link_sightings_to_case(
        &self,
        case: &str,
        sightings: &[i64],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT OR IGNORE INTO case_sightings (case_ref, sighting, linked_at)
                 SELECT ?1, id, ?3 FROM sightings WHERE id = ?2",
            )?;
            for sighting in sightings {
                insert.execute(params![case, sighting, now_ms])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Whether `case` holds the sighting (see `SightingQuery::case`).
    pub fn case_holds_sighting(
        &self,
        case: &str,
        sighting: SightingId,
    ) -> Result<bool, StoreError> {
        let connection = self.connection.lock();
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM sightings WHERE id = ?2 AND {})",
            CASE_HOLDS_SIGHTING_SQL.replace("{n}", "1")
        );
        Ok(connection.query_row(&sql, params![case, sighting.0], |row| row.get(0))?)
    }
}
