//! A `UserDirectory` with a SQLite connection of its own: for tests, tools, and deployments that
//! keep users in a separate file. The server embeds the tables in the store's database instead.

use crate::access::Role;
use crate::directory::{
    Bootstrap, IssuedToken, Principal, Session, TokenId, TokenView, UserDirectory, UserId, UserView,
};
use crate::error::AuthError;
use parking_lot::Mutex;
use rusqlite::Connection;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

pub struct UserDatabase {
    directory: UserDirectory,
    connection: Mutex<Connection>,
}

/// Each method locks the connection and calls the `UserDirectory` method of the same name.
macro_rules! delegate {
    ($( fn $name:ident(&self $(, $argument:ident: $type:ty)*) -> $result:ty; )*) => {
        $(
            pub fn $name(&self $(, $argument: $type)*) -> $result {
                self.directory.$name(&self.connection.lock() $(, $argument)*)
            }
        )*
    };
}

impl UserDatabase {
    /// Opens (creating if needed) the database file at `path` and creates the `auth_*` tables.
    pub fn open(path: impl AsRef<Path>, directory: UserDirectory) -> Result<Self, AuthError> {
        let path = path.as_ref();
        let connection = Connection::open(path).map_err(|error| {
            AuthError::Database(format!("cannot open {}: {error}", path.display()))
        })?;
        // WAL: the server reads sessions on every request while logins write.
        let _: String =
            connection.pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))?;
        Self::configure(connection, directory)
    }

    /// A private database that vanishes when dropped.
    pub fn open_in_memory(directory: UserDirectory) -> Result<Self, AuthError> {
        Self::configure(Connection::open_in_memory()?, directory)
    }

    fn configure(connection: Connection, directory: UserDirectory) -> Result<Self, AuthError> {
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(Duration::from_secs(5))?;
        crate::create_schema(&connection)?;
        Ok(Self {
            directory,
            connection: Mutex::new(connection),
        })
    }

    pub fn directory(&self) -> &UserDirectory {
        &self.directory
    }

    /// Runs `operation` with the connection locked; for what the delegates below do not cover.
    pub fn with_connection<T>(&self, operation: impl FnOnce(&Connection) -> T) -> T {
        operation(&self.connection.lock())
    }

    delegate! {
        fn create_user(&self, name: &str, display_name: &str, roles: &[Role], password: Option<&str>) -> Result<UserView, AuthError>;
        fn get_user(&self, id: UserId) -> Result<UserView, AuthError>;
        fn find_user(&self, name: &str) -> Result<Option<UserView>, AuthError>;
        fn list_users(&self) -> Result<Vec<UserView>, AuthError>;
        fn set_password(&self, id: UserId, password: Option<&str>) -> Result<(), AuthError>;
        fn set_roles(&self, id: UserId, roles: &[Role]) -> Result<UserView, AuthError>;
        fn set_disabled(&self, id: UserId, disabled: bool) -> Result<UserView, AuthError>;
        fn delete_user(&self, id: UserId) -> Result<(), AuthError>;
        fn local_principal(&self, name: &str) -> Result<Principal, AuthError>;
        fn ensure_admin(&self, name: &str, password: Option<&str>) -> Result<Bootstrap, AuthError>;
        fn issue_token(&self, user: UserId, name: &str, ttl: Option<Duration>) -> Result<IssuedToken, AuthError>;
        fn list_tokens(&self, user: UserId) -> Result<Vec<TokenView>, AuthError>;
        fn revoke_token(&self, user: UserId, token: TokenId) -> Result<(), AuthError>;
        fn authenticate_token(&self, secret: &str) -> Result<Principal, AuthError>;
        fn login(&self, name: &str, password: &str, client: IpAddr) -> Result<Session, AuthError>;
        fn authenticate_session(&self, secret: &str) -> Result<Principal, AuthError>;
        fn logout(&self, secret: &str) -> Result<(), AuthError>;
        fn end_sessions(&self, user: UserId) -> Result<(), AuthError>;
        fn prune_expired(&self) -> Result<(), AuthError>;
    }
}
