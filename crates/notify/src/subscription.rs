//! Subscriptions: where to send which events, and the secret to sign them with.

use crate::error::NotifyError;
use crate::target::TargetPolicy;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::fmt;

/// Longest URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Longest secret accepted, in bytes.
pub const MAX_SECRET_BYTES: usize = 256;
/// Longest event kind accepted, in bytes.
pub const MAX_EVENT_KIND_BYTES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(pub i64);

impl fmt::Display for SubscriptionId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// A subscription to create.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSubscription {
    /// Where to POST: an `https` URL to a public address, or any `http(s)` URL to a host the
    /// [`TargetPolicy`] allows.
    pub url: String,
    /// The HMAC key receivers verify signatures with (see `generate_secret`).
    pub secret: String,
    /// Event kinds to deliver, e.g. `alert.created`; empty means every kind.
    pub event_kinds: Vec<String>,
    pub enabled: bool,
    /// Free text for the operator, e.g. "SOC pager".
    pub description: String,
}

/// A stored subscription. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub url: String,
    pub secret: String,
    pub event_kinds: Vec<String>,
    pub enabled: bool,
    pub description: String,
    pub created_at_ms: i64,
}

impl Subscription {
    /// Whether an event of `event_kind` goes to this subscription (ignoring `enabled`).
    pub fn wants(&self, event_kind: &str) -> bool {
        self.event_kinds.is_empty() || self.event_kinds.iter().any(|kind| kind == event_kind)
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Subscription")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("secret", &"<hidden>")
            .field("event_kinds", &self.event_kinds)
            .field("enabled", &self.enabled)
            .field("description", &self.description)
            .field("created_at_ms", &self.created_at_ms)
            .finish()
    }
}

impl fmt::Debug for NewSubscription {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("NewSubscription")
            .field("url", &self.url)
            .field("secret", &"<hidden>")
            .field("event_kinds", &self.event_kinds)
            .field("enabled", &self.enabled)
            .field("description", &self.description)
            .finish()
    }
}

const SUBSCRIPTION_COLUMNS: &str =
    "id, url, secret, event_kinds, enabled, description, created_at_ms";

/// Refuses anything but an absolute `http`/`https` URL with a host.
pub fn validate_url(url: &str) -> Result<(), NotifyError> {
    if url.len() > MAX_URL_BYTES {
        return Err(NotifyError::Invalid(format!(
            "the URL is longer than {MAX_URL_BYTES} bytes"
        )));
    }
    let parsed = url::Url::parse(url)
        .map_err(|error| NotifyError::Invalid(format!("{url:?} is not a URL: {error}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(NotifyError::Invalid(format!(
            "webhook URLs must be http or https, not {}",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(NotifyError::Invalid(format!("{url:?} names no host")));
    }
    Ok(())
}

/// Refuses event kinds other than short names of `[a-z0-9._-]`, e.g. `alert.state_changed`.
pub fn validate_event_kind(kind: &str) -> Result<(), NotifyError> {
    let well_formed = !kind.is_empty()
        && kind.len() <= MAX_EVENT_KIND_BYTES
        && kind
            .bytes()
            .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'));
    if well_formed {
        Ok(())
    } else {
        Err(NotifyError::Invalid(format!(
            "event kind {kind:?} must be 1 to {MAX_EVENT_KIND_BYTES} characters of a-z, 0-9, '.', '_', '-'"
        )))
    }
}

fn validate(subscription: &NewSubscription, targets: &TargetPolicy) -> Result<(), NotifyError> {
    validate_url(&subscription.url)?;
    targets.check_url(&subscription.url)?;
    if subscription.secret.is_empty() || subscription.secret.len() > MAX_SECRET_BYTES {
        return Err(NotifyError::Invalid(format!(
            "the secret must be 1 to {MAX_SECRET_BYTES} bytes"
        )));
    }
    subscription
        .event_kinds
        .iter()
        .try_for_each(|kind| validate_event_kind(kind))
}

/// Stores a subscription after checking its URL against `targets` (https, and a literal
/// address must be public, unless the host is allowed); names are checked again at each send.
pub fn create_subscription(
    conn: &Connection,
    subscription: &NewSubscription,
    targets: &TargetPolicy,
    now_ms: i64,
) -> Result<Subscription, NotifyError> {
    validate(subscription, targets)?;
    let mut event_kinds = subscription.event_kinds.clone();
    event_kinds.sort();
    event_kinds.dedup();
    let event_kinds_json = serde_json::to_string(&event_kinds)
        .map_err(|error| NotifyError::Invalid(error.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO notify_subscriptions (url, secret, event_kinds, enabled, description, \
         created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        subscription.url,
        subscription.secret,
        event_kinds_json,
        subscription.enabled,
        subscription.description,
        now_ms,
    ])?;
    Ok(Subscription {
        id: SubscriptionId(conn.last_insert_rowid()),
        url: subscription.url.clone(),
        secret: subscription.secret.clone(),
        event_kinds,
        enabled: subscription.enabled,
        description: subscription.description.clone(),
        created_at_ms: now_ms,
    })
}

pub fn subscription(
    conn: &Connection,
    id: SubscriptionId,
) -> Result<Option<Subscription>, NotifyError> {
    conn.prepare_cached(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM notify_subscriptions WHERE id = ?1"
    ))?
    .query_row([id.0], raw_subscription)
    .optional()?
    .map(RawSubscription::parse)
    .transpose()
}

/// Every subscription, oldest first.
pub fn subscriptions(conn: &Connection) -> Result<Vec<Subscription>, NotifyError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM notify_subscriptions ORDER BY id"
    ))?;
    let raws = statement
        .query_map([], raw_subscription)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(RawSubscription::parse).collect()
}

/// Turns delivery on or off. While off, no new deliveries are queued for it and its pending
/// ones wait (they expire by age if it stays off past the retry window).
pub fn set_subscription_enabled(
    conn: &Connection,
    id: SubscriptionId,
    enabled: bool,
) -> Result<(), NotifyError> {
    let changed = conn
        .prepare_cached("UPDATE notify_subscriptions SET enabled = ?2 WHERE id = ?1")?
        .execute(params![id.0, enabled])?;
    if changed == 0 {
        return Err(NotifyError::NoSuchSubscription(id.0));
    }
    Ok(())
}

/// Deletes a subscription with its deliveries and their attempt log.
pub fn delete_subscription(conn: &Connection, id: SubscriptionId) -> Result<(), NotifyError> {
    // Explicit deletes rather than relying on ON DELETE CASCADE, which needs foreign_keys on.
    conn.prepare_cached(
        "DELETE FROM notify_attempts WHERE delivery_id IN \
         (SELECT id FROM notify_deliveries WHERE subscription_id = ?1)",
    )?
    .execute([id.0])?;
    conn.prepare_cached("DELETE FROM notify_deliveries WHERE subscription_id = ?1")?
        .execute([id.0])?;
    let deleted = conn
        .prepare_cached("DELETE FROM notify_subscriptions WHERE id = ?1")?
        .execute([id.0])?;
    if deleted == 0 {
        return Err(NotifyError::NoSuchSubscription(id.0));
    }
    Ok(())
}

struct RawSubscription {
    id: i64,
    url: String,
    secret: String,
    event_kinds: String,
    enabled: bool,
    description: String,
    created_at_ms: i64,
}

fn raw_subscription(row: &Row<'_>) -> rusqlite::Result<RawSubscription> {
    Ok(RawSubscription {
        id: row.get(0)?,
        url: row.get(1)?,
        secret: row.get(2)?,
        event_kinds: row.get(3)?,
        enabled: row.get(4)?,
        description: row.get(5)?,
        created_at_ms: row.get(6)?,
    })
}

impl RawSubscription {
    fn parse(self) -> Result<Subscription, NotifyError> {
        let event_kinds: Vec<String> =
            serde_json::from_str(&self.event_kinds).map_err(|error| {
                NotifyError::Corrupt(format!(
                    "subscription {}: event kinds are not a list of names: {error}",
                    self.id
                ))
            })?;
        Ok(Subscription {
            id: SubscriptionId(self.id),
            url: self.url,
            secret: self.secret,
            event_kinds,
            enabled: self.enabled,
            description: self.description,
            created_at_ms: self.created_at_ms,
        })
    }
}
