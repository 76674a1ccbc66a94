//! vigil-auth: users, roles, credentials and access decisions.
//!
//! - [`access`]: the roles, the permissions and the fixed table between them; `allows`.
//! - [`UserDirectory`]: users, argon2id passwords, API tokens, login with throttling, sessions,
//!   over the `auth_*` tables of any SQLite connection ([`SCHEMA_SQL`]).
//! - [`UserDatabase`]: a directory with its own connection, for tests and tools.
//!
//! The HTTP layer authenticates each request (`authenticate_token` / `authenticate_session`),
//! then asks `Principal::require(permission)` for the one permission its route needs.

pub mod access;
mod clock;
mod database;
mod directory;
mod error;
mod password;
mod secret;
mod throttle;

pub use access::{allows, Permission, Role, SEPARATED_ROLES};
pub use clock::{Clock, ManualClock, SystemClock};
pub use database::UserDatabase;
pub use directory::{
    AuthOptions, Bootstrap, Credential, IssuedToken, LoginAttempt, Principal, Session,
    SessionPolicy, TokenId, TokenView, UserDirectory, UserId, UserView, MAX_USER_NAME_CHARS,
};
pub use error::AuthError;
pub use password::{
    check_password_policy, PasswordHashing, MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS,
};
pub use secret::{SESSION_PREFIX, TOKEN_PREFIX};
pub use throttle::ThrottlePolicy;

/// The `auth_*` tables. The store includes this as one of its versioned migrations. Once a
/// release has shipped it, this text is frozen like any migration: later changes go into a new
/// constant applied by a new migration.
pub const SCHEMA_SQL: &str = include_str!("../sql/auth_schema.sql");

/// Creates the `auth_*` tables where they do not exist yet (the statements are
/// `IF NOT EXISTS`); for connections that are not managed by the store's migrations.
pub fn create_schema(connection: &rusqlite::Connection) -> Result<(), AuthError> {
    connection.execute_batch(SCHEMA_SQL)?;
    Ok(())
}
