//! What the directory hands out: ids, views without secrets, principals, issued secrets.

use crate::access::{allows, Permission, Role};
use crate::error::AuthError;
use serde::{Deserialize, Serialize};
use std::fmt;

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
#[serde(transparent)]
pub struct UserId(pub i64);

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
#[serde(transparent)]
pub struct TokenId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// A user as the API shows it: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: UserId,
    pub name: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub disabled: bool,
    /// Whether the user can log in with a password (otherwise tokens only).
    pub has_password: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// An API token as listed: never the secret nor its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: TokenId,
    pub user_id: UserId,
    pub name: String,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

/// A newly issued token: the only time its secret exists outside the caller's hands.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub token: TokenView,
    /// `vgl_…`; shown once, then only its SHA-256 is kept.
    pub secret: String,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("IssuedToken")
            .field("token", &self.token)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A web UI session created by a login.
#[derive(Clone)]
pub struct Session {
    /// `vgs_…`; goes into the cookie (HttpOnly, Secure, SameSite=Strict) and nowhere else.
    pub secret: String,
    pub principal: Principal,
    /// The absolute end; the idle timeout may end it sooner.
    pub expires_at_ms: i64,
}

impl fmt::Debug for Session {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Session")
            .field("secret", &"<redacted>")
            .field("principal", &self.principal)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// How a principal proved who it is; the audit log records it with each action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Credential {
    Token {
        id: TokenId,
    },
    Session,
    /// The CLI on the server itself, acting as a named user (whoever can run it can read the
    /// database anyway).
    Local,
}

/// An authenticated user, with the roles read at authentication time: a role change or a
/// disabled account takes effect on the very next request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub user_id: UserId,
    pub name: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub credential: Credential,
}

impl Principal {
    pub fn allows(&self, permission: Permission) -> bool {
        allows(&self.roles, permission)
    }

    /// `Forbidden` unless one of the principal's roles grants `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), AuthError> {
        if self.allows(permission) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!(
                "{} may not {permission:?}",
                self.name
            )))
        }
    }
}

/// What `ensure_admin` did at start-up.
#[derive(Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// An enabled admin already exists; nothing was changed.
    AdminExists,
    /// The admin was created. `generated_password` is set when none was given: print it once.
    Created {
        user: UserView,
        generated_password: Option<String>,
    },
}

impl fmt::Debug for Bootstrap {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bootstrap::AdminExists => formatter.write_str("AdminExists"),
            Bootstrap::Created {
                user,
                generated_password,
            } => formatter
                .debug_struct("Created")
                .field("user", user)
                .field(
                    "generated_password",
                    &generated_password.as_ref().map(|_| "<redacted>"),
                )
                .finish(),
        }
    }
}
