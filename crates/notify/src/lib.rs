//! Webhook delivery of alerts (issue 5): an outbox in the same SQLite database as the alerts,
//! written in the alert's own transaction, and a dispatcher that POSTs each delivery signed
//! with HMAC-SHA256, retries with exponential backoff, and logs every attempt. See
//! docs/design/010-webhooks.md.
//!
//! Like `vigil-audit`, the crate owns no schema migration: the store runs [`SCHEMA_SQL`] as one
//! of its migrations, and callers pass their own `&rusqlite::Connection` (or open
//! `Transaction`). Only the [`Dispatcher`] holds a connection, its own second one to the file.

mod dispatcher;
mod error;
mod outbox;
mod retry;
mod signature;
mod subscription;
mod target;

pub use dispatcher::{
    system_now_ms, Dispatcher, DispatcherHandle, DispatcherOptions, DispatcherWaker, RoundReport,
};
pub use error::NotifyError;
pub use outbox::{
    attempts, delivery, enqueue, error_class, purge_finished, recent_deliveries, redeliver,
    Attempt, Delivery, DeliveryId, DeliveryState, MAX_PAYLOAD_BYTES,
};
pub use retry::RetryPolicy;
pub use signature::{
    generate_secret, sign, verify_signature, RECOMMENDED_TOLERANCE_SECONDS, SIGNATURE_PREFIX,
};
pub use subscription::{
    create_subscription, delete_subscription, set_subscription_enabled, subscription,
    subscriptions, validate_event_kind, validate_url, NewSubscription, Subscription,
    SubscriptionId, MAX_EVENT_KIND_BYTES, MAX_SECRET_BYTES, MAX_URL_BYTES,
};
pub use target::{forbidden_reason, TargetPolicy, TargetRefused};

/// Creates the `notify_subscriptions`, `notify_deliveries` and `notify_attempts` tables and
/// their indexes. Version 1; frozen once released, like every migration.
pub const SCHEMA_SQL: &str = include_str!("../schema.sql");
