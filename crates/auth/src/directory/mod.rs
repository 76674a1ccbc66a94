//! `UserDirectory`: users and their credentials in the `auth_*` tables of any SQLite connection.
//!
//! Every operation takes the connection as an argument, so the store can keep these tables in its
//! own database file (behind its own lock) and `UserDatabase` can own one for tests and tools.
//! Operations of several statements run in a SAVEPOINT, which works both inside and outside a
//! transaction the caller may hold.

mod credentials;
pub use credentials::LoginAttempt;
mod types;

pub use types::{
    Bootstrap, Credential, IssuedToken, Principal, Session, TokenId, TokenView, UserId, UserView,
};

use crate::access::{normalise_roles, roles_from_column, roles_to_column, Role};
use crate::clock::{Clock, SystemClock};
use crate::error::{is_unique_violation, AuthError};
use crate::password::{check_password_policy, PasswordHashing};
use crate::throttle::ThrottlePolicy;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::sync::Arc;
use std::time::Duration;

/// The longest user name; also the throttling key's length for arbitrary submitted names.
pub const MAX_USER_NAME_CHARS: usize = 64;
const MAX_DISPLAY_NAME_CHARS: usize = 100;

/// How long a web UI session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// The absolute lifetime from login, however active the session.
    pub lifetime: Duration,
    /// A session unused this long ends.
    pub idle_timeout: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(12 * 60 * 60),
            idle_timeout: Duration::from_secs(60 * 60),
        }
    }
}

/// Everything about the directory that is policy rather than data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthOptions {
    pub hashing: PasswordHashing,
    pub sessions: SessionPolicy,
    pub throttle: ThrottlePolicy,
}

impl AuthOptions {
    /// Production policies with the cheapest argon2id, so a test suite can create many users.
    pub fn for_tests() -> Self {
        Self {
            hashing: PasswordHashing::INSECURE_FAST_FOR_TESTS,
            ..Self::default()
        }
    }
}

/// Users, roles and credentials over the `auth_*` tables (see `SCHEMA_SQL`).
pub struct UserDirectory {
    options: AuthOptions,
    clock: Arc<dyn Clock>,
    /// A hash of a random password made with the current parameters: logins for unknown users
    /// are checked against it, so they take as long as logins for known ones.
    dummy_hash: String,
}

impl UserDirectory {
    pub fn new(options: AuthOptions) -> Result<Self, AuthError> {
        Self::with_clock(options, Arc::new(SystemClock))
    }

    pub fn with_clock(options: AuthOptions, clock: Arc<dyn Clock>) -> Result<Self, AuthError> {
        let dummy_password = crate::secret::generated_password()?;
        let dummy_hash = options.hashing.hash(&dummy_password)?;
        Ok(Self {
            options,
            clock,
            dummy_hash,
        })
    }

    pub fn options(&self) -> &AuthOptions {
        &self.options
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Creates a user. `password` is checked against the policy and stored as argon2id; `None`
    /// makes a token-only user (a service account, the CLI's user).
    pub fn create_user(
        &self,
        connection: &Connection,
        name: &str,
        display_name: &str,
        roles: &[Role],
        password: Option<&str>,
    ) -> Result<UserView, AuthError> {
        let name = normalise_user_name(name)?;
        let display_name = normalise_display_name(display_name, &name)?;
        let roles = normalise_roles(roles)?;
        let password_hash = match password {
            Some(password) => {
                check_password_policy(&name, password)?;
                Some(self.options.hashing.hash(password)?)
            }
            None => None,
        };
        let now_ms = self.now_ms();
        connection
            .prepare_cached(
                "INSERT INTO auth_users \
                 (name, display_name, roles, password_hash, disabled, created_at_ms, updated_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
            )?
            .execute(params![
                name,
                display_name,
                roles_to_column(&roles),
                password_hash,
                now_ms
            ])
            .map_err(|error| {
                if is_unique_violation(&error) {
                    AuthError::Conflict(format!("a user named {name:?} already exists"))
                } else {
                    error.into()
                }
            })?;
        Ok(UserView {
            id: UserId(connection.last_insert_rowid()),
            name,
            display_name,
            roles,
            disabled: false,
            has_password: password_hash.is_some(),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        })
    }

    pub fn get_user(&self, connection: &Connection, id: UserId) -> Result<UserView, AuthError> {
        find_user_by_id(connection, id)?
            .ok_or_else(|| AuthError::NotFound(format!("no user with id {id}")))
    }

    /// The user with this name (normalised as at creation), if any.
    pub fn find_user(
        &self,
        connection: &Connection,
        name: &str,
    ) -> Result<Option<UserView>, AuthError> {
        let name = name.trim().to_ascii_lowercase();
        let sql = format!("SELECT {USER_COLUMNS} FROM auth_users WHERE name = ?1");
        connection
            .prepare_cached(&sql)?
            .query_row([name], user_from_row)
            .optional()?
            .transpose()
    }

    /// All users, by name.
    pub fn list_users(&self, connection: &Connection) -> Result<Vec<UserView>, AuthError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM auth_users ORDER BY name");
        let mut statement = connection.prepare_cached(&sql)?;
        let rows = statement.query_map([], user_from_row)?;
        let mut users = Vec::new();
        for row in rows {
            users.push(row??);
        }
        Ok(users)
    }

    /// Sets (or with `None` removes) the user's password, and ends their sessions: whoever knew
    /// the old password is logged out. API tokens are separate credentials and stay.
    pub fn set_password(
        &self,
        connection: &Connection,
        id: UserId,
        password: Option<&str>,
    ) -> Result<(), AuthError> {
        let user = self.get_user(connection, id)?;
        let password_hash = match password {
            Some(password) => {
                check_password_policy(&user.name, password)?;
                Some(self.options.hashing.hash(password)?)
            }
            None => None,
        };
        let now_ms = self.now_ms();
        atomically(connection, || {
            connection
                .prepare_cached(
                    "UPDATE auth_users SET password_hash = ?2, updated_at_ms = ?3 WHERE id = ?1",
                )?
                .execute(params![id.0, password_hash, now_ms])?;
            end_sessions_of(connection, id)
        })
    }

    /// Replaces the user's roles. Takes effect on their next request (principals are built from
    /// the row each time). Refuses to take admin away from the last enabled admin.
    pub fn set_roles(
        &self,
        connection: &Connection,
        id: UserId,
        roles: &[Role],
    ) -> Result<UserView, AuthError> {
        let roles = normalise_roles(roles)?;
        let now_ms = self.now_ms();
        atomically(connection, || {
            let user = self.get_user(connection, id)?;
            if !roles.contains(&Role::Admin) {
                refuse_removing_last_admin(connection, &user)?;
            }
            connection
                .prepare_cached(
                    "UPDATE auth_users SET roles = ?2, updated_at_ms = ?3 WHERE id = ?1",
                )?
                .execute(params![id.0, roles_to_column(&roles), now_ms])?;
            self.get_user(connection, id)
        })
    }

    /// Disables or re-enables the user. A disabled user's tokens and logins are refused and their
    /// sessions end at once; nothing is deleted, so re-enabling restores their tokens.
    pub fn set_disabled(
        &self,
        connection: &Connection,
        id: UserId,
        disabled: bool,
    ) -> Result<UserView, AuthError> {
        let now_ms = self.now_ms();
        atomically(connection, || {
            let user = self.get_user(connection, id)?;
            if disabled {
                refuse_removing_last_admin(connection, &user)?;
                end_sessions_of(connection, id)?;
            }
            connection
                .prepare_cached(
                    "UPDATE auth_users SET disabled = ?2, updated_at_ms = ?3 WHERE id = ?1",
                )?
                .execute(params![id.0, disabled, now_ms])?;
            self.get_user(connection, id)
        })
    }

    /// Deletes the user with their tokens and sessions. Refuses to delete the last enabled admin.
    pub fn delete_user(&self, connection: &Connection, id: UserId) -> Result<(), AuthError> {
        atomically(connection, || {
            let user = self.get_user(connection, id)?;
            refuse_removing_last_admin(connection, &user)?;
            // Explicit rather than relying on ON DELETE CASCADE, which needs `foreign_keys = ON`
            // on whichever connection the caller hands in.
            connection.execute("DELETE FROM auth_sessions WHERE user_id = ?1", [id.0])?;
            connection.execute("DELETE FROM auth_tokens WHERE user_id = ?1", [id.0])?;
            connection.execute("DELETE FROM auth_users WHERE id = ?1", [id.0])?;
            Ok(())
        })
    }

    /// The principal the CLI acts as: an existing, enabled user, named on the command line.
    pub fn local_principal(
        &self,
        connection: &Connection,
        name: &str,
    ) -> Result<Principal, AuthError> {
        let user = self
            .find_user(connection, name)?
            .ok_or_else(|| AuthError::NotFound(format!("no user named {:?}", name.trim())))?;
        if user.disabled {
            return Err(AuthError::Unauthenticated);
        }
        Ok(principal_of(user, Credential::Local))
    }

    /// First start: unless an enabled admin exists, creates `name` as admin with `password`, or
    /// with a generated one that is returned to be shown once.
    pub fn ensure_admin(
        &self,
        connection: &Connection,
        name: &str,
        password: Option<&str>,
    ) -> Result<Bootstrap, AuthError> {
        atomically(connection, || {
            if enabled_admin_count(connection)? > 0 {
                return Ok(Bootstrap::AdminExists);
            }
            let generated_password = match password {
                Some(_) => None,
                None => Some(crate::secret::generated_password()?),
            };
            let password = password.or(generated_password.as_deref());
            let user = self.create_user(connection, name, "", &[Role::Admin], password)?;
            Ok(Bootstrap::Created {
                user,
                generated_password,
            })
        })
    }
}

/// Runs `operation` in a SAVEPOINT: all of its writes or none.
fn atomically<T>(
    connection: &Connection,
    operation: impl FnOnce() -> Result<T, AuthError>,
) -> Result<T, AuthError> {
    connection.execute_batch("SAVEPOINT vigil_auth")?;
    let result = operation().and_then(|value| {
        connection.execute_batch("RELEASE vigil_auth")?;
        Ok(value)
    });
    if result.is_err() {
        // The operation's error is the one worth reporting; a failing rollback of a savepoint
        // that still exists leaves SQLite to roll back when the connection's transaction ends.
        let _ = connection.execute_batch("ROLLBACK TO vigil_auth; RELEASE vigil_auth");
    }
    result
}

/// Lowercase ASCII letters, digits, '.', '_', '-'; starting with a letter or digit; at most 64.
/// Lowercased so that "Alice" and "alice" cannot be two people.
pub(crate) fn normalise_user_name(name: &str) -> Result<String, AuthError> {
    let name = name.trim().to_ascii_lowercase();
    let valid_start = name
        .bytes()
        .next()
        .is_some_and(|byte| byte.is_ascii_alphanumeric());
    let valid_bytes = name
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    if !valid_start || !valid_bytes || name.len() > MAX_USER_NAME_CHARS {
        return Err(AuthError::Invalid(format!(
            "a user name is 1 to {MAX_USER_NAME_CHARS} letters, digits, '.', '_' or '-', \
             starting with a letter or digit; got {name:?}"
        )));
    }
    Ok(name)
}

fn normalise_display_name(display_name: &str, name: &str) -> Result<String, AuthError> {
    let display_name = display_name.trim();
    if display_name.is_empty() {
        return Ok(name.to_owned());
    }
    if display_name.chars().count() > MAX_DISPLAY_NAME_CHARS
        || display_name.chars().any(char::is_control)
    {
        return Err(AuthError::Invalid(format!(
            "a display name is at most {MAX_DISPLAY_NAME_CHARS} characters, without control \
             characters"
        )));
    }
    Ok(display_name.to_owned())
}

const USER_COLUMNS: &str = "id, name, display_name, roles, password_hash IS NOT NULL, disabled, \
                            created_at_ms, updated_at_ms";

/// The outer error is SQLite's, the inner one a row this build cannot read (an unknown role).
fn user_from_row(row: &Row<'_>) -> rusqlite::Result<Result<UserView, AuthError>> {
    let roles: String = row.get(3)?;
    let roles = match roles_from_column(&roles) {
        Ok(roles) => roles,
        Err(error) => return Ok(Err(error)),
    };
    Ok(Ok(UserView {
        id: UserId(row.get(0)?),
        name: row.get(1)?,
        display_name: row.get(2)?,
        roles,
        has_password: row.get(4)?,
        disabled: row.get(5)?,
        created_at_ms: row.get(6)?,
        updated_at_ms: row.get(7)?,
    }))
}

fn find_user_by_id(connection: &Connection, id: UserId) -> Result<Option<UserView>, AuthError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM auth_users WHERE id = ?1");
    connection
        .prepare_cached(&sql)?
        .query_row([id.0], user_from_row)
        .optional()?
        .transpose()
}

fn principal_of(user: UserView, credential: Credential) -> Principal {
    Principal {
        user_id: user.id,
        name: user.name,
        display_name: user.display_name,
        roles: user.roles,
        credential,
    }
}

const HOLDS_ADMIN: &str = "(',' || roles || ',') LIKE '%,admin,%'";

fn enabled_admin_count(connection: &Connection) -> Result<i64, AuthError> {
    let sql = format!("SELECT count(*) FROM auth_users WHERE disabled = 0 AND {HOLDS_ADMIN}");
    Ok(connection.query_row(&sql, [], |row| row.get(0))?)
}

/// `Conflict` if `user` is the only enabled admin: without one, nobody could manage users.
fn refuse_removing_last_admin(connection: &Connection, user: &UserView) -> Result<(), AuthError> {
    if !user.disabled && user.roles.contains(&Role::Admin) && enabled_admin_count(connection)? <= 1
    {
        return Err(AuthError::Conflict(format!(
            "{} is the last enabled admin",
            user.name
        )));
    }
    Ok(())
}

fn end_sessions_of(connection: &Connection, user: UserId) -> Result<(), AuthError> {
    connection
        .prepare_cached("DELETE FROM auth_sessions WHERE user_id = ?1")?
        .execute([user.0])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unknown users are verified against the dummy hash; it must cost what a real one costs.
    #[test]
    fn dummy_hash_is_made_with_the_current_parameters() {
        for hashing in [
            PasswordHashing::INSECURE_FAST_FOR_TESTS,
            PasswordHashing {
                memory_kib: 64,
                iterations: 3,
                parallelism: 1,
            },
        ] {
            let options = AuthOptions {
                hashing,
                ..AuthOptions::default()
            };
            let directory = UserDirectory::new(options).unwrap();
            assert!(!hashing.is_outdated(&directory.dummy_hash));
        }
    }

    #[test]
    fn user_names_are_normalised_and_checked() {
        assert_eq!(normalise_user_name(" Alice.B-2_ ").unwrap(), "alice.b-2_");
        for bad in [
            "",
            "-alice",
            "a b",
            "älice",
            "alice@example",
            &"a".repeat(65),
        ] {
            assert!(normalise_user_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(normalise_display_name("  ", "alice").unwrap(), "alice");
        assert!(normalise_display_name("a\u{7}b", "alice").is_err());
    }
}
