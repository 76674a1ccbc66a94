//! The outbox: deliveries queued in the caller's transaction, and their attempt log.

use crate::error::NotifyError;
use crate::subscription::{validate_event_kind, SubscriptionId};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::fmt;

/// Largest payload accepted, in bytes: an alert summary, not its images.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// A delivery's id, sent as `X-Vigil-Delivery`; the same on every retry of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryId(pub i64);

impl fmt::Display for DeliveryId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Not yet acknowledged with a 2xx; an attempt is due at `next_attempt_at_ms`.
    Pending,
    /// A 2xx answer came back.
    Delivered,
    /// Given up: too many attempts, or older than the retry window.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == name)
    }
}

/// One event for one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub subscription_id: SubscriptionId,
    pub event_kind: String,
    /// The POST body, exactly as enqueued.
    pub payload: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub created_at_ms: i64,
    /// When pending: the next attempt's earliest time (unix ms).
    pub next_attempt_at_ms: Option<i64>,
    /// When delivered or failed: when (unix ms).
    pub finished_at_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// One HTTP attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub delivery_id: DeliveryId,
    /// 1 for the first try.
    pub attempt: u32,
    pub started_at_ms: i64,
    pub duration_ms: i64,
    /// The HTTP status; `None` when no response came (refused, timed out, TLS failure …).
    pub status_code: Option<u16>,
    /// Why it failed; `None` for a 2xx answer.
    pub error: Option<String>,
}

/// Queues `payload_json` for every enabled subscription that wants `event_kind`; returns the
/// new deliveries' ids (none when nobody subscribes).
///
/// Call it with the transaction that writes the event (a `rusqlite::Transaction` derefs to
/// `Connection`): the notification then commits or rolls back with it. The dispatcher picks it
/// up after the commit; call `DispatcherHandle::wake` then to send it at once.
pub fn enqueue(
    conn: &Connection,
    event_kind: &str,
    payload_json: &str,
    now_ms: i64,
) -> Result<Vec<DeliveryId>, NotifyError> {
    validate_event_kind(event_kind)?;
    if payload_json.len() > MAX_PAYLOAD_BYTES {
        return Err(NotifyError::Invalid(format!(
            "the payload is {} bytes, more than {MAX_PAYLOAD_BYTES}",
            payload_json.len()
        )));
    }
    serde_json::from_str::<serde_json::Value>(payload_json)
        .map_err(|error| NotifyError::Invalid(format!("the payload is not JSON: {error}")))?;
    let mut statement = conn.prepare_cached(
        "INSERT INTO notify_deliveries (subscription_id, event_kind, payload, state, attempts, \
         created_at_ms, next_attempt_at_ms) \
         SELECT id, ?1, ?2, 'pending', 0, ?3, ?3 FROM notify_subscriptions \
         WHERE enabled = 1 AND (json_array_length(event_kinds) = 0 \
            OR EXISTS (SELECT 1 FROM json_each(event_kinds) WHERE value = ?1)) \
         ORDER BY id \
         RETURNING id",
    )?;
    let ids = statement
        .query_map(params![event_kind, payload_json, now_ms], |row| {
            row.get(0).map(DeliveryId)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}

const DELIVERY_COLUMNS: &str = "id, subscription_id, event_kind, payload, state, attempts, \
    created_at_ms, next_attempt_at_ms, finished_at_ms, last_error";

pub fn delivery(conn: &Connection, id: DeliveryId) -> Result<Option<Delivery>, NotifyError> {
    conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM notify_deliveries WHERE id = ?1"
    ))?
    .query_row([id.0], raw_delivery)
    .optional()?
    .map(RawDelivery::parse)
    .transpose()
}

/// The newest deliveries first, of one subscription or of all; at most `limit`.
pub fn recent_deliveries(
    conn: &Connection,
    subscription: Option<SubscriptionId>,
    limit: usize,
) -> Result<Vec<Delivery>, NotifyError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM notify_deliveries \
         WHERE ?1 IS NULL OR subscription_id = ?1 ORDER BY id DESC LIMIT ?2"
    ))?;
    let raws = statement
        .query_map(params![subscription.map(|id| id.0), limit], raw_delivery)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(RawDelivery::parse).collect()
}

/// A delivery's attempts, first first.
pub fn attempts(conn: &Connection, delivery: DeliveryId) -> Result<Vec<Attempt>, NotifyError> {
    let mut statement = conn.prepare_cached(
        "SELECT delivery_id, attempt, started_at_ms, duration_ms, status_code, error \
         FROM notify_attempts WHERE delivery_id = ?1 ORDER BY attempt",
    )?;
    let rows = statement
        .query_map([delivery.0], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, Option<i64>>(4)?,
                row.get::<_, Option<String>>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(
            |(delivery_id, attempt, started_at_ms, duration_ms, status_code, error)| {
                Ok(Attempt {
                    delivery_id: DeliveryId(delivery_id),
                    attempt: u32::try_from(attempt)
                        .map_err(|_| NotifyError::Corrupt(format!("attempt number {attempt}")))?,
                    started_at_ms,
                    duration_ms,
                    status_code: status_code
                        .map(|code| {
                            u16::try_from(code)
                                .map_err(|_| NotifyError::Corrupt(format!("HTTP status {code}")))
                        })
                        .transpose()?,
                    error,
                })
            },
        )
        .collect()
}

/// Puts a failed (or delivered) delivery back in the queue, due at `now_ms`, with a fresh
/// retry window: an operator's "redeliver" after fixing the receiver.
pub fn redeliver(conn: &Connection, id: DeliveryId, now_ms: i64) -> Result<(), NotifyError> {
    let changed = conn
        .prepare_cached(
            "UPDATE notify_deliveries SET state = 'pending', attempts = 0, created_at_ms = ?2, \
             next_attempt_at_ms = ?2, finished_at_ms = NULL WHERE id = ?1",
        )?
        .execute(params![id.0, now_ms])?;
    if changed == 0 {
        return Err(NotifyError::NoSuchDelivery(id.0));
    }
    Ok(())
}

/// Deletes delivered and failed deliveries (and their attempts) finished before
/// `finished_before_ms`; returns how many deliveries went.
pub fn purge_finished(conn: &Connection, finished_before_ms: i64) -> Result<usize, NotifyError> {
    conn.prepare_cached(
        "DELETE FROM notify_attempts WHERE delivery_id IN (SELECT id FROM notify_deliveries \
         WHERE state != 'pending' AND finished_at_ms < ?1)",
    )?
    .execute([finished_before_ms])?;
    Ok(conn
        .prepare_cached(
            "DELETE FROM notify_deliveries WHERE state != 'pending' AND finished_at_ms < ?1",
        )?
        .execute([finished_before_ms])?)
}

/// A logged error as it may be shown back: the status of an HTTP failure without anything the
/// receiver wrote. Attempts logged before bodies stopped being kept read `HTTP 500: <body>`.
pub fn error_class(error: &str) -> &str {
    match error.strip_prefix("HTTP ") {
        Some(rest) if rest.len() >= 3 && rest.as_bytes()[..3].iter().all(u8::is_ascii_digit) => {
            &error[..8]
        }
        _ => error,
    }
}

struct RawDelivery {
    id: i64,
    subscription_id: i64,
    event_kind: String,
    payload: String,
    state: String,
    attempts: i64,
    created_at_ms: i64,
    next_attempt_at_ms: Option<i64>,
    finished_at_ms: Option<i64>,
    last_error: Option<String>,
}

fn raw_delivery(row: &Row<'_>) -> rusqlite::Result<RawDelivery> {
    Ok(RawDelivery {
        id: row.get(0)?,
        subscription_id: row.get(1)?,
        event_kind: row.get(2)?,
        payload: row.get(3)?,
        state: row.get(4)?,
        attempts: row.get(5)?,
        created_at_ms: row.get(6)?,
        next_attempt_at_ms: row.get(7)?,
        finished_at_ms: row.get(8)?,
        last_error: row.get(9)?,
    })
}

impl RawDelivery {
    fn parse(self) -> Result<Delivery, NotifyError> {
        let corrupt = |what: String| NotifyError::Corrupt(format!("delivery {}: {what}", self.id));
        Ok(Delivery {
            id: DeliveryId(self.id),
            subscription_id: SubscriptionId(self.subscription_id),
            state: DeliveryState::parse(&self.state)
                .ok_or_else(|| corrupt(format!("unknown state {:?}", self.state)))?,
            attempts: u32::try_from(self.attempts)
                .map_err(|_| corrupt(format!("attempt count {}", self.attempts)))?,
            event_kind: self.event_kind,
            payload: self.payload,
            created_at_ms: self.created_at_ms,
            next_attempt_at_ms: self.next_attempt_at_ms,
            finished_at_ms: self.finished_at_ms,
            last_error: self.last_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::error_class;

    #[test]
    fn an_http_error_is_shown_without_the_receivers_body() {
        assert_eq!(error_class("HTTP 500: internal trace"), "HTTP 500");
        assert_eq!(error_class("HTTP 404"), "HTTP 404");
        assert_eq!(
            error_class("Connection Failed: refused"),
            "Connection Failed: refused"
        );
        assert_eq!(error_class("HTTP x"), "HTTP x");
    }
}
