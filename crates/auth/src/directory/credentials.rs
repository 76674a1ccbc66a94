//! API tokens, logins and web UI sessions.

use super::{
    atomically, end_sessions_of, find_user_by_id, principal_of, Credential, IssuedToken, Principal,
    Session, TokenId, TokenView, UserDirectory, UserId, MAX_USER_NAME_CHARS,
};
use crate::clock::duration_ms;
use crate::error::AuthError;
use crate::password::MAX_PASSWORD_BYTES;
use crate::secret::{has_secret_shape, new_secret, secret_sha256, SESSION_PREFIX, TOKEN_PREFIX};
use crate::throttle;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::net::IpAddr;
use std::time::Duration;

/// `last_used_at_ms` / `last_seen_at_ms` are rewritten only when this much older, so that a busy
/// client does not turn every read request into a database write.
const LAST_USE_GRANULARITY_MS: i64 = 60_000;
const MAX_TOKEN_NAME_CHARS: usize = 100;

const TOKEN_COLUMNS: &str =
    "id, user_id, name, created_at_ms, expires_at_ms, last_used_at_ms, revoked_at_ms";

/// Runs a bookkeeping write that authentication does not depend on (last use, an expired
/// session's removal). When it cannot be written (a full disk, a locked database) the caller is
/// still answered on what was read: a full disk must not lock every user out. Logged instead.
fn best_effort(connection: &Connection, sql: &str, values: impl rusqlite::Params, what: &str) {
    let written = connection
        .prepare_cached(sql)
        .and_then(|mut statement| statement.execute(values));
    if let Err(error) = written {
        tracing::warn!(%error, "cannot record {what}; authentication goes on without it");
    }
}

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<TokenView> {
    Ok(TokenView {
        id: TokenId(row.get(0)?),
        user_id: UserId(row.get(1)?),
        name: row.get(2)?,
        created_at_ms: row.get(3)?,
        expires_at_ms: row.get(4)?,
        last_used_at_ms: row.get(5)?,
        revoked_at_ms: row.get(6)?,
    })
}

impl UserDirectory {
    /// Issues an API token for `user`, valid for `ttl` (`None`: until revoked). The secret is in
    /// the result and nowhere else; the database keeps its SHA-256.
    pub fn issue_token(
        &self,
        connection: &Connection,
        user: UserId,
        name: &str,
        ttl: Option<Duration>,
    ) -> Result<IssuedToken, AuthError> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_TOKEN_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(AuthError::Invalid(format!(
                "a token name is 1 to {MAX_TOKEN_NAME_CHARS} characters, without control characters"
            )));
        }
        if ttl.is_some_and(|ttl| ttl.is_zero()) {
            return Err(AuthError::Invalid(
                "a token lifetime must be positive".into(),
            ));
        }
        self.get_user(connection, user)?;
        let now_ms = self.now_ms();
        let expires_at_ms = ttl.map(|ttl| now_ms.saturating_add(duration_ms(ttl)));
        let secret = new_secret(TOKEN_PREFIX)?;
        connection
            .prepare_cached(
                "INSERT INTO auth_tokens (user_id, name, secret_sha256, created_at_ms, expires_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                user.0,
                name,
                secret_sha256(&secret),
                now_ms,
                expires_at_ms
            ])?;
        Ok(IssuedToken {
            token: TokenView {
                id: TokenId(connection.last_insert_rowid()),
                user_id: user,
                name: name.to_owned(),
                created_at_ms: now_ms,
                expires_at_ms,
                last_used_at_ms: None,
                revoked_at_ms: None,
            },
            secret,
        })
    }

    /// The user's tokens, newest first, revoked and expired ones included (they explain past
    /// audit entries).
    pub fn list_tokens(
        &self,
        connection: &Connection,
        user: UserId,
    ) -> Result<Vec<TokenView>, AuthError> {
        self.get_user(connection, user)?;
        let sql =
            format!("SELECT {TOKEN_COLUMNS} FROM auth_tokens WHERE user_id = ?1 ORDER BY id DESC");
        let mut statement = connection.prepare_cached(&sql)?;
        let tokens = statement
            .query_map([user.0], token_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(tokens)
    }

    /// Revokes one of `user`'s tokens; revoking it again changes nothing. `NotFound` if the token
    /// is not theirs, so one user cannot probe another's token ids.
    pub fn revoke_token(
        &self,
        connection: &Connection,
        user: UserId,
        token: TokenId,
    ) -> Result<(), AuthError> {
        let now_ms = self.now_ms();
        let changed = connection
            .prepare_cached(
                "UPDATE auth_tokens SET revoked_at_ms = coalesce(revoked_at_ms, ?3) \
                 WHERE id = ?1 AND user_id = ?2",
            )?
            .execute(params![token.0, user.0, now_ms])?;
        if changed == 0 {
            return Err(AuthError::NotFound(format!(
                "user {user} has no token with id {token}"
            )));
        }
        Ok(())
    }

    /// The principal behind an API token (`Authorization: Bearer vgl_…`). Unknown, malformed,
    /// revoked and expired tokens and disabled users are all `Unauthenticated`.
    pub fn authenticate_token(
        &self,
        connection: &Connection,
        secret: &str,
    ) -> Result<Principal, AuthError> {
        if !has_secret_shape(secret, TOKEN_PREFIX) {
            return Err(AuthError::Unauthenticated);
        }
        let now_ms = self.now_ms();
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM auth_tokens WHERE secret_sha256 = ?1");
        let token = connection
            .prepare_cached(&sql)?
            .query_row([secret_sha256(secret)], token_from_row)
            .optional()?
            .ok_or(AuthError::Unauthenticated)?;
        if token.revoked_at_ms.is_some()
            || token.expires_at_ms.is_some_and(|expires| now_ms >= expires)
        {
            return Err(AuthError::Unauthenticated);
        }
        let user = find_user_by_id(connection, token.user_id)?
            .filter(|user| !user.disabled)
            .ok_or(AuthError::Unauthenticated)?;
        if token
            .last_used_at_ms
            .is_none_or(|last| now_ms.saturating_sub(last) >= LAST_USE_GRANULARITY_MS)
        {
            best_effort(
                connection,
                "UPDATE auth_tokens SET last_used_at_ms = ?2 WHERE id = ?1",
                params![token.id.0, now_ms],
                "a token's last use",
            );
        }
        Ok(principal_of(user, Credential::Token { id: token.id }))
    }

    /// Password login for the web UI, throttled per user name and per client address: the
    /// three steps of [`UserDirectory::begin_login`], [`LoginAttempt::password_matches`] and
    /// [`UserDirectory::finish_login`] on one connection. A server runs the middle step (argon2,
    /// deliberately slow) without holding the connection, so a flood of logins cannot stall
    /// every other request behind the store.
    pub fn login(
        &self,
        connection: &Connection,
        name: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<Session, AuthError> {
        let attempt = self.begin_login(connection, name, client)?;
        let matches = attempt.password_matches(self, password);
        self.finish_login(connection, attempt, matches, password)
    }

    /// First step of a login: throttling (a locked name or address gives `Throttled` without
    /// any verification), the attempt recorded, and the account read.
    pub fn begin_login(
        &self,
        connection: &Connection,
        name: &str,
        client: IpAddr,
    ) -> Result<LoginAttempt, AuthError> {
        let now_ms = self.now_ms();
        // Any submitted name is a throttling key, existing or not, so throttling behaves the same
        // for both. Truncated so that a huge name cannot bloat the table, to one character more
        // than a valid name has, so that a too-long name never locks the valid name it begins with.
        let name_key: String = name
            .trim()
            .to_ascii_lowercase()
            .chars()
            .take(MAX_USER_NAME_CHARS + 1)
            .collect();
        let client_key = throttle::client_key(client);
        let policy = &self.options.throttle;

        let attempt_id = atomically(connection, || {
            throttle::prune(connection, policy, now_ms)?;
            throttle::check(connection, policy, &name_key, &client_key, now_ms)?;
            throttle::record_attempt(connection, &name_key, &client_key, now_ms)
        })?;

        let account: Option<(i64, Option<String>, bool)> = connection
            .prepare_cached("SELECT id, password_hash, disabled FROM auth_users WHERE name = ?1")?
            .query_row([&name_key], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?;
        Ok(LoginAttempt {
            attempt_id,
            name_key,
            account,
        })
    }

    /// Last step of a login: a session when the password matched an enabled account with a
    /// password, `Unauthenticated` otherwise. A wrong password, an unknown user, a disabled user
    /// and a token-only user all give the same answer after one argon2 verification each
    /// (against a dummy hash where there is no real one), so neither the answer nor its timing
    /// tells which.
    pub fn finish_login(
        &self,
        connection: &Connection,
        attempt: LoginAttempt,
        password_matches: bool,
        password: &str,
    ) -> Result<Session, AuthError> {
        let user_id = match &attempt.account {
            Some((id, Some(_), false)) if password_matches => UserId(*id),
            _ => return Err(AuthError::Unauthenticated),
        };
        let stored_hash = attempt.stored_hash(self).to_string();
        let now_ms = self.now_ms();
        let secret = new_secret(SESSION_PREFIX)?;
        let expires_at_ms = now_ms.saturating_add(duration_ms(self.options.sessions.lifetime));
        let hashing = self.options.hashing;
        let principal = atomically(connection, || {
            throttle::succeeded(connection, attempt.attempt_id, &attempt.name_key)?;
            connection
                .prepare_cached(
                    "INSERT INTO auth_sessions \
                     (secret_sha256, user_id, created_at_ms, expires_at_ms, last_seen_at_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?3)",
                )?
                .execute(params![
                    secret_sha256(&secret),
                    user_id.0,
                    now_ms,
                    expires_at_ms
                ])?;
            if hashing.is_outdated(&stored_hash) {
                // The hashing parameters were raised since this password was set: upgrade it now,
                // the only moment the plain password is at hand.
                connection
                    .prepare_cached("UPDATE auth_users SET password_hash = ?2 WHERE id = ?1")?
                    .execute(params![user_id.0, hashing.hash(password)?])?;
            }
            let user = self.get_user(connection, user_id)?;
            Ok(principal_of(user, Credential::Session))
        })?;
        Ok(Session {
            secret,
            principal,
            expires_at_ms,
        })
    }

    /// The principal behind a session cookie. Ends (deletes) the session when it has expired or
    /// been idle too long, and refreshes its idle timer otherwise.
    pub fn authenticate_session(
        &self,
        connection: &Connection,
        secret: &str,
    ) -> Result<Principal, AuthError> {
        if !has_secret_shape(secret, SESSION_PREFIX) {
            return Err(AuthError::Unauthenticated);
        }
        let now_ms = self.now_ms();
        let secret_hash = secret_sha256(secret);
        let found: Option<(i64, i64, i64)> = connection
            .prepare_cached(
                "SELECT user_id, expires_at_ms, last_seen_at_ms FROM auth_sessions \
                 WHERE secret_sha256 = ?1",
            )?
            .query_row([&secret_hash], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?;
        let Some((user_id, expires_at_ms, last_seen_at_ms)) = found else {
            return Err(AuthError::Unauthenticated);
        };
        let idle_timeout_ms = duration_ms(self.options.sessions.idle_timeout);
        if now_ms >= expires_at_ms || now_ms.saturating_sub(last_seen_at_ms) >= idle_timeout_ms {
            // Refused either way; a session left behind is purged later with the expired ones.
            best_effort(
                connection,
                "DELETE FROM auth_sessions WHERE secret_sha256 = ?1",
                params![secret_hash],
                "an expired session",
            );
            return Err(AuthError::Unauthenticated);
        }
        let user = find_user_by_id(connection, UserId(user_id))?
            .filter(|user| !user.disabled)
            .ok_or(AuthError::Unauthenticated)?;
        if now_ms.saturating_sub(last_seen_at_ms) >= LAST_USE_GRANULARITY_MS {
            best_effort(
                connection,
                "UPDATE auth_sessions SET last_seen_at_ms = ?2 WHERE secret_sha256 = ?1",
                params![secret_hash, now_ms],
                "a session's last use",
            );
        }
        Ok(principal_of(user, Credential::Session))
    }

    /// Ends the session; ending an unknown or already ended one is not an error (logout must
    /// always succeed from the user's point of view).
    pub fn logout(&self, connection: &Connection, secret: &str) -> Result<(), AuthError> {
        if has_secret_shape(secret, SESSION_PREFIX) {
            connection
                .prepare_cached("DELETE FROM auth_sessions WHERE secret_sha256 = ?1")?
                .execute([secret_sha256(secret)])?;
        }
        Ok(())
    }

    /// Ends all of `user`'s sessions ("log out everywhere").
    pub fn end_sessions(&self, connection: &Connection, user: UserId) -> Result<(), AuthError> {
        end_sessions_of(connection, user)
    }

    /// Deletes expired and idle sessions and login attempts outside the throttling window; for a
    /// periodic housekeeping task (lookups already refuse them, this only reclaims the rows).
    pub fn prune_expired(&self, connection: &Connection) -> Result<(), AuthError> {
        let now_ms = self.now_ms();
        let idle_timeout_ms = duration_ms(self.options.sessions.idle_timeout);
        atomically(connection, || {
            connection
                .prepare_cached(
                    "DELETE FROM auth_sessions WHERE expires_at_ms <= ?1 OR last_seen_at_ms <= ?2",
                )?
                .execute(params![now_ms, now_ms.saturating_sub(idle_timeout_ms)])?;
            throttle::prune(connection, &self.options.throttle, now_ms)
        })
    }
}

/// A login between its first and last step: the attempt is recorded, the account read.
#[derive(Debug)]
pub struct LoginAttempt {
    attempt_id: i64,
    name_key: String,
    /// Id, password hash and disabled flag of the named account, if it exists.
    account: Option<(i64, Option<String>, bool)>,
}

impl LoginAttempt {
    fn stored_hash<'a>(&'a self, directory: &'a UserDirectory) -> &'a str {
        self.account
            .as_ref()
            .and_then(|(_, hash, _)| hash.as_deref())
            .unwrap_or(&directory.dummy_hash)
    }

    /// The argon2 verification: needs no connection, so a server runs it without holding one.
    pub fn password_matches(&self, directory: &UserDirectory, password: &str) -> bool {
        // Too long to be anyone's password (the policy refuses them): verify something bounded
        // instead, so the time spent stays the same.
        let candidate = if password.len() > MAX_PASSWORD_BYTES {
            ""
        } else {
            password
        };
        directory
            .options
            .hashing
            .verify(candidate, self.stored_hash(directory))
            && password.len() <= MAX_PASSWORD_BYTES
    }
}
