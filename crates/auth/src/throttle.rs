//! Brute-force throttling of logins, per user name and per client address.
//!
//! Failures are counted in a sliding window. From the `max_failures`-th failure on, every further
//! failure locks the key for `base_lockout × 2^(failures − max_failures)`, capped at
//! `max_lockout`, counted from the latest failure. While a key is locked, logins are refused
//! before the password is looked at, so neither the answer nor its timing says anything about
//! the password. Refused attempts are not recorded: the lockout depends only on real guesses.

use crate::clock::duration_ms;
use crate::error::AuthError;
use rusqlite::{params, Connection};
use std::net::IpAddr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures older than this are forgotten.
    pub window: Duration,
    /// Failures for one user name (known or not) before it is locked.
    pub max_failures_per_user: u32,
    /// Failures from one client address, across all user names, before it is locked. Higher than
    /// per user: many people may share an office's address.
    pub max_failures_per_client: u32,
    /// The first lockout; each further failure doubles it.
    pub base_lockout: Duration,
    pub max_lockout: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60 * 60),
            max_failures_per_user: 5,
            max_failures_per_client: 20,
            base_lockout: Duration::from_secs(1),
            max_lockout: Duration::from_secs(15 * 60),
        }
    }
}

/// The key an address is throttled under: IPv4 as is (also when IPv4-mapped), IPv6 reduced to its
/// /64, since one subscriber usually holds a whole /64 and could otherwise rotate addresses.
pub(crate) fn client_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let segments = v6.segments();
                format!(
                    "{:x}:{:x}:{:x}:{:x}::/64",
                    segments[0], segments[1], segments[2], segments[3]
                )
            }
        },
    }
}

/// Forgets attempts that fell out of the window.
pub(crate) fn prune(
    connection: &Connection,
    policy: &ThrottlePolicy,
    now_ms: i64,
) -> Result<(), AuthError> {
    connection
        .prepare_cached("DELETE FROM auth_login_attempts WHERE at_ms <= ?1")?
        .execute([now_ms.saturating_sub(duration_ms(policy.window))])?;
    Ok(())
}

#[derive(Clone, Copy)]
enum Key {
    UserName,
    Client,
}

/// How long `key` stays locked from `now_ms`, if it is.
fn lockout_remaining(
    connection: &Connection,
    policy: &ThrottlePolicy,
    column: Key,
    key: &str,
    now_ms: i64,
) -> Result<Option<Duration>, AuthError> {
    let (sql, max_failures) = match column {
        Key::UserName => (
            "SELECT count(*), max(at_ms) FROM auth_login_attempts \
             WHERE user_name = ?1 AND succeeded = 0 AND at_ms > ?2",
            policy.max_failures_per_user,
        ),
        Key::Client => (
            "SELECT count(*), max(at_ms) FROM auth_login_attempts \
             WHERE client_ip = ?1 AND succeeded = 0 AND at_ms > ?2",
            policy.max_failures_per_client,
        ),
    };
    let since_ms = now_ms.saturating_sub(duration_ms(policy.window));
    let (failures, latest_ms): (i64, Option<i64>) = connection
        .prepare_cached(sql)?
        .query_row(params![key, since_ms], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let Some(latest_ms) = latest_ms else {
        return Ok(None);
    };
    let over = failures - i64::from(max_failures);
    if over < 0 {
        return Ok(None);
    }
    // 2^over overflows long before the cap matters; beyond 2^20 the cap has been reached anyway.
    let factor = 1u32 << over.min(20);
    let lockout = policy
        .base_lockout
        .saturating_mul(factor)
        .min(policy.max_lockout);
    let locked_until_ms = latest_ms.saturating_add(duration_ms(lockout));
    Ok((now_ms < locked_until_ms).then(|| {
        Duration::from_millis(u64::try_from(locked_until_ms.saturating_sub(now_ms)).unwrap_or(0))
    }))
}

/// `Throttled` with the longer of the two remaining lockouts, if either key is locked.
pub(crate) fn check(
    connection: &Connection,
    policy: &ThrottlePolicy,
    user_name: &str,
    client: &str,
    now_ms: i64,
) -> Result<(), AuthError> {
    let by_user = lockout_remaining(connection, policy, Key::UserName, user_name, now_ms)?;
    let by_client = lockout_remaining(connection, policy, Key::Client, client, now_ms)?;
    match by_user.max(by_client) {
        Some(retry_after) => Err(AuthError::Throttled { retry_after }),
        None => Ok(()),
    }
}

/// Records an attempt as failed *before* the password is checked, so that parallel guesses see
/// each other; `succeeded` turns it around. Returns the row id.
pub(crate) fn record_attempt(
    connection: &Connection,
    user_name: &str,
    client: &str,
    now_ms: i64,
) -> Result<i64, AuthError> {
    connection
        .prepare_cached(
            "INSERT INTO auth_login_attempts (user_name, client_ip, at_ms, succeeded) \
             VALUES (?1, ?2, ?3, 0)",
        )?
        .execute(params![user_name, client, now_ms])?;
    Ok(connection.last_insert_rowid())
}

/// Marks the attempt as a success and forgets the user name's failures. The client's failures
/// stay: otherwise an attacker holding one valid account could reset their address's count by
/// logging into it between guesses at others.
pub(crate) fn succeeded(
    connection: &Connection,
    attempt_id: i64,
    user_name: &str,
) -> Result<(), AuthError> {
    connection
        .prepare_cached("UPDATE auth_login_attempts SET succeeded = 1 WHERE id = ?1")?
        .execute([attempt_id])?;
    connection
        .prepare_cached("DELETE FROM auth_login_attempts WHERE user_name = ?1 AND succeeded = 0")?
        .execute([user_name])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_keys_group_ipv6_by_64_and_unmap_ipv4() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(client_key(v4), "192.0.2.7");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7");
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_eq!(client_key(a), "2001:db8:1:2::/64");
    }
}
