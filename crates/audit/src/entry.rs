//! What one audit entry says: the vocabulary callers write and auditors read.

use crate::error::AuditError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What was done. Stored as its snake_case name, so adding an action needs no schema change;
/// `append` only accepts these, and readers refuse names they do not know.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Enrol,
    Identify,
    Verify,
    Search,
    ViewSighting,
    ViewAlert,
    Export,
    Delete,
    WatchlistAdd,
    WatchlistRemove,
    CaseOpen,
    CaseClose,
    UserCreate,
    UserChange,
    UserDelete,
    Login,
    LoginFailed,
    CameraAdd,
    CameraChange,
    CameraRemove,
    ConfigChange,
    AccessReport,
    ReviewAlert,
    RetentionPurge,
    /// An auditor acknowledged a misuse alert.
    MisuseReview,
    /// Someone looked at an enrolled face (a template's photo).
    ViewTemplate,
    /// A call refused because the caller's roles lack the route's permission (rate-limited:
    /// one entry per user, route and window, then one summary with the count).
    AccessRefused,
    /// Watching a camera's live picture (one entry per user and camera per window, then a
    /// summary with the count).
    ViewLive,
    /// An alert not raised because a reviewer already rejected the same person for the same
    /// subject ("not this person").
    AlertSuppressed,
}

impl AuditAction {
    /// Every action, in declaration order.
    pub const ALL: &'static [AuditAction] = &[
        AuditAction::Enrol,
        AuditAction::Identify,
        AuditAction::Verify,
        AuditAction::Search,
        AuditAction::ViewSighting,
        AuditAction::ViewAlert,
        AuditAction::Export,
        AuditAction::Delete,
        AuditAction::WatchlistAdd,
        AuditAction::WatchlistRemove,
        AuditAction::CaseOpen,
        AuditAction::CaseClose,
        AuditAction::UserCreate,
        AuditAction::UserChange,
        AuditAction::UserDelete,
        AuditAction::Login,
        AuditAction::LoginFailed,
        AuditAction::CameraAdd,
        AuditAction::CameraChange,
        AuditAction::CameraRemove,
        AuditAction::ConfigChange,
        AuditAction::AccessReport,
        AuditAction::ReviewAlert,
        AuditAction::RetentionPurge,
        AuditAction::MisuseReview,
        AuditAction::ViewTemplate,
        AuditAction::AccessRefused,
        AuditAction::ViewLive,
        AuditAction::AlertSuppressed,
    ];

    /// The stable name stored in the database and hashed into the entry.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Enrol => "enrol",
            AuditAction::Identify => "identify",
            AuditAction::Verify => "verify",
            AuditAction::Search => "search",
            AuditAction::ViewSighting => "view_sighting",
            AuditAction::ViewAlert => "view_alert",
            AuditAction::Export => "export",
            AuditAction::Delete => "delete",
            AuditAction::WatchlistAdd => "watchlist_add",
            AuditAction::WatchlistRemove => "watchlist_remove",
            AuditAction::CaseOpen => "case_open",
            AuditAction::CaseClose => "case_close",
            AuditAction::UserCreate => "user_create",
            AuditAction::UserChange => "user_change",
            AuditAction::UserDelete => "user_delete",
            AuditAction::Login => "login",
            AuditAction::LoginFailed => "login_failed",
            AuditAction::CameraAdd => "camera_add",
            AuditAction::CameraChange => "camera_change",
            AuditAction::CameraRemove => "camera_remove",
            AuditAction::ConfigChange => "config_change",
            AuditAction::AccessReport => "access_report",
            AuditAction::ReviewAlert => "review_alert",
            AuditAction::RetentionPurge => "retention_purge",
            AuditAction::MisuseReview => "misuse_review",
            AuditAction::ViewTemplate => "view_template",
            AuditAction::AccessRefused => "access_refused",
            AuditAction::ViewLive => "view_live",
            AuditAction::AlertSuppressed => "alert_suppressed",
        }
    }

    /// Whether the action touches biometric data (the operations issue 5 names), as opposed to
    /// an administrative change.
    pub fn is_biometric(self) -> bool {
        matches!(
            self,
            AuditAction::Enrol
                | AuditAction::Identify
                | AuditAction::Verify
                | AuditAction::Search
                | AuditAction::ViewSighting
                | AuditAction::ViewAlert
                | AuditAction::ViewTemplate
                | AuditAction::Export
                | AuditAction::Delete
        )
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for AuditAction {
    type Err = AuditError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        AuditAction::ALL
            .iter()
            .copied()
            .find(|action| action.as_str() == name)
            .ok_or_else(|| AuditError::UnknownAction(name.to_owned()))
    }
}

/// Who did it. The name is recorded as it was at the time, since users can be renamed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    /// The user's id; `None` where there is none, e.g. a failed login with an unknown name.
    pub user_id: Option<String>,
    pub user_name: String,
}

/// What it was done to, e.g. kind `subject` and id `42`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Target {
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    Success,
    /// Not carried out by policy: missing permission, reason or case reference.
    Refused,
    /// Attempted and failed, e.g. no usable face in the probe.
    Failed,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Success => "success",
            OutcomeKind::Refused => "refused",
            OutcomeKind::Failed => "failed",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        [
            OutcomeKind::Success,
            OutcomeKind::Refused,
            OutcomeKind::Failed,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Outcome {
    pub kind: OutcomeKind,
    /// Free text, e.g. "3 candidates" or the refusal reason; may be empty.
    pub detail: String,
}

impl Outcome {
    pub fn success(detail: impl Into<String>) -> Self {
        Outcome {
            kind: OutcomeKind::Success,
            detail: detail.into(),
        }
    }

    pub fn refused(detail: impl Into<String>) -> Self {
        Outcome {
            kind: OutcomeKind::Refused,
            detail: detail.into(),
        }
    }

    pub fn failed(detail: impl Into<String>) -> Self {
        Outcome {
            kind: OutcomeKind::Failed,
            detail: detail.into(),
        }
    }
}

/// An entry to append; the log adds the sequence number, time and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    pub actor: Actor,
    pub action: AuditAction,
    pub target: Target,
    pub case_ref: Option<String>,
    pub reason: String,
    /// A JSON object summarising the request: filters, thresholds, counts. Hashed in canonical
    /// form, so its key order does not matter.
    pub request: serde_json::Value,
    /// The probe image of a search, stored once per distinct sha256 in `audit_probes`; the entry
    /// records (and hashes) its sha256.
    pub probe_image: Option<Vec<u8>>,
    pub outcome: Outcome,
}

/// A SHA-256 digest, written as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntryHash(pub [u8; 32]);

/// In the API's document a hash is what it is on the wire: 64 lowercase hex characters.
impl utoipa::PartialSchema for EntryHash {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9a-f]{64}$"))
            .description(Some("SHA-256, 64 lowercase hex characters"))
            .into()
    }
}

impl utoipa::ToSchema for EntryHash {}

impl EntryHash {
    /// The `previous_hash` of entry 1: 32 zero bytes.
    pub const GENESIS: EntryHash = EntryHash([0; 32]);

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 64 lowercase hex characters; anything else is refused, so one hash has
    /// one spelling and a stored hash can be compared as text.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 || text.bytes().any(|byte| byte.is_ascii_uppercase()) {
            return None;
        }
        let mut bytes = [0; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(EntryHash(bytes))
    }
}

impl fmt::Display for EntryHash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_hex())
    }
}

impl fmt::Debug for EntryHash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "EntryHash({})", self.to_hex())
    }
}

impl Serialize for EntryHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for EntryHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        EntryHash::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("expected 64 lowercase hex characters"))
    }
}

/// The last entry of a chain: publishing it outside the database makes a later truncation or
/// rewrite of everything up to it detectable. An empty chain's head is sequence 0, `GENESIS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainHead {
    pub sequence: u64,
    pub hash: EntryHash,
}

/// One stored entry, as `append` returns it and `entries` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub sequence: u64,
    pub at_ms: i64,
    pub actor: Actor,
    pub action: AuditAction,
    pub target: Target,
    pub case_ref: Option<String>,
    pub reason: String,
    pub request: serde_json::Value,
    /// Lowercase hex sha256 of the probe image, if the request had one.
    pub probe_sha256: Option<String>,
    pub outcome: Outcome,
    pub previous_hash: EntryHash,
    pub entry_hash: EntryHash,
}

impl AuditRecord {
    pub fn head(&self) -> ChainHead {
        ChainHead {
            sequence: self.sequence,
            hash: self.entry_hash,
        }
    }
}
