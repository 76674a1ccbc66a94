//! Watchlists, their entries, alerts and reviews. Each change is written with its audit entry
//! in one transaction.

use super::audit_in;
use super::rows::is_unique_violation;
use super::SqliteStore;
use crate::error::StoreError;
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};
use serde::{Deserialize, Serialize};
use vigil_audit::NewAuditEntry;
use vigil_base::SubjectId;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Watchlist {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub false_match_rate: f64,
    pub created_by: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WatchEntry {
    pub id: i64,
    pub watchlist: i64,
    pub subject: Option<SubjectId>,
    pub subject_name: String,
    pub legal_basis: String,
    pub case_ref: String,
    pub responsible: String,
    pub expires_at_ms: i64,
    pub created_by: String,
    pub created_at_ms: i64,
    pub removed_at_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewWatchEntry {
    pub watchlist: i64,
    pub subject: SubjectId,
    pub subject_name: String,
    pub legal_basis: String,
    pub case_ref: String,
    pub responsible: String,
    pub expires_at_ms: i64,
    pub created_by: String,
}

/// An alert a reviewer rejected: the person its sighting showed is not the subject.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedAlert {
    pub alert: i64,
    pub sighting: i64,
    pub rejected_by: String,
}

/// An entry that can match now, with its list's threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveWatchEntry {
    pub entry: i64,
    pub watchlist: i64,
    pub subject: SubjectId,
    pub false_match_rate: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Candidate,
    Confirmed,
    Rejected,
}

impl AlertState {
    fn parse(text: &str) -> Self {
        match text {
            "confirmed" => Self::Confirmed,
            "rejected" => Self::Rejected,
            _ => Self::Candidate,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReviewDecision {
    Confirm,
    Reject,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertReview {
    pub reviewer: String,
    pub decision: ReviewDecision,
    pub note: Option<String>,
    pub at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct NewAlert {
    pub sighting: i64,
    pub watchlist_entry: i64,
    pub subject: SubjectId,
    pub best_template: i64,
    pub score: f32,
    pub false_match_rate: f64,
    pub extrapolated: bool,
    pub expected_false_candidates: f64,
    pub gallery_templates: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertRecord {
    pub id: i64,
    pub sighting: i64,
    pub watchlist_entry: i64,
    pub watchlist: i64,
    pub subject: SubjectId,
    pub subject_name: String,
    pub best_template: i64,
    pub score: f32,
    pub false_match_rate: f64,
    pub extrapolated: bool,
    pub expected_false_candidates: f64,
    pub gallery_templates: u64,
    pub state: AlertState,
    pub created_at_ms: i64,
    pub closed_at_ms: Option<i64>,
    /// Who put the subject on the list: may not review its alerts.
    pub entry_created_by: String,
    pub reviews: Vec<AlertReview>,
}

/// Distinct reviewers whose confirmation makes an alert confirmed.
pub const CONFIRMATIONS_NEEDED: usize = 2;

/// Queues webhook deliveries of an alert event in the caller's transaction, so the alert and
/// its notification commit together (docs/design/010).
fn notify_in(
    connection: &rusqlite::Connection,
    kind: &str,
    alert: &AlertRecord,
    now_ms: i64,
) -> Result<(), StoreError> {
    let payload = serde_json::json!({ "event": kind, "alert": alert }).to_string();
    vigil_notify::enqueue(connection, kind, &payload, now_ms)
        .map(|_| ())
        .map_err(|e| StoreError::Database(format!("webhook outbox: {e}")))
}

fn text(value: &str, what: &str) -> Result<String, StoreError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(StoreError::Invalid(format!(
            "a watchlist entry needs its {what}"
        )));
    }
    Ok(value.to_string())
}

const ENTRY_COLUMNS: &str = "id, watchlist, subject, subject_name, legal_basis, case_ref, \
     responsible, expires_at, created_by, created_at, removed_at";

fn entry_row(row: &Row<'_>) -> rusqlite::Result<WatchEntry> {
    Ok(WatchEntry {
        id: row.get(0)?,
        watchlist: row.get(1)?,
        subject: row.get::<_, Option<i64>>(2)?.map(SubjectId),
        subject_name: row.get(3)?,
        legal_basis: row.get(4)?,
        case_ref: row.get(5)?,
        responsible: row.get(6)?,
        expires_at_ms: row.get(7)?,
        created_by: row.get(8)?,
        created_at_ms: row.get(9)?,
        removed_at_ms: row.get(10)?,
    })
}

const ALERT_COLUMNS: &str = "a.id, a.sighting, a.watchlist_entry, e.watchlist, a.subject, \
     e.subject_name, a.best_template, a.score, a.false_match_rate, a.extrapolated, \
     a.expected_false_candidates, a.gallery_templates, a.state, a.created_at, a.closed_at, \
     e.created_by";

fn alert_row(row: &Row<'_>) -> rusqlite::Result<AlertRecord> {
    Ok(AlertRecord {
        id: row.get(0)?,
        sighting: row.get(1)?,
        watchlist_entry: row.get(2)?,
        watchlist: row.get(3)?,
        subject: SubjectId(row.get(4)?),
        subject_name: row.get(5)?,
        best_template: row.get(6)?,
        score: row.get::<_, f64>(7)? as f32,
        false_match_rate: row.get(8)?,
        extrapolated: row.get::<_, i64>(9)? != 0,
        expected_false_candidates: row.get(10)?,
        gallery_templates: row.get::<_, i64>(11)?.max(0) as u64,
        state: AlertState::parse(&row.get::<_, String>(12)?),
        created_at_ms: row.get(13)?,
        closed_at_ms: row.get(14)?,
        entry_created_by: row.get(15)?,
        reviews: Vec::new(),
    })
}

fn reviews_of(
    connection: &rusqlite::Connection,
    alert: i64,
) -> Result<Vec<AlertReview>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT reviewer, decision, note, at FROM alert_reviews WHERE alert = ?1 ORDER BY at, reviewer",
    )?;
    let rows = statement.query_map([alert], |row| {
        let decision: String = row.get(1)?;
        Ok(AlertReview {
            reviewer: row.get(0)?,
            decision: if decision == "reject" {
                ReviewDecision::Reject
            } else {
                ReviewDecision::Confirm
            },
            note: row.get(2)?,
            at_ms: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn load_alert(
    connection: &rusqlite::Connection,
    id: i64,
) -> Result<Option<AlertRecord>, StoreError> {
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts a JOIN watchlist_entries e ON e.id = a.watchlist_entry
         WHERE a.id = ?1"
    );
    let Some(mut alert) = connection.query_row(&sql, [id], alert_row).optional()? else {
        return Ok(None);
    };
    alert.reviews = reviews_of(connection, id)?;
    Ok(Some(alert))
}

impl SqliteStore {
    pub fn create_watchlist(
        &self,
        name: &str,
        description: Option<String>,
        false_match_rate: f64,
        created_by: &str,
        audit: &NewAuditEntry,
        now_ms: i64,
    ) -> Result<Watchlist, StoreError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid("a watchlist needs a name".into()));
        }
        if !(false_match_rate > 0.0 && false_match_rate < 1.0) {
            return Err(StoreError::Invalid(
                "a watchlist's threshold is a false-match rate in (0, 1)".into(),
            ));
        }
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction
            .execute(
                "INSERT INTO watchlists (name, description, false_match_rate, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, description, false_match_rate, created_by, now_ms],
            )
            .map_err(|error| {
                if is_unique_violation(&error) {
                    StoreError::Conflict(format!("a watchlist named {name:?} exists"))
                } else {
                    error.into()
                }
            })?;
        let id = transaction.last_insert_rowid();
        audit_in(&transaction, audit, now_ms, self.sealer.as_ref())?;
        transaction.commit()?;
        Ok(Watchlist {
            id,
            name: name.to_string(),
            description,
            false_match_rate,
            created_by: created_by.to_string(),
            created_at_ms: now_ms,
        })
    }

    pub fn watchlists(&self) -> Result<Vec<Watchlist>, StoreError> {
        let connection = self.connection.lock();
        let mut statement = connection.prepare(
            "SELECT id, name, description, false_match_rate, created_by, created_at
             FROM watchlists ORDER BY id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(Watchlist {
                id: row.get(0)?,
                name: row.get(1)?,
                description: row.get(2)?,
                false_match_rate: row.get(3)?,
                created_by: row.get(4)?,
                created_at_ms: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Refuses an entry without legal basis, open case, responsible person or a future expiry
    /// before anything is written (the caller enrols the subject only after this passes).
    pub fn check_watch_entry(&self, entry: &NewWatchEntry, now_ms: i64) -> Result<(), StoreError> {
        text(&entry.legal_basis, "legal basis")?;
        text(&entry.responsible, "responsible person")?;
        let case_ref = text(&entry.case_ref, "case reference")?;
        if entry.expires_at_ms <= now_ms {
            return Err(StoreError::Invalid(
                "a watchlist entry needs an expiry in the future".into(),
            ));
        }
        let case = self
            .case(&case_ref)?
            .filter(|c| c.is_open(now_ms))
            .ok_or_else(|| StoreError::Invalid(format!("case {case_ref} is not open")))?;
        if entry.expires_at_ms > case.expires_at_ms {
            return Err(StoreError::Invalid(
                "a watchlist entry cannot outlive its case".into(),
            ));
        }
        let connection = self.connection.lock();
        let exists: Option<i64> = connection
            .query_row(
                "SELECT id FROM watchlists WHERE id = ?1",
                [entry.watchlist],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!(
                "watchlist {}",
                entry.watchlist
            )));
        }
        Ok(())
    }

    pub fn add_watch_entry(
        &self,
        entry: &NewWatchEntry,
        audit: &NewAuditEntry,
        now_ms: i64,
    ) -> Result<WatchEntry, StoreError> {
        self.check_watch_entry(entry, now_ms)?;
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction.execute(
            "INSERT INTO watchlist_entries (watchlist, subject, subject_name, legal_basis, case_ref,
                responsible, expires_at, created_by, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                entry.watchlist,
                entry.subject.0,
                entry.subject_name,
                entry.legal_basis.trim(),
                entry.case_ref.trim(),
                entry.responsible.trim(),
                entry.expires_at_ms,
                entry.created_by,
                now_ms
            ],
        )?;
        let id = transaction.last_insert_rowid();
        audit_in(&transaction, audit, now_ms, self.sealer.as_ref())?;
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM watchlist_entries WHERE id = ?1");
        let stored = transaction.query_row(&sql, [id], entry_row)?;
        transaction.commit()?;
        Ok(stored)
    }

    /// Marks an entry removed (it never matches again) and returns its subject, whose templates
    /// the caller deletes.
    pub fn remove_watch_entry(
        &self,
        id: i64,
        audit: &NewAuditEntry,
        now_ms: i64,
    ) -> Result<Option<SubjectId>, StoreError> {
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let subject: Option<Option<i64>> = transaction
            .query_row(
                "SELECT subject FROM watchlist_entries WHERE id = ?1 AND removed_at IS NULL",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(subject) = subject else {
            return Err(StoreError::NotFound(format!("watchlist entry {id}")));
        };
        transaction.execute(
            "UPDATE watchlist_entries SET removed_at = ?2 WHERE id = ?1",
            params![id, now_ms],
        )?;
        audit_in(&transaction, audit, now_ms, self.sealer.as_ref())?;
        transaction.commit()?;
        Ok(subject.map(SubjectId))
    }

    /// One entry, removed or not.
    pub fn watch_entry(&self, id: i64) -> Result<Option<WatchEntry>, StoreError> {
        let connection = self.connection.lock();
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM watchlist_entries WHERE id = ?1");
        Ok(connection.query_row(&sql, [id], entry_row).optional()?)
    }

    /// The entries not yet removed (current or expired) whose subject is `subject`: while one
    /// exists the subject is not deleted on its own (the entry is removed instead).
    pub fn entries_holding_subject(
        &self,
        subject: SubjectId,
    ) -> Result<Vec<WatchEntry>, StoreError> {
        let connection = self.connection.lock();
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM watchlist_entries
             WHERE subject = ?1 AND removed_at IS NULL ORDER BY id"
        );
        let mut statement = connection.prepare(&sql)?;
        let rows = statement.query_map([subject.0], entry_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn watch_entries(&self, watchlist: i64) -> Result<Vec<WatchEntry>, StoreError> {
        let connection = self.connection.lock();
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM watchlist_entries WHERE watchlist = ?1 ORDER BY id"
        );
        let mut statement = connection.prepare(&sql)?;
        let rows = statement.query_map([watchlist], entry_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every entry, current, expired or removed, whose subject is one of `subjects` or whose
    /// recorded name is one of `names` (a removed entry keeps the name after its templates
    /// are gone), for subject access reports.
    pub fn watch_entries_concerning(
        &self,
        subjects: &[SubjectId],
        names: &[String],
    ) -> Result<Vec<WatchEntry>, StoreError> {
        let connection = self.connection.lock();
        let subject_ids: Vec<i64> = subjects.iter().map(|s| s.0).collect();
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM watchlist_entries
             WHERE subject IN (SELECT value FROM json_each(?1))
                OR subject_name IN (SELECT value FROM json_each(?2))
             ORDER BY id"
        );
        let mut statement = connection.prepare(&sql)?;
        let rows = statement.query_map(
            params![
                serde_json::to_string(&subject_ids).unwrap_or_else(|_| "[]".into()),
                serde_json::to_string(names).unwrap_or_else(|_| "[]".into())
            ],
            entry_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every alert about one of `subjects`, raised by one of `sightings`, or on one of
    /// `entries`, oldest first, for subject access reports.
    pub fn alerts_concerning(
        &self,
        subjects: &[SubjectId],
        sightings: &[i64],
        entries: &[i64],
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let connection = self.connection.lock();
        let subject_ids: Vec<i64> = subjects.iter().map(|s| s.0).collect();
        let json = |ids: &[i64]| serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        let ids: Vec<i64> = {
            let mut statement = connection.prepare(
                "SELECT id FROM alerts
                 WHERE subject IN (SELECT value FROM json_each(?1))
                    OR sighting IN (SELECT value FROM json_each(?2))
                    OR watchlist_entry IN (SELECT value FROM json_each(?3))
                 ORDER BY id",
            )?;
            let rows = statement.query_map(
                params![json(&subject_ids), json(sightings), json(entries)],
                |row| row.get(0),
            )?;
            rows.collect::<Result<_, _>>()?
        };
        let mut alerts = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(alert) = load_alert(&connection, id)? {
                alerts.push(alert);
            }
        }
        Ok(alerts)
    }

    /// Entries that may match at `now_ms`: not removed, not expired, subject still enrolled,
    /// and their case open.
    /// The latest `limit` alerts about `subject` a reviewer rejected, newest first, with the
    /// sighting each was raised by and who rejected it.
    pub fn rejected_alerts_of(
        &self,
        subject: SubjectId,
        limit: usize,
    ) -> Result<Vec<RejectedAlert>, StoreError> {
        let connection = self.connection.lock();
        let mut statement = connection.prepare_cached(
            "SELECT a.id, a.sighting,
                    (SELECT r.reviewer FROM alert_reviews r
                      WHERE r.alert = a.id AND r.decision = 'reject' ORDER BY r.at LIMIT 1)
               FROM alerts a
              WHERE a.subject = ?1 AND a.state = 'rejected'
              ORDER BY a.id DESC LIMIT ?2",
        )?;
        let rows = statement.query_map(params![subject.0, limit as i64], |row| {
            Ok(RejectedAlert {
                alert: row.get(0)?,
                sighting: row.get(1)?,
                rejected_by: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn active_watch_entries(&self, now_ms: i64) -> Result<Vec<ActiveWatchEntry>, StoreError> {
        let connection = self.connection.lock();
        let mut statement = connection.prepare(
            "SELECT e.id, e.watchlist, e.subject, w.false_match_rate
             FROM watchlist_entries e
             JOIN watchlists w ON w.id = e.watchlist
             JOIN cases c ON c.reference = e.case_ref
             WHERE e.removed_at IS NULL AND e.expires_at > ?1 AND e.subject IS NOT NULL
               AND c.closed_at IS NULL AND c.expires_at > ?1
             ORDER BY e.id",
        )?;
        let rows = statement.query_map([now_ms], |row| {
            Ok(ActiveWatchEntry {
                entry: row.get(0)?,
                watchlist: row.get(1)?,
                subject: SubjectId(row.get(2)?),
                false_match_rate: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores a candidate alert and, in the same transaction, queues an `alert.raised` webhook
    /// delivery per matching subscription.
    pub fn insert_alert(&self, alert: &NewAlert, now_ms: i64) -> Result<AlertRecord, StoreError> {
        let mut connection = self.connection.lock();
        let connection = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        connection.execute(
            "INSERT INTO alerts (sighting, watchlist_entry, subject, best_template, score,
                false_match_rate, extrapolated, expected_false_candidates, gallery_templates,
                state, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'candidate', ?10)",
            params![
                alert.sighting,
                alert.watchlist_entry,
                alert.subject.0,
                alert.best_template,
                alert.score as f64,
                alert.false_match_rate,
                alert.extrapolated as i64,
                alert.expected_false_candidates,
                alert.gallery_templates as i64,
                now_ms
            ],
        )?;
        let id = connection.last_insert_rowid();
        let stored = load_alert(&connection, id)?
            .ok_or_else(|| StoreError::Database(format!("alert {id} vanished")))?;
        notify_in(&connection, "alert.raised", &stored, now_ms)?;
        connection.commit()?;
        Ok(stored)
    }

    /// The case of the entry an alert was raised on.
    pub fn alert_case(&self, id: i64) -> Result<Option<String>, StoreError> {
        let connection = self.connection.lock();
        Ok(connection
            .query_row(
                "SELECT watchlist_entries.case_ref FROM alerts
                 JOIN watchlist_entries ON watchlist_entries.id = alerts.watchlist_entry
                 WHERE alerts.id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()?)
    }

    pub fn alert(&self, id: i64) -> Result<Option<AlertRecord>, StoreError> {
        load_alert(&self.connection.lock(), id)
    }

    pub fn alerts(
        &self,
        state: Option<AlertState>,
        limit: u64,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        self.alerts_in_case(state, None, limit)
    }

    /// As `alerts`, only those on entries of `case` when given (an investigator's view).
    pub fn alerts_in_case(
        &self,
        state: Option<AlertState>,
        case: Option<&str>,
        limit: u64,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let connection = self.connection.lock();
        let ids: Vec<i64> = {
            let mut statement = connection.prepare(
                "SELECT alerts.id FROM alerts
                 JOIN watchlist_entries ON watchlist_entries.id = alerts.watchlist_entry
                 WHERE (?1 IS NULL OR alerts.state = ?1)
                   AND (?3 IS NULL OR watchlist_entries.case_ref = ?3)
                 ORDER BY alerts.id DESC LIMIT ?2",
            )?;
            let state_text = state.map(|s| match s {
                AlertState::Candidate => "candidate",
                AlertState::Confirmed => "confirmed",
                AlertState::Rejected => "rejected",
            });
            let rows = statement.query_map(
                params![state_text, limit.clamp(1, 1000) as i64, case],
                |r| r.get(0),
            )?;
            rows.collect::<Result<_, _>>()?
        };
        let mut alerts = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(alert) = load_alert(&connection, id)? {
                alerts.push(alert);
            }
        }
        Ok(alerts)
    }

    /// Records a review under the two-reviewer rule, with its audit entry, in one transaction:
    /// the entry's creator may not review; each reviewer reviews once; one rejection rejects;
    /// `CONFIRMATIONS_NEEDED` distinct confirmations confirm. Reviews of a closed alert are
    /// refused (`Conflict`).
    pub fn review_alert(
        &self,
        id: i64,
        reviewer: &str,
        decision: ReviewDecision,
        note: Option<String>,
        audit: &NewAuditEntry,
        now_ms: i64,
    ) -> Result<AlertRecord, StoreError> {
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let alert = load_alert(&transaction, id)?
            .ok_or_else(|| StoreError::NotFound(format!("alert {id}")))?;
        if alert.state != AlertState::Candidate {
            return Err(StoreError::Conflict(format!(
                "alert {id} is already closed"
            )));
        }
        if alert.entry_created_by == reviewer {
            return Err(StoreError::Conflict(
                "the person who put the subject on the watchlist cannot review its alerts".into(),
            ));
        }
        if alert.reviews.iter().any(|r| r.reviewer == reviewer) {
            return Err(StoreError::Conflict(format!(
                "{reviewer} has already reviewed alert {id}; a second reviewer is needed"
            )));
        }
        let decision_text = match decision {
            ReviewDecision::Confirm => "confirm",
            ReviewDecision::Reject => "reject",
        };
        transaction.execute(
            "INSERT INTO alert_reviews (alert, reviewer, decision, note, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, reviewer, decision_text, note, now_ms],
        )?;
        let confirmations = alert
            .reviews
            .iter()
            .filter(|r| r.decision == ReviewDecision::Confirm)
            .count()
            + usize::from(decision == ReviewDecision::Confirm);
        let new_state = match decision {
            ReviewDecision::Reject => Some("rejected"),
            ReviewDecision::Confirm if confirmations >= CONFIRMATIONS_NEEDED => Some("confirmed"),
            ReviewDecision::Confirm => None,
        };
        if let Some(state) = new_state {
            transaction.execute(
                "UPDATE alerts SET state = ?2, closed_at = ?3 WHERE id = ?1",
                params![id, state, now_ms],
            )?;
        }
        audit_in(&transaction, audit, now_ms, self.sealer.as_ref())?;
        let updated = load_alert(&transaction, id)?
            .ok_or_else(|| StoreError::Database(format!("alert {id} vanished")))?;
        notify_in(&transaction, "alert.reviewed", &updated, now_ms)?;
        transaction.commit()?;
        Ok(updated)
    }
}

impl SqliteStore {
    /// The hosts webhooks may reach beyond https to public addresses (`[webhooks]
    /// allowed_hosts`); checked when a subscription is created. The dispatcher gets the same
    /// policy in its options and checks resolved addresses at each send.
    pub fn set_webhook_targets(&self, targets: vigil_notify::TargetPolicy) {
        *self.webhook_targets.write() = targets;
    }

    pub fn webhook_targets(&self) -> vigil_notify::TargetPolicy {
        self.webhook_targets.read().clone()
    }

    /// Deletes webhook deliveries delivered or given up before `finished_before_ms`, with their
    /// attempt log: their payloads describe alerts and sightings, so they go with sighting
    /// retention (serve's retention job passes the matched-sighting cutoff). Pending ones stay.
    pub fn purge_finished_webhook_deliveries(
        &self,
        finished_before_ms: i64,
    ) -> Result<usize, StoreError> {
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let purged = vigil_notify::purge_finished(&transaction, finished_before_ms)
            .map_err(|e| StoreError::Database(e.to_string()))?;
        transaction.commit()?;
        Ok(purged)
    }

    /// Adds a webhook subscription, with its audit entry, in one transaction. A URL the target
    /// policy refuses (plain http, or a private, loopback or link-local literal address, to a
    /// host not allowed) is `Invalid`.
    pub fn create_webhook(
        &self,
        subscription: &vigil_notify::NewSubscription,
        audit: &NewAuditEntry,
        now_ms: i64,
    ) -> Result<vigil_notify::Subscription, StoreError> {
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let targets = self.webhook_targets();
        let created =
            vigil_notify::create_subscription(&transaction, subscription, &targets, now_ms)
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
        audit_in(&transaction, audit, now_ms, self.sealer.as_ref())?;
        transaction.commit()?;
        Ok(created)
    }

    pub fn webhooks(&self) -> Result<Vec<vigil_notify::Subscription>, StoreError> {
        vigil_notify::subscriptions(&self.connection.lock())
            .map_err(|e| StoreError::Database(e.to_string()))
    }

    /// The latest deliveries (of one subscription, or all), newest first.
    pub fn webhook_deliveries(
        &self,
        subscription: Option<i64>,
        limit: usize,
    ) -> Result<Vec<vigil_notify::Delivery>, StoreError> {
        vigil_notify::recent_deliveries(
            &self.connection.lock(),
            subscription.map(vigil_notify::SubscriptionId),
            limit,
        )
        .map_err(|e| StoreError::Database(e.to_string()))
    }
}
