//! The tamper-evident audit log (issue 5): an append-only, hash-chained table in the same SQLite
//! database as the data it audits, so an entry commits or rolls back with the change it records.
//! See docs/design/008-audit-chain.md for what is hashed and what each check detects.
//!
//! The crate owns no connection: the store creates the tables by running [`SCHEMA_SQL`] as one
//! of its migrations and calls [`append`] inside its own transactions.

mod anchor;
mod entry;
mod error;
mod export;
mod hash;
mod log;
mod verify;

pub use anchor::{publish_head, read_anchors};
pub use entry::{
    Actor, AuditAction, AuditRecord, ChainHead, EntryHash, NewAuditEntry, Outcome, OutcomeKind,
    Target,
};
pub use error::AuditError;
pub use export::export;
pub use hash::canonical_json;
pub use log::{
    actor_activity, append, append_sealed, distinct_probes_of, entries, head, probe_binding,
    probe_image, ActorActivity, AuditFilter, DEFAULT_LIMIT, MAX_LIMIT, MAX_PROBE_BYTES,
    MAX_REQUEST_BYTES, MAX_TEXT_BYTES,
};
pub use verify::{verify, verify_export, verify_sealed, Problem, VerifyReport};

/// Creates the `audit_entries` and `audit_probes` tables, their indexes and the append-only
/// triggers. Version 1; frozen once released, like every migration.
pub const SCHEMA_SQL: &str = include_str!("../schema.sql");
