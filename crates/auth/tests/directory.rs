//! The directory end to end on an in-memory (and one on-disk) SQLite database, with a manual
//! clock so that expiry and lockouts are tested without sleeping.

use rusqlite::Connection;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use vigil_auth::{
    AuthError, AuthOptions, Bootstrap, Clock, Credential, ManualClock, PasswordHashing, Permission,
    Role, UserDatabase, UserDirectory, UserId, SCHEMA_SQL,
};

const START_MS: i64 = 1_700_000_000_000;
const PASSWORD: &str = "correct horse battery";

fn directory_with(options: AuthOptions) -> (UserDatabase, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(START_MS));
    let directory = UserDirectory::with_clock(options, clock.clone()).unwrap();
    (UserDatabase::open_in_memory(directory).unwrap(), clock)
}

fn directory() -> (UserDatabase, Arc<ManualClock>) {
    directory_with(AuthOptions::for_tests())
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn user(database: &UserDatabase, name: &str, roles: &[Role]) -> UserId {
    database
        .create_user(name, "", roles, Some(PASSWORD))
        .unwrap()
        .id
}

/// A login with a wrong password, which must fail as `Unauthenticated` (not throttled).
fn fail_login(database: &UserDatabase, name: &str, client: IpAddr) {
    let result = database.login(name, "wrong password!", client);
    assert!(
        matches!(result, Err(AuthError::Unauthenticated)),
        "{name}: {result:?}"
    );
}

fn is_unauthenticated<T: std::fmt::Debug>(result: Result<T, AuthError>) -> bool {
    matches!(result, Err(AuthError::Unauthenticated))
}

fn retry_after<T: std::fmt::Debug>(result: Result<T, AuthError>) -> Duration {
    match result {
        Err(AuthError::Throttled { retry_after }) => retry_after,
        other => panic!("expected Throttled, got {other:?}"),
    }
}

#[test]
fn schema_tables_are_all_prefixed_auth_and_creating_twice_is_harmless() {
    let connection = Connection::open_in_memory().unwrap();
    connection.execute_batch(SCHEMA_SQL).unwrap();
    vigil_auth::create_schema(&connection).unwrap();
    let mut statement = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    let tables: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        tables,
        [
            "auth_login_attempts",
            "auth_sessions",
            "auth_tokens",
            "auth_users"
        ]
    );
}

#[test]
fn directory_works_on_a_connection_it_does_not_own() {
    let connection = Connection::open_in_memory().unwrap();
    vigil_auth::create_schema(&connection).unwrap();
    let directory = UserDirectory::new(AuthOptions::for_tests()).unwrap();
    let alice = directory
        .create_user(&connection, "alice", "Alice", &[Role::Investigator], None)
        .unwrap();
    let issued = directory
        .issue_token(&connection, alice.id, "laptop", None)
        .unwrap();
    let principal = directory
        .authenticate_token(&connection, &issued.secret)
        .unwrap();
    assert_eq!(principal.name, "alice");
    // also inside a transaction the caller holds (the operations use savepoints)
    let transaction = connection.unchecked_transaction().unwrap();
    directory
        .set_roles(&transaction, alice.id, &[Role::Reviewer])
        .unwrap();
    transaction.rollback().unwrap();
    assert_eq!(
        directory.get_user(&connection, alice.id).unwrap().roles,
        [Role::Investigator]
    );
}

#[test]
fn users_are_created_listed_and_names_are_unique_case_insensitively() {
    let (database, _) = directory();
    let alice = database
        .create_user(
            "  Alice ",
            "Alice Example",
            &[Role::Reviewer, Role::Operator],
            Some(PASSWORD),
        )
        .unwrap();
    assert_eq!(alice.name, "alice");
    assert_eq!(alice.roles, [Role::Operator, Role::Reviewer]);
    assert!(alice.has_password && !alice.disabled);
    assert!(matches!(
        database.create_user("ALICE", "", &[Role::Auditor], None),
        Err(AuthError::Conflict(_))
    ));
    assert!(matches!(
        database.create_user("bob smith", "", &[Role::Auditor], None),
        Err(AuthError::Invalid(_))
    ));
    assert!(matches!(
        database.create_user("bob", "", &[], None),
        Err(AuthError::Invalid(_))
    ));
    let bob = database
        .create_user("bob", "", &[Role::Auditor], None)
        .unwrap();
    assert_eq!(bob.display_name, "bob");
    assert!(!bob.has_password);
    let names: Vec<_> = database
        .list_users()
        .unwrap()
        .into_iter()
        .map(|user| user.name)
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(database.find_user("Bob").unwrap().unwrap().id, bob.id);
    assert!(matches!(
        database.get_user(UserId(999)),
        Err(AuthError::NotFound(_))
    ));
    // the API's view carries no hash
    let json = serde_json::to_string(&alice).unwrap();
    assert!(!json.contains("argon2"), "{json}");
}

#[test]
fn password_is_stored_as_argon2id_and_a_wrong_one_is_refused() {
    let (database, _) = directory();
    let alice = user(&database, "alice", &[Role::Operator]);
    let stored: String = database.with_connection(|connection| {
        connection
            .query_row(
                "SELECT password_hash FROM auth_users WHERE id = ?1",
                [alice.0],
                |row| row.get(0),
            )
            .unwrap()
    });
    assert!(stored.starts_with("$argon2id$v=19$"), "{stored}");
    assert!(!stored.contains(PASSWORD));
    let session = database.login("alice", PASSWORD, ip("192.0.2.1")).unwrap();
    assert_eq!(session.principal.user_id, alice);
    assert!(is_unauthenticated(database.login(
        "alice",
        "correct horse batterY",
        ip("192.0.2.1")
    )));
}

#[test]
fn weak_passwords_are_refused_at_creation_and_change() {
    let (database, _) = directory();
    assert!(matches!(
        database.create_user("alice", "", &[Role::Operator], Some("too short")),
        Err(AuthError::Invalid(_))
    ));
    let alice = user(&database, "alice", &[Role::Operator]);
    assert!(matches!(
        database.set_password(alice, Some("elevenchars")),
        Err(AuthError::Invalid(_))
    ));
    database
        .set_password(alice, Some("a much longer one"))
        .unwrap();
    assert!(database
        .login("alice", "a much longer one", ip("192.0.2.1"))
        .is_ok());
}

#[test]
fn token_authenticates_until_revoked() {
    let (database, _) = directory();
    let alice = user(&database, "alice", &[Role::Investigator]);
    let issued = database.issue_token(alice, "cli", None).unwrap();
    assert!(issued.secret.starts_with("vgl_"));
    assert_eq!(issued.secret.len(), 4 + 43);
    let principal = database.authenticate_token(&issued.secret).unwrap();
    assert_eq!(principal.user_id, alice);
    assert_eq!(principal.roles, [Role::Investigator]);
    assert_eq!(
        principal.credential,
        Credential::Token {
            id: issued.token.id
        }
    );
    database.revoke_token(alice, issued.token.id).unwrap();
    assert!(is_unauthenticated(
        database.authenticate_token(&issued.secret)
    ));
    let listed = database.list_tokens(alice).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked_at_ms.is_some());
    assert!(listed[0].last_used_at_ms.is_some());
    // garbage and near-misses never authenticate
    assert!(is_unauthenticated(database.authenticate_token("")));
    assert!(is_unauthenticated(database.authenticate_token("vgl_x")));
    let mut altered = issued.secret.clone();
    altered.pop();
    altered.push('A');
    assert!(is_unauthenticated(database.authenticate_token(&altered)));
    // a session secret is not a token
    let session = database.login("alice", PASSWORD, ip("192.0.2.1")).unwrap();
    assert!(is_unauthenticated(
        database.authenticate_token(&session.secret)
    ));
    assert!(is_unauthenticated(
        database.authenticate_session(&issued.secret)
    ));
}

#[test]
fn a_user_cannot_revoke_another_users_token() {
    let (database, _) = directory();
    let alice = user(&database, "alice", &[Role::Investigator]);
    let bob = user(&database, "bob", &[Role::Investigator]);
    let issued = database.issue_token(alice, "cli", None).unwrap();
    assert!(matches!(
        database.revoke_token(bob, issued.token.id),
        Err(AuthError::NotFound(_))
    ));
    assert!(database.authenticate_token(&issued.secret).is_ok());
}

#[test]
fn expired_token_is_refused() {
    let (database, clock) = directory();
    let alice = user(&database, "alice", &[Role::Operator]);
    let issued = database
        .issue_token(alice, "short-lived", Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(issued.token.expires_at_ms, Some(START_MS + 60_000));
    clock.advance(Duration::from_secs(59));
    assert!(database.authenticate_token(&issued.secret).is_ok());
    clock.advance(Duration::from_secs(1));
    assert!(is_unauthenticated(
        database.authenticate_token(&issued.secret)
    ));
    assert!(matches!(
        database.issue_token(alice, "zero", Some(Duration::ZERO)),
        Err(AuthError::Invalid(_))
    ));
}

#[test]
fn token_is_stored_only_as_its_sha256() {
    let (database, _) = directory();
    let alice = user(&database, "alice", &[Role::Operator]);
    let issued = database.issue_token(alice, "cli", None).unwrap();
    let row: Vec<String> = database.with_connection(|connection| {
        connection
            .query_row(
                "SELECT id, user_id, name, secret_sha256, created_at_ms, \
                 coalesce(expires_at_ms, ''), coalesce(last_used_at_ms, ''), \
                 coalesce(revoked_at_ms, '') FROM auth_tokens",
                [],
                |row| {
                    (0..8)
                        .map(|column| row.get::<_, rusqlite::types::Value>(column))
                        .map(|value| value.map(|value| format!("{value:?}")))
                        .collect()
                },
            )
            .unwrap()
    });
    let body = &issued.secret[4..];
    assert!(row.iter().all(|column| !column.contains(body)), "{row:?}");
    let expected = hex::encode(Sha256::digest(issued.secret.as_bytes()));
    assert!(row[3].contains(&expected), "{row:?}");
    // and Debug never prints it
    assert!(!format!("{issued:?}").contains(body));
}

#[test]
fn session_lives_from_login_to_logout() {
    let (database, _) = directory();
    let alice = user(&database, "alice", &[Role::Reviewer]);
    let session = database.login("Alice", PASSWORD, ip("192.0.2.1")).unwrap();
    assert!(session.secret.starts_with("vgs_"));
    assert!(!format!("{session:?}").contains(&session.secret[4..]));
    let principal = database.authenticate_session(&session.secret).unwrap();
    assert_eq!(principal.user_id, alice);
    assert_eq!(principal.credential, Credential::Session);
    database.logout(&session.secret).unwrap();
    assert!(is_unauthenticated(
        database.authenticate_session(&session.secret)
    ));
    database.logout(&session.secret).unwrap();
}

#[test]
fn session_ends_when_idle_and_at_its_absolute_lifetime() {
    let (database, clock) = directory();
    user(&database, "alice", &[Role::Reviewer]);
    let idle = database.login("alice", PASSWORD, ip("192.0.2.1")).unwrap();
    // used every 50 minutes it stays alive ...
    for _ in 0..3 {
        clock.advance(Duration::from_secs(50 * 60));
        database.authenticate_session(&idle.secret).unwrap();
    }
    // ... an hour without use ends it, and it stays ended
    clock.advance(Duration::from_secs(60 * 60));
    assert!(is_unauthenticated(
        database.authenticate_session(&idle.secret)
    ));
    clock.advance(Duration::from_secs(1));
    assert!(is_unauthenticated(
        database.authenticate_session(&idle.secret)
    ));

    let busy = database.login("alice", PASSWORD, ip("192.0.2.1")).unwrap();
    assert_eq!(busy.expires_at_ms, clock.now_ms() + 12 * 60 * 60 * 1000);
    for _ in 0..(12 * 2 - 1) {
        clock.advance(Duration::from_secs(30 * 60));
        database.authenticate_session(&busy.secret).unwrap();
    }
    clock.advance(Duration::from_secs(30 * 60));
    assert!(is_unauthenticated(
        database.authenticate_session(&busy.secret)
    ));
}

#[test]
fn disabled_user_is_refused_for_tokens_sessions_and_login() {
    let (database, _) = directory();
    user(&database, "root", &[Role::Admin]);
    let alice = user(&database, "alice", &[Role::Operator]);
    let issued = database.issue_token(alice, "cli", None).unwrap();
    let session = database.login("alice", PASSWORD, ip("192.0.2.1")).unwrap();
    database.set_disabled(alice, true).unwrap();
    assert!(is_unauthenticated(
        database.authenticate_token(&issued.secret)
    ));
    assert!(is_unauthenticated(
        database.authenticate_session(&session.secret)
    ));
    assert!(is_unauthenticated(database.login(
        "alice",
        PASSWORD,
        ip("192.0.2.1")
    )));
    assert!(is_unauthenticated(database.local_principal("alice")));
    // re-enabling restores the token, not the ended session
    database.set_disabled(alice, false).unwrap();
    assert!(database.authenticate_token(&issued.secret).is_ok());
    assert!(is_unauthenticated(
        database.authenticate_session(&session.secret)
    ));
}

#[test]
fn changing_the_password_ends_sessions_but_keeps_tokens() {
    let (database, _) = directory();
    let alice = user(&database, "alice", &[Role::Operator]);
    let issued = database.issue_token(alice, "cli", None).unwrap();
    let session = database.login("alice", PASSWORD, ip("192.0.2.1")).unwrap();
    database
        .set_password(alice, Some("another long password"))
        .unwrap();
    assert!(is_unauthenticated(
        database.authenticate_session(&session.secret)
    ));
    assert!(database.authenticate_token(&issued.secret).is_ok());
    assert!(is_unauthenticated(database.login(
        "alice",
        PASSWORD,
        ip("192.0.2.1")
    )));
    // a token-only user cannot log in with any password
    database.set_password(alice, None).unwrap();
    assert!(is_unauthenticated(database.login(
        "alice",
        "another long password",
        ip("192.0.2.1")
    )));
}

#[test]
fn role_changes_apply_to_the_next_request() {
    let (database, _) = directory();
    let alice = user(&database, "alice", &[Role::Operator]);
    let issued = database.issue_token(alice, "cli", None).unwrap();
    let principal = database.authenticate_token(&issued.secret).unwrap();
    assert!(principal.require(Permission::ViewSightings).is_ok());
    assert!(matches!(
        principal.require(Permission::Search),
        Err(AuthError::Forbidden(_))
    ));
    database
        .set_roles(alice, &[Role::Operator, Role::Investigator])
        .unwrap();
    let principal = database.authenticate_token(&issued.secret).unwrap();
    assert!(principal.require(Permission::Search).is_ok());
}

#[test]
fn the_last_enabled_admin_cannot_be_removed() {
    let (database, _) = directory();
    let root = user(&database, "root", &[Role::Admin]);
    assert!(matches!(
        database.set_roles(root, &[Role::Auditor]),
        Err(AuthError::Conflict(_))
    ));
    assert!(matches!(
        database.set_disabled(root, true),
        Err(AuthError::Conflict(_))
    ));
    assert!(matches!(
        database.delete_user(root),
        Err(AuthError::Conflict(_))
    ));
    let second = user(&database, "second", &[Role::Admin, Role::Auditor]);
    database.delete_user(root).unwrap();
    assert!(matches!(
        database.get_user(root),
        Err(AuthError::NotFound(_))
    ));
    assert!(matches!(
        database.set_roles(second, &[Role::Auditor]),
        Err(AuthError::Conflict(_))
    ));
}

#[test]
fn deleting_a_user_deletes_their_credentials() {
    let (database, _) = directory();
    let alice = user(&database, "alice", &[Role::Operator]);
    let issued = database.issue_token(alice, "cli", None).unwrap();
    let session = database.login("alice", PASSWORD, ip("192.0.2.1")).unwrap();
    database.delete_user(alice).unwrap();
    assert!(is_unauthenticated(
        database.authenticate_token(&issued.secret)
    ));
    assert!(is_unauthenticated(
        database.authenticate_session(&session.secret)
    ));
    let remaining: i64 = database.with_connection(|connection| {
        connection
            .query_row(
                "SELECT (SELECT count(*) FROM auth_tokens) + (SELECT count(*) FROM auth_sessions)",
                [],
                |row| row.get(0),
            )
            .unwrap()
    });
    assert_eq!(remaining, 0);
}

#[test]
fn five_failures_lock_out_even_the_right_password() {
    let (database, clock) = directory();
    user(&database, "alice", &[Role::Operator]);
    let client = ip("192.0.2.1");
    for _ in 0..4 {
        fail_login(&database, "alice", client);
    }
    // four failures do not lock
    fail_login(&database, "alice", client);
    // the fifth did: the right password is refused without being checked
    assert_eq!(
        retry_after(database.login("alice", PASSWORD, client)),
        Duration::from_secs(1)
    );
    assert_eq!(
        retry_after(database.login("alice", PASSWORD, ip("198.51.100.9"))),
        Duration::from_secs(1)
    );
    clock.advance(Duration::from_millis(999));
    assert!(retry_after(database.login("alice", PASSWORD, client)) <= Duration::from_millis(1));
    clock.advance(Duration::from_millis(1));
    assert!(database.login("alice", PASSWORD, client).is_ok());
    // success forgets the name's failures: one more failure does not lock
    fail_login(&database, "alice", client);
    assert!(database.login("alice", PASSWORD, client).is_ok());
}

#[test]
fn lockout_doubles_with_each_failure_and_is_capped() {
    let (database, clock) = directory();
    user(&database, "alice", &[Role::Operator]);
    let client = ip("192.0.2.1");
    for _ in 0..5 {
        fail_login(&database, "alice", client);
    }
    let mut expected = Duration::from_secs(1);
    for _ in 0..12 {
        let lockout = retry_after(database.login("alice", PASSWORD, client));
        assert_eq!(lockout, expected);
        clock.advance(lockout);
        fail_login(&database, "alice", client);
        expected = (expected * 2).min(Duration::from_secs(15 * 60));
    }
    assert_eq!(expected, Duration::from_secs(15 * 60));
    assert_eq!(
        retry_after(database.login("alice", PASSWORD, client)),
        Duration::from_secs(15 * 60)
    );
}

#[test]
fn failures_are_forgotten_after_the_window() {
    let (database, clock) = directory();
    user(&database, "alice", &[Role::Operator]);
    let client = ip("192.0.2.1");
    for _ in 0..5 {
        fail_login(&database, "alice", client);
    }
    clock.advance(Duration::from_secs(60 * 60));
    // one more failure is the first of a new window, not the sixth
    fail_login(&database, "alice", client);
    assert!(database.login("alice", PASSWORD, client).is_ok());
}

#[test]
fn one_address_is_throttled_across_user_names() {
    let (database, _) = directory();
    user(&database, "alice", &[Role::Operator]);
    let attacker = ip("203.0.113.5");
    for attempt in 0..20 {
        let name = format!("guess{attempt}");
        fail_login(&database, &name, attacker);
    }
    // the address is locked, for a name it never tried and with the right password
    assert!(matches!(
        database.login("alice", PASSWORD, attacker),
        Err(AuthError::Throttled { .. })
    ));
    // other addresses are not
    assert!(database.login("alice", PASSWORD, ip("192.0.2.1")).is_ok());
    // an IPv6 attacker cannot escape by rotating through their /64
    for attempt in 0..20 {
        let address = ip(&format!("2001:db8:7:7::{attempt:x}"));
        fail_login(&database, &format!("guess{attempt}"), address);
    }
    assert!(matches!(
        database.login("alice", PASSWORD, ip("2001:db8:7:7::ffff")),
        Err(AuthError::Throttled { .. })
    ));
}

#[test]
fn unknown_user_gets_the_same_answer_as_a_wrong_password() {
    let (database, _) = directory();
    user(&database, "alice", &[Role::Operator]);
    let client = ip("192.0.2.1");
    let wrong = database
        .login("alice", "wrong password!", client)
        .unwrap_err();
    let unknown = database
        .login("nobody", "wrong password!", client)
        .unwrap_err();
    assert_eq!(wrong.to_string(), unknown.to_string());
    assert!(matches!(unknown, AuthError::Unauthenticated));
    // and unknown names are throttled exactly like known ones
    for _ in 0..4 {
        fail_login(&database, "nobody", client);
    }
    assert_eq!(
        retry_after(database.login("nobody", "wrong password!", client)),
        Duration::from_secs(1)
    );
    // absurd input is just a failed login
    assert!(is_unauthenticated(database.login(
        &"x".repeat(10_000),
        &"y".repeat(100_000),
        ip("192.0.2.2")
    )));
}

#[test]
fn ensure_admin_creates_one_admin_once() {
    let (database, _) = directory();
    let created = database.ensure_admin("admin", None).unwrap();
    let Bootstrap::Created {
        user,
        generated_password: Some(password),
    } = created.clone()
    else {
        panic!("expected a generated password, got {created:?}");
    };
    assert!(!format!("{created:?}").contains(&password));
    assert_eq!(user.roles, [Role::Admin]);
    let session = database.login("admin", &password, ip("127.0.0.1")).unwrap();
    assert!(session.principal.require(Permission::ManageUsers).is_ok());
    assert!(session.principal.require(Permission::Search).is_err());
    assert_eq!(
        database.ensure_admin("admin", None).unwrap(),
        Bootstrap::AdminExists
    );
    assert_eq!(
        database.ensure_admin("other", Some(PASSWORD)).unwrap(),
        Bootstrap::AdminExists
    );

    let (database, _) = directory();
    let created = database.ensure_admin("root", Some(PASSWORD)).unwrap();
    assert!(matches!(
        created,
        Bootstrap::Created {
            generated_password: None,
            ..
        }
    ));
    assert!(database.login("root", PASSWORD, ip("127.0.0.1")).is_ok());
}

#[test]
fn cli_acts_as_a_named_user() {
    let (database, _) = directory();
    let alice = user(&database, "alice", &[Role::Auditor]);
    let principal = database.local_principal("Alice").unwrap();
    assert_eq!(principal.user_id, alice);
    assert_eq!(principal.credential, Credential::Local);
    assert!(principal.require(Permission::ReadAudit).is_ok());
    assert!(matches!(
        database.local_principal("nobody"),
        Err(AuthError::NotFound(_))
    ));
}

#[test]
fn outdated_password_hash_is_upgraded_at_login() {
    let (database, _) = directory();
    let alice = user(&database, "alice", &[Role::Operator]);
    let stronger = PasswordHashing {
        memory_kib: 64,
        iterations: 2,
        parallelism: 1,
    };
    let directory = UserDirectory::new(AuthOptions {
        hashing: stronger,
        ..AuthOptions::for_tests()
    })
    .unwrap();
    let stored = || {
        database.with_connection(|connection| {
            connection
                .query_row(
                    "SELECT password_hash FROM auth_users WHERE id = ?1",
                    [alice.0],
                    |row| row.get::<_, String>(0),
                )
                .unwrap()
        })
    };
    assert!(stored().contains("m=8,t=1,p=1"));
    database
        .with_connection(|connection| {
            directory.login(connection, "alice", PASSWORD, ip("192.0.2.1"))
        })
        .unwrap();
    assert!(stored().contains("m=64,t=2,p=1"), "{}", stored());
    assert!(database.login("alice", PASSWORD, ip("192.0.2.1")).is_ok());
}

#[test]
fn on_disk_database_keeps_users_across_reopening() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("users.sqlite");
    let secret = {
        let directory = UserDirectory::new(AuthOptions::for_tests()).unwrap();
        let database = UserDatabase::open(&path, directory).unwrap();
        let alice = user(&database, "alice", &[Role::Investigator]);
        database.issue_token(alice, "cli", None).unwrap().secret
    };
    let directory = UserDirectory::new(AuthOptions::for_tests()).unwrap();
    let database = UserDatabase::open(&path, directory).unwrap();
    assert_eq!(database.authenticate_token(&secret).unwrap().name, "alice");
    database.prune_expired().unwrap();
}

/// Issue 13 (disk full): the last-use bookkeeping is a write, and a database that takes no
/// writes (a full disk; here `query_only`, which refuses every write the same way) must not
/// turn into "nobody can sign in". Authentication answers on what it read, and the expired
/// session is still refused.
#[test]
fn authentication_goes_on_when_the_last_use_cannot_be_written() {
    let connection = Connection::open_in_memory().unwrap();
    vigil_auth::create_schema(&connection).unwrap();
    let clock = Arc::new(ManualClock::new(START_MS));
    let directory = UserDirectory::with_clock(AuthOptions::for_tests(), clock.clone()).unwrap();
    let alice = directory
        .create_user(
            &connection,
            "alice",
            "Alice",
            &[Role::Reviewer],
            Some(PASSWORD),
        )
        .unwrap();
    let issued = directory
        .issue_token(&connection, alice.id, "laptop", None)
        .unwrap();
    let session = directory
        .login(&connection, "alice", PASSWORD, ip("192.0.2.1"))
        .unwrap();
    let stale = directory
        .login(&connection, "alice", PASSWORD, ip("192.0.2.1"))
        .unwrap();
    directory
        .authenticate_token(&connection, &issued.secret)
        .unwrap();
    let last_used = |connection: &Connection| {
        directory.list_tokens(connection, alice.id).unwrap()[0].last_used_at_ms
    };
    assert_eq!(last_used(&connection), Some(START_MS));

    // Two minutes on, both would rewrite their last use; the database takes no writes.
    clock.advance(Duration::from_secs(120));
    directory
        .authenticate_session(&connection, &session.secret)
        .unwrap();
    connection.pragma_update(None, "query_only", true).unwrap();
    let by_token = directory
        .authenticate_token(&connection, &issued.secret)
        .unwrap();
    assert_eq!(by_token.user_id, alice.id);
    let by_session = directory
        .authenticate_session(&connection, &session.secret)
        .unwrap();
    assert_eq!(by_session.user_id, alice.id);
    // The write was skipped, not half-done.
    assert_eq!(last_used(&connection), Some(START_MS));
    // An idle session is refused as unauthenticated, not as a database fault, though its
    // removal cannot be written.
    clock.advance(Duration::from_secs(2 * 60 * 60));
    assert!(is_unauthenticated(
        directory.authenticate_session(&connection, &stale.secret)
    ));

    // Writes back: the bookkeeping resumes.
    connection.pragma_update(None, "query_only", false).unwrap();
    directory
        .authenticate_token(&connection, &issued.secret)
        .unwrap();
    assert_eq!(last_used(&connection), Some(clock.now_ms()));
}
