//! Metadata persistence behind a trait: embedded SQLite (WAL) with versioned migrations.
//!
//! `FaceStore` is the seam; `SqliteStore` the embedded implementation; `conformance` the suite
//! every implementation must pass. Schema and invariants: `docs/design/002-store-schema.md`.

pub mod conformance;
mod error;
mod face_store;
mod records;
mod sqlite;
mod stored_embedding;
mod video_store;

pub use error::StoreError;
pub use face_store::FaceStore;
pub use records::{
    normalise_notes, normalise_subject_name, validate_new_template, Enrolment, EnrolmentReceipt,
    NewTemplate, Subject, SubjectRef, SubjectSummary, TemplateInfo, TemplateRecord,
    MAX_SUBJECT_NAME_CHARS,
};
pub use sqlite::{
    is_off_hours, local_day_start, MisuseAlert, MisuseRule, UserSearchActivity,
    DEFAULT_EVIDENCE_RETENTION_DAYS,
};
pub use sqlite::{
    ActiveWatchEntry, AlertRecord, AlertReview, AlertState, Case, ColumnSealing, NewAlert, NewCase,
    NewWatchEntry, RejectedAlert, ResealProgress, ReviewDecision, SqliteStore, WatchEntry,
    Watchlist, CONFIRMATIONS_NEEDED, LATEST_SCHEMA_VERSION,
};
pub use video_store::{
    NewSegment, NewSighting, SegmentRecord, SightingCandidate, SightingEmbedding, SightingId,
    SightingQuery, SightingRecord, TrajectoryPoint, VideoStore,
};
