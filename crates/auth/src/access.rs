//! Roles, permissions and the fixed table between them (docs/design/009-access.md explains it).
//!
//! The table is code, not configuration: a deployment that wants one person to administer and
//! search gives that user both roles, which the user list (and the audit log) then shows.

use crate::error::AuthError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A job a user does. A user holds one or more.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Users, cameras, configuration, retention. No biometric search.
    Admin,
    /// Cameras and the live view: sightings and alerts as they happen.
    Operator,
    /// Confirms or rejects alerts.
    Reviewer,
    /// Retrospective search, identification, enrolment, watchlists, within their cases.
    Investigator,
    /// Reads the audit log and misuse alerts, produces subject access reports. No search.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Operator,
        Role::Reviewer,
        Role::Investigator,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Reviewer => "reviewer",
            Role::Investigator => "investigator",
            Role::Auditor => "auditor",
        }
    }

    /// What this role may do; the one place the table is written down.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Admin => &[
                ManageUsers,
                ManageCameras,
                ViewCameras,
                ManageConfiguration,
                ManageRetention,
                DeleteBiometric,
            ],
            Role::Operator => &[ViewCameras, ViewSightings, ViewAlerts, MonitorAllCameras],
            Role::Reviewer => &[ViewSightings, ViewAlerts, ReviewAlerts, MonitorAllCameras],
            Role::Investigator => &[
                ViewSightings,
                ViewAlerts,
                Search,
                Identify,
                Verify,
                Enrol,
                ManageWatchlists,
                ManageCases,
                Export,
                DeleteBiometric,
            ],
            Role::Auditor => &[ReadAudit, ViewMisuseAlerts, SubjectAccessReport],
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AuthError;

    fn from_str(text: &str) -> Result<Self, AuthError> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| AuthError::Invalid(format!("unknown role {text:?}")))
    }
}

/// One thing an endpoint needs. Each API route names exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Create, change, disable and delete users; issue and revoke other users' tokens.
    ManageUsers,
    /// Add, change and remove cameras.
    ManageCameras,
    /// See the camera list, their health and live video.
    ViewCameras,
    /// Change the running configuration (thresholds, models).
    ManageConfiguration,
    /// Set and apply retention periods.
    ManageRetention,
    /// See sightings (face crops from the cameras) as they are made.
    ViewSightings,
    /// See watchlist alerts.
    ViewAlerts,
    /// Confirm or reject an alert (never one's own: enforced by the review flow, not here).
    ReviewAlerts,
    /// Retrospective face search over recorded sightings.
    Search,
    /// 1:N identification of a photo against the enrolled gallery.
    Identify,
    /// 1:1 verification of two faces.
    Verify,
    /// Enrol a subject's face (within one's cases).
    Enrol,
    /// Add, change and remove watchlist entries.
    ManageWatchlists,
    /// Open, close and share cases.
    ManageCases,
    /// Export evidence (crops, clips, reports) out of the system.
    Export,
    /// Delete biometric data: a subject's templates, sightings (erasure requests, case closure).
    DeleteBiometric,
    /// Read the audit log.
    ReadAudit,
    /// See alerts raised about misuse of the system (unusual search volume, off-hours use).
    ViewMisuseAlerts,
    /// Produce the report of what the system holds about one person.
    SubjectAccessReport,
    /// See every camera's sightings and alerts, live (monitoring). Without it, a user who may
    /// view sightings or alerts sees only those of their own cases.
    MonitorAllCameras,
}

/// Whether any of `roles` grants `permission`.
pub fn allows(roles: &[Role], permission: Permission) -> bool {
    roles
        .iter()
        .any(|role| role.permissions().contains(&permission))
}

/// Sorted, without duplicates; at least one role. The form stored and shown.
/// Roles one account may not hold together (separation of duties), and why.
pub const SEPARATED_ROLES: &[(Role, Role, &str)] = &[
    (
        Role::Admin,
        Role::Investigator,
        "admins create users and cameras but cannot search; holding both undoes that",
    ),
    (
        Role::Admin,
        Role::Reviewer,
        "an admin creates accounts, so could also be the second reviewer an alert needs",
    ),
    (
        Role::Auditor,
        Role::Investigator,
        "an auditor would audit their own searches",
    ),
];

pub(crate) fn normalise_roles(roles: &[Role]) -> Result<Vec<Role>, AuthError> {
    let mut roles = roles.to_vec();
    roles.sort_unstable();
    roles.dedup();
    if roles.is_empty() {
        return Err(AuthError::Invalid("a user needs at least one role".into()));
    }
    if let Some((a, b, why)) = SEPARATED_ROLES
        .iter()
        .find(|(a, b, _)| roles.contains(a) && roles.contains(b))
    {
        return Err(AuthError::Invalid(format!(
            "one account cannot be both {a} and {b}: {why}; give them to two people"
        )));
    }
    Ok(roles)
}

/// The `auth_users.roles` column text.
pub(crate) fn roles_to_column(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|role| role.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn roles_from_column(text: &str) -> Result<Vec<Role>, AuthError> {
    let mut roles = Vec::new();
    for name in text.split(',').filter(|name| !name.is_empty()) {
        roles.push(name.parse::<Role>().map_err(|_| {
            AuthError::Database(format!("stored role {name:?} is not known to this build"))
        })?);
    }
    roles.sort_unstable();
    roles.dedup();
    Ok(roles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_cannot_search_identify_or_enrol() {
        for permission in [
            Permission::Search,
            Permission::Identify,
            Permission::Verify,
            Permission::Enrol,
        ] {
            assert!(!allows(&[Role::Admin], permission), "{permission:?}");
        }
        assert!(allows(&[Role::Admin], Permission::ManageUsers));
        assert!(allows(&[Role::Admin], Permission::ManageCameras));
    }

    #[test]
    fn auditor_cannot_search_but_reads_the_audit_log() {
        assert!(!allows(&[Role::Auditor], Permission::Search));
        assert!(!allows(&[Role::Auditor], Permission::Identify));
        assert!(allows(&[Role::Auditor], Permission::ReadAudit));
        assert!(allows(&[Role::Auditor], Permission::SubjectAccessReport));
    }

    #[test]
    fn investigator_searches_and_reviewer_reviews() {
        assert!(allows(&[Role::Investigator], Permission::Search));
        assert!(allows(&[Role::Investigator], Permission::Enrol));
        assert!(!allows(&[Role::Investigator], Permission::ReviewAlerts));
        assert!(allows(&[Role::Reviewer], Permission::ReviewAlerts));
        assert!(!allows(&[Role::Reviewer], Permission::Search));
        assert!(!allows(&[Role::Operator], Permission::ReviewAlerts));
    }

    #[test]
    fn only_investigators_search_and_only_auditors_read_the_audit_log() {
        for role in Role::ALL {
            assert_eq!(
                allows(&[role], Permission::Search),
                role == Role::Investigator
            );
            assert_eq!(
                allows(&[role], Permission::ReadAudit),
                role == Role::Auditor
            );
            assert_eq!(
                allows(&[role], Permission::ManageUsers),
                role == Role::Admin
            );
        }
    }

    #[test]
    fn several_roles_grant_the_union_and_no_roles_grant_nothing() {
        let both = [Role::Admin, Role::Investigator];
        assert!(allows(&both, Permission::Search));
        assert!(allows(&both, Permission::ManageUsers));
        assert!(!allows(&[], Permission::ViewAlerts));
    }

    #[test]
    fn roles_round_trip_through_the_column_and_serde() {
        let roles = normalise_roles(&[Role::Reviewer, Role::Auditor, Role::Reviewer]).unwrap();
        assert_eq!(roles, vec![Role::Reviewer, Role::Auditor]);
        assert_eq!(roles_to_column(&roles), "reviewer,auditor");
        assert_eq!(roles_from_column("reviewer,auditor").unwrap(), roles);
        assert!(roles_from_column("reviewer,superuser").is_err());
        assert!(normalise_roles(&[]).is_err());
        assert_eq!(
            serde_json::to_string(&roles).unwrap(),
            r#"["reviewer","auditor"]"#
        );
        assert_eq!("investigator".parse::<Role>().unwrap(), Role::Investigator);
    }
}
