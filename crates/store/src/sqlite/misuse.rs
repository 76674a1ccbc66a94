//! Misuse detection over the audit log: per-user search statistics for a day, and alerts for
//! auditors when a user searches far above their own norm, outside working hours, under cases
//! they do not belong to, or keeps being refused for lacking the permission (probing). The
//! rules are in docs/design/013-misuse-detection.md.

use super::SqliteStore;
use crate::error::StoreError;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use vigil_audit::NewAuditEntry;
use vigil_base::config::MisuseConfig;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// The audit actions that look a person up.
const SEARCH_ACTIONS: &str = "('identify', 'verify', 'search')";
/// Refusal codes the access guard writes for a search outside the caller's cases.
const OUTSIDE_CASE_CODES: &[&str] = &["not_in_case", "case_not_open", "case_required"];

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MisuseRule {
    AboveNorm,
    OffHours,
    OutsideCases,
    /// Many requests refused for lacking the permission: probing for what one may not do.
    Refusals,
}

impl MisuseRule {
    pub fn as_str(self) -> &'static str {
        match self {
            MisuseRule::AboveNorm => "above_norm",
            MisuseRule::OffHours => "off_hours",
            MisuseRule::OutsideCases => "outside_cases",
            MisuseRule::Refusals => "refusals",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            MisuseRule::AboveNorm,
            MisuseRule::OffHours,
            MisuseRule::OutsideCases,
            MisuseRule::Refusals,
        ]
        .into_iter()
        .find(|rule| rule.as_str() == text)
    }
}

/// One user's searches on one local day, beside their norm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserSearchActivity {
    pub user_name: String,
    /// Start of the local day, unix ms.
    pub day_ms: i64,
    /// Searches attempted that day (identify, verify, search), whatever their outcome.
    pub searches: u64,
    /// Mean searches per day over the `baseline_days` before (attempts, zero days included).
    pub baseline_per_day: f64,
    pub off_hours: u64,
    /// Attempts refused because the case was not the user's, not open, or not named.
    pub outside_case_attempts: u64,
    /// Requests refused that day for lacking the permission (`access_refused` entries; a
    /// summary entry counts the repeats it stands for).
    #[serde(default)]
    pub refusals: u64,
    /// First and last audit entries of the day's activity (searches and refusals).
    pub first_sequence: u64,
    pub last_sequence: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MisuseAlert {
    pub id: i64,
    pub user_name: String,
    pub rule: MisuseRule,
    pub day_ms: i64,
    pub observed: u64,
    pub expected: f64,
    pub detail: String,
    /// The audit entries behind it, by sequence number.
    pub first_entry: u64,
    pub last_entry: u64,
    pub raised_at_ms: i64,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at_ms: Option<i64>,
    pub note: Option<String>,
}

/// Start of the local day holding `at_ms`, as unix ms.
pub fn local_day_start(at_ms: i64, policy: &MisuseConfig) -> i64 {
    let offset = i64::from(policy.utc_offset_minutes) * 60_000;
    // saturating: a caller may name any instant, the far ends of time included
    at_ms
        .saturating_add(offset)
        .div_euclid(DAY_MS)
        .saturating_mul(DAY_MS)
        .saturating_sub(offset)
}

/// Whether `at_ms` is outside the policy's working hours (or on a weekend it keeps off).
pub fn is_off_hours(at_ms: i64, policy: &MisuseConfig) -> bool {
    let local = at_ms.saturating_add(i64::from(policy.utc_offset_minutes) * 60_000);
    let hour = local.rem_euclid(DAY_MS) / HOUR_MS;
    // 1970-01-01 was a Thursday: +3 makes Monday 0.
    let weekday = (local.div_euclid(DAY_MS) + 3).rem_euclid(7);
    (policy.weekends_off && weekday >= 5)
        || hour < i64::from(policy.working_hours_start)
        || hour >= i64::from(policy.working_hours_end)
}

fn sequence(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Every user's search activity on the local day starting at `day_ms`.
fn day_activity(
    connection: &Connection,
    day_ms: i64,
    policy: &MisuseConfig,
) -> Result<Vec<UserSearchActivity>, StoreError> {
    let mut by_user: BTreeMap<String, UserSearchActivity> = BTreeMap::new();
    let mut statement = connection.prepare_cached(&format!(
        "SELECT sequence, at_ms, actor_name, outcome, outcome_detail FROM audit_entries
         WHERE action IN {SEARCH_ACTIONS} AND at_ms >= ?1 AND at_ms < ?2 ORDER BY sequence"
    ))?;
    let mut rows = statement.query(params![day_ms, day_ms.saturating_add(DAY_MS)])?;
    while let Some(row) = rows.next()? {
        let sequence_number = sequence(row.get(0)?);
        let at_ms: i64 = row.get(1)?;
        let user_name: String = row.get(2)?;
        let outcome: String = row.get(3)?;
        let detail: String = row.get(4)?;
        let activity = by_user
            .entry(user_name.clone())
            .or_insert_with(|| UserSearchActivity {
                user_name,
                day_ms,
                searches: 0,
                baseline_per_day: 0.0,
                off_hours: 0,
                outside_case_attempts: 0,
                refusals: 0,
                first_sequence: sequence_number,
                last_sequence: sequence_number,
            });
        activity.searches += 1;
        activity.last_sequence = sequence_number;
        if is_off_hours(at_ms, policy) {
            activity.off_hours += 1;
        }
        if outcome == "refused" && OUTSIDE_CASE_CODES.contains(&detail.as_str()) {
            activity.outside_case_attempts += 1;
        }
    }
    drop(rows);
    // The refusal log (crates/api/src/refusals.rs) writes a user's first refusal per route and
    // window, then one summary with `"repeats"`: the refusals it stands for.
    let mut statement = connection.prepare_cached(
        "SELECT actor_name, sum(coalesce(json_extract(request, '$.repeats'), 1)),
                min(sequence), max(sequence)
         FROM audit_entries
         WHERE action = 'access_refused' AND at_ms >= ?1 AND at_ms < ?2 GROUP BY actor_name",
    )?;
    let mut rows = statement.query(params![day_ms, day_ms.saturating_add(DAY_MS)])?;
    while let Some(row) = rows.next()? {
        let user_name: String = row.get(0)?;
        let refusals = sequence(row.get(1)?);
        let (first, last) = (sequence(row.get(2)?), sequence(row.get(3)?));
        let activity = by_user
            .entry(user_name.clone())
            .or_insert_with(|| UserSearchActivity {
                user_name,
                day_ms,
                searches: 0,
                baseline_per_day: 0.0,
                off_hours: 0,
                outside_case_attempts: 0,
                refusals: 0,
                first_sequence: first,
                last_sequence: last,
            });
        activity.refusals = refusals;
        activity.first_sequence = activity.first_sequence.min(first);
        activity.last_sequence = activity.last_sequence.max(last);
    }
    drop(rows);
    let baseline_days = i64::from(policy.baseline_days.max(1));
    let mut statement = connection.prepare_cached(&format!(
        "SELECT actor_name, count(*) FROM audit_entries
         WHERE action IN {SEARCH_ACTIONS} AND at_ms >= ?1 AND at_ms < ?2 GROUP BY actor_name"
    ))?;
    let mut rows = statement.query(params![
        day_ms.saturating_sub(baseline_days.saturating_mul(DAY_MS)),
        day_ms
    ])?;
    while let Some(row) = rows.next()? {
        let user_name: String = row.get(0)?;
        let count: i64 = row.get(1)?;
        if let Some(activity) = by_user.get_mut(&user_name) {
            activity.baseline_per_day = count as f64 / baseline_days as f64;
        }
    }
    Ok(by_user.into_values().collect())
}

/// The alerts `activity` breaks, as (rule, observed, expected, detail).
fn broken_rules(
    activity: &UserSearchActivity,
    policy: &MisuseConfig,
) -> Vec<(MisuseRule, u64, f64, String)> {
    let mut broken = Vec::new();
    let limit = (policy.volume_factor * activity.baseline_per_day)
        .max(f64::from(policy.min_daily_searches));
    if activity.searches as f64 > limit {
        broken.push((
            MisuseRule::AboveNorm,
            activity.searches,
            activity.baseline_per_day,
            format!(
                "{} searches in the day against a norm of {:.1} per day over the previous {} days \
                 (alert above {:.0})",
                activity.searches, activity.baseline_per_day, policy.baseline_days, limit
            ),
        ));
    }
    if activity.off_hours > 0 {
        broken.push((
            MisuseRule::OffHours,
            activity.off_hours,
            0.0,
            format!(
                "{} searches outside working hours {:02}:00–{:02}:00 (UTC{:+} min){}",
                activity.off_hours,
                policy.working_hours_start,
                policy.working_hours_end,
                policy.utc_offset_minutes,
                if policy.weekends_off {
                    " or on a weekend"
                } else {
                    ""
                }
            ),
        ));
    }
    if activity.outside_case_attempts > 0
        && activity.outside_case_attempts >= u64::from(policy.outside_case_attempts)
    {
        broken.push((
            MisuseRule::OutsideCases,
            activity.outside_case_attempts,
            0.0,
            format!(
                "{} searches refused for naming a case the user is not in, one not open, or none",
                activity.outside_case_attempts
            ),
        ));
    }
    if activity.refusals > u64::from(policy.refusals_per_day) {
        broken.push((
            MisuseRule::Refusals,
            activity.refusals,
            0.0,
            format!(
                "{} requests refused for lacking the permission in the day (alert above {}): \
                 probing for what the user may not do",
                activity.refusals, policy.refusals_per_day
            ),
        ));
    }
    broken
}

fn alert_row(row: &Row<'_>) -> rusqlite::Result<MisuseAlert> {
    let rule: String = row.get(2)?;
    let rule = MisuseRule::parse(&rule).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            2,
            rusqlite::types::Type::Text,
            format!("unknown misuse rule {rule:?}").into(),
        )
    })?;
    Ok(MisuseAlert {
        id: row.get(0)?,
        user_name: row.get(1)?,
        rule,
        day_ms: row.get(3)?,
        observed: sequence(row.get(4)?),
        expected: row.get(5)?,
        detail: row.get(6)?,
        first_entry: sequence(row.get(7)?),
        last_entry: sequence(row.get(8)?),
        raised_at_ms: row.get(9)?,
        acknowledged_by: row.get(10)?,
        acknowledged_at_ms: row.get(11)?,
        note: row.get(12)?,
    })
}

const ALERT_COLUMNS: &str = "id, user_name, rule, day_ms, observed, expected, detail, \
     first_entry, last_entry, raised_at, acknowledged_by, acknowledged_at, note";

impl SqliteStore {
    /// Every user's searches on the local day holding `at_ms`, beside their norm.
    pub fn search_activity(
        &self,
        at_ms: i64,
        policy: &MisuseConfig,
    ) -> Result<Vec<UserSearchActivity>, StoreError> {
        let connection = self.connection.lock();
        day_activity(&connection, local_day_start(at_ms, policy), policy)
    }

    /// Checks yesterday and today (local) against the rules and stores an alert per user, rule
    /// and day; returns the alerts raised by this scan. Re-scanning updates an open alert's
    /// counts and never raises it twice.
    pub fn scan_for_misuse(
        &self,
        policy: &MisuseConfig,
        now_ms: i64,
    ) -> Result<Vec<MisuseAlert>, StoreError> {
        let today = local_day_start(now_ms, policy);
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut raised = Vec::new();
        for day in [today - DAY_MS, today] {
            for activity in day_activity(&transaction, day, policy)? {
                for (rule, observed, expected, detail) in broken_rules(&activity, policy) {
                    let inserted = transaction.execute(
                        "INSERT INTO misuse_alerts (user_name, rule, day_ms, observed, expected,
                             detail, first_entry, last_entry, raised_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                         ON CONFLICT (user_name, rule, day_ms) DO NOTHING",
                        params![
                            activity.user_name,
                            rule.as_str(),
                            day,
                            i64::try_from(observed).unwrap_or(i64::MAX),
                            expected,
                            detail,
                            i64::try_from(activity.first_sequence).unwrap_or(i64::MAX),
                            i64::try_from(activity.last_sequence).unwrap_or(i64::MAX),
                            now_ms
                        ],
                    )?;
                    if inserted == 1 {
                        let id = transaction.last_insert_rowid();
                        raised.push(transaction.query_row(
                            &format!("SELECT {ALERT_COLUMNS} FROM misuse_alerts WHERE id = ?1"),
                            [id],
                            alert_row,
                        )?);
                    } else {
                        transaction.execute(
                            "UPDATE misuse_alerts SET observed = ?4, expected = ?5, detail = ?6,
                                 last_entry = ?7
                             WHERE user_name = ?1 AND rule = ?2 AND day_ms = ?3
                               AND acknowledged_at IS NULL",
                            params![
                                activity.user_name,
                                rule.as_str(),
                                day,
                                i64::try_from(observed).unwrap_or(i64::MAX),
                                expected,
                                detail,
                                i64::try_from(activity.last_sequence).unwrap_or(i64::MAX)
                            ],
                        )?;
                    }
                }
            }
        }
        transaction.commit()?;
        Ok(raised)
    }

    /// Misuse alerts, newest first; only unacknowledged ones when `open_only`.
    pub fn misuse_alerts(
        &self,
        open_only: bool,
        limit: usize,
    ) -> Result<Vec<MisuseAlert>, StoreError> {
        let connection = self.connection.lock();
        let condition = if open_only {
            "WHERE acknowledged_at IS NULL"
        } else {
            ""
        };
        let mut statement = connection.prepare(&format!(
            "SELECT {ALERT_COLUMNS} FROM misuse_alerts {condition} ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = statement.query_map(
            [i64::try_from(limit.clamp(1, 10_000)).unwrap_or(10_000)],
            alert_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// An auditor acknowledges an alert (with a note of what was found), recorded in the audit
    /// log in the same transaction. Nobody acknowledges an alert about themselves.
    pub fn acknowledge_misuse_alert(
        &self,
        id: i64,
        auditor: &str,
        note: &str,
        audit: &NewAuditEntry,
        now_ms: i64,
    ) -> Result<MisuseAlert, StoreError> {
        let note = note.trim();
        if note.is_empty() {
            return Err(StoreError::Invalid(
                "acknowledging a misuse alert needs a note of what was found".into(),
            ));
        }
        let mut connection = self.connection.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let alert = transaction
            .query_row(
                &format!("SELECT {ALERT_COLUMNS} FROM misuse_alerts WHERE id = ?1"),
                [id],
                alert_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("misuse alert {id}")))?;
        if alert.user_name == auditor {
            return Err(StoreError::Conflict(
                "an alert about yourself is acknowledged by another auditor".into(),
            ));
        }
        if alert.acknowledged_at_ms.is_some() {
            return Err(StoreError::Conflict(format!(
                "misuse alert {id} is already acknowledged"
            )));
        }
        transaction.execute(
            "UPDATE misuse_alerts SET acknowledged_by = ?2, acknowledged_at = ?3, note = ?4
             WHERE id = ?1",
            params![id, auditor, now_ms, note],
        )?;
        vigil_audit::append(&transaction, audit, now_ms).map_err(super::sealing::audit_error)?;
        let alert = transaction.query_row(
            &format!("SELECT {ALERT_COLUMNS} FROM misuse_alerts WHERE id = ?1"),
            [id],
            alert_row,
        )?;
        transaction.commit()?;
        Ok(alert)
    }
}
