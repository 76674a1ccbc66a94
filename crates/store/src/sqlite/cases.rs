//! Cases, written together with their audit entries in one transaction.

use super::audit_in;
use super::SqliteStore;
use crate::error::StoreError;
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};
use serde::{Deserialize, Serialize};
use vigil_audit::NewAuditEntry;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Case {
    pub reference: String,
    pub purpose: String,
    pub legal_basis: String,
    /// The login name of the user who opened the case (always an authenticated user).
    pub owner: String,
    /// Login names of the members, read from their user records (members are stored by id).
    pub members: Vec<String>,
    /// User ids of the members, in the order of `members`.
    pub member_ids: Vec<i64>,
    pub opened_at_ms: i64,
    pub expires_at_ms: i64,
    pub closed_at_ms: Option<i64>,
    /// Days the sightings that raised this case's alerts are kept after it closes or expires.
    pub evidence_retention_days: u32,
}

impl Case {
    /// Open: not closed and not expired at `now_ms`.
    pub fn is_open(&self, now_ms: i64) -> bool {
        self.closed_at_ms.is_none() && now_ms < self.expires_at_ms
    }

    /// The owner and the members may act under the case.
    pub fn admits(&self, user_name: &str) -> bool {
        self.owner == user_name || self.members.iter().any(|m| m == user_name)
    }
}

#[derive(Debug, Clone)]
pub struct NewCase {
    pub reference: String,
    pub purpose: String,
    pub legal_basis: String,
    pub owner: String,
    /// Login names of existing users; a name matching no user is refused (`Invalid`).
    pub members: Vec<String>,
    pub expires_at_ms: i64,
    /// Days its alerts' sightings are kept after the case ends (`DEFAULT_EVIDENCE_RETENTION_DAYS`
    /// when `None`).
    pub evidence_retention_days: Option<u32>,
}

/// Evidence kept 30 days after a case ends unless the case says otherwise.
pub const DEFAULT_EVIDENCE_RETENTION_DAYS: u32 = 30;
/// Ten years: longer is not a retention period.
pub const MAX_EVIDENCE_RETENTION_DAYS: u32 = 3650;

fn required(value: &str, what: &str) -> Result<String, StoreError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(StoreError::Invalid(format!("a case needs its {what}")));
    }
    if value.chars().count() > 500 {
        return Err(StoreError::Invalid(format!(
            "the case's {what} is too long"
        )));
    }
    Ok(value.to_string())
}

fn case_row(row: &Row<'_>) -> rusqlite::Result<(i64, Case)> {
    Ok((
        row.get(0)?,
        Case {
            reference: row.get(1)?,
            purpose: row.get(2)?,
            legal_basis: row.get(3)?,
            owner: row.get(4)?,
            members: Vec::new(),
            member_ids: Vec::new(),
            opened_at_ms: row.get(5)?,
            expires_at_ms: row.get(6)?,
            closed_at_ms: row.get(7)?,
            evidence_retention_days: row.get(8)?,
        },
    ))
}

const CASE_COLUMNS: &str =
    "id, reference, purpose, legal_basis, owner, opened_at, expires_at, closed_at, \
     evidence_retention_days";

/// The members' current login names and ids, by name.
fn members_of(
    connection: &rusqlite::Connection,
    id: i64,
) -> Result<(Vec<String>, Vec<i64>), StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT users.name, users.id FROM case_members AS members
         JOIN auth_users AS users ON users.id = members.user_id
         WHERE members.case_id = ?1 ORDER BY users.name",
    )?;
    let rows = statement.query_map([id], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let pairs: Vec<(String, i64)> = rows.collect::<Result<_, _>>()?;
    Ok(pairs.into_iter().unzip())
}

/// The id of the user with login name `name` (normalised as user names are), or `Invalid`:
/// a case member must be someone who can log in.
fn member_id(connection: &rusqlite::Connection, name: &str) -> Result<i64, StoreError> {
    let normalised = name.trim().to_ascii_lowercase();
    connection
        .query_row(
            "SELECT id FROM auth_users WHERE name = ?1",
            [&normalised],
            |row| row.get(0),
        )
        .optional()?
        .ok_or_else(|| StoreError::Invalid(format!("case member {name:?} is not a user")))
}

impl SqliteStore {
    /// Opens a case and records it in the audit log, in one transaction.
    pub fn open_case(
        &self,
        case: &NewCase,
        audit: &NewAuditEntry,
        now_ms: i64,
    ) -> Result<Case, StoreError> {
        let reference = required(&case.reference, "reference")?;
        let purpose = required(&case.purpose, "purpose")?;
        let legal_basis = required(&case.legal_basis, "legal basis")?;
        let owner = required(&case.owner, "owner")?;
        if case.expires_at_ms <= now_ms {
            return Err(StoreError::Invalid(
                "a case needs an expiry in the future".into(),
            ));
        }
        let evidence_retention_days = case
            .evidence_retention_days
            .unwrap_or(DEFAULT_EVIDENCE_RETENTION_DAYS);
        if evidence_retention_days > MAX_EVIDENCE_RETENTION_DAYS {
            return Err(StoreError::Invalid(format!(
                "evidence retention is at most {MAX_EVIDENCE_RETENTION_DAYS} days"
            )));
        }
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction
            .execute(
                "INSERT INTO cases (reference, purpose, legal_basis, owner, opened_at, expires_at,
                                    evidence_retention_days)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    reference,
                    purpose,
                    legal_basis,
                    owner,
                    now_ms,
                    case.expires_at_ms,
                    evidence_retention_days
                ],
            )
            .map_err(|error| {
                if super::rows::is_unique_violation(&error) {
                    StoreError::Conflict(format!("case {reference} already exists"))
                } else {
                    error.into()
                }
            })?;
        let id = transaction.last_insert_rowid();
        for member in &case.members {
            let member = required(member, "member name")?;
            let user = member_id(&transaction, &member)?;
            transaction.execute(
                "INSERT OR IGNORE INTO case_members (case_id, user_id) VALUES (?1, ?2)",
                params![id, user],
            )?;
        }
        audit_in(&transaction, audit, now_ms, self.sealer.as_ref())?;
        let (members, member_ids) = members_of(&transaction, id)?;
        transaction.commit()?;
        Ok(Case {
            reference,
            purpose,
            legal_basis,
            owner,
            members,
            member_ids,
            opened_at_ms: now_ms,
            expires_at_ms: case.expires_at_ms,
            closed_at_ms: None,
            evidence_retention_days,
        })
    }

    /// Closes a case (nothing more may be done under it) and records it, in one transaction.
    pub fn close_case(
        &self,
        reference: &str,
        audit: &NewAuditEntry,
        now_ms: i64,
    ) -> Result<Case, StoreError> {
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let updated = transaction.execute(
            "UPDATE cases SET closed_at = ?2 WHERE reference = ?1 AND closed_at IS NULL",
            params![reference, now_ms],
        )?;
        if updated == 0 {
            return Err(StoreError::NotFound(format!("open case {reference}")));
        }
        audit_in(&transaction, audit, now_ms, self.sealer.as_ref())?;
        transaction.commit()?;
        drop(connection);
        self.case(reference)?
            .ok_or_else(|| StoreError::NotFound(format!("case {reference}")))
    }

    pub fn case(&self, reference: &str) -> Result<Option<Case>, StoreError> {
        let connection = self.connection.lock();
        let sql = format!("SELECT {CASE_COLUMNS} FROM cases WHERE reference = ?1");
        let found = connection
            .query_row(&sql, [reference], case_row)
            .optional()?;
        match found {
            Some((id, mut case)) => {
                (case.members, case.member_ids) = members_of(&connection, id)?;
                Ok(Some(case))
            }
            None => Ok(None),
        }
    }

    pub fn cases(&self) -> Result<Vec<Case>, StoreError> {
        let connection = self.connection.lock();
        let sql = format!("SELECT {CASE_COLUMNS} FROM cases ORDER BY id");
        let mut statement = connection.prepare(&sql)?;
        let rows: Vec<(i64, Case)> = statement
            .query_map([], case_row)?
            .collect::<Result<_, _>>()?;
        drop(statement);
        let mut cases = Vec::with_capacity(rows.len());
        for (id, mut case) in rows {
            (case.members, case.member_ids) = members_of(&connection, id)?;
            cases.push(case);
        }
        Ok(cases)
    }
}
