//! Versioned schema migrations, tracked in `PRAGMA user_version`.
//!
//! Rules: a migration, once released, is never edited (databases in the field already ran it);
//! each runs in its own transaction together with the `user_version` bump, so a crash leaves the
//! database at a whole version; a database newer than `LATEST_SCHEMA_VERSION` is refused rather
//! than opened, because older code could silently break invariants it does not know about.

use crate::error::StoreError;
use rusqlite::{Connection, TransactionBehavior};

struct Migration {
    version: u32,
    name: &'static str,
    sql: &'static str,
}

/// In version order; `version` is the `user_version` after the migration has run.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "subjects_templates",
        sql: include_str!("../../migrations/0001_subjects_templates.sql"),
    },
    Migration {
        version: 2,
        name: "media_and_thumbnails",
        sql: include_str!("../../migrations/0002_media_and_thumbnails.sql"),
    },
    Migration {
        version: 3,
        name: "video",
        sql: include_str!("../../migrations/0003_video.sql"),
    },
    // The accountability tables are defined by the crates that own their invariants; their
    // schema constants are frozen once released, like any migration here.
    Migration {
        version: 4,
        name: "audit_log",
        sql: vigil_audit::SCHEMA_SQL,
    },
    Migration {
        version: 5,
        name: "users_and_credentials",
        sql: vigil_auth::SCHEMA_SQL,
    },
    Migration {
        version: 6,
        name: "cases",
        sql: include_str!("../../migrations/0006_cases.sql"),
    },
    Migration {
        version: 7,
        name: "watchlists_alerts",
        sql: include_str!("../../migrations/0007_watchlists_alerts.sql"),
    },
    Migration {
        version: 8,
        name: "webhooks",
        sql: vigil_notify::SCHEMA_SQL,
    },
    Migration {
        version: 9,
        name: "sealed_blobs",
        sql: include_str!("../../migrations/0009_sealed_blobs.sql"),
    },
    Migration {
        version: 10,
        name: "case_evidence_and_misuse",
        sql: include_str!("../../migrations/0010_case_evidence_and_misuse.sql"),
    },
    Migration {
        version: 11,
        name: "case_members_by_id",
        sql: include_str!("../../migrations/0011_case_members_by_id.sql"),
    },
    Migration {
        version: 12,
        name: "sealed_camera_settings",
        sql: include_str!("../../migrations/0012_sealed_camera_settings.sql"),
    },
    Migration {
        version: 13,
        name: "misuse_refusals",
        sql: include_str!("../../migrations/0013_misuse_refusals.sql"),
    },
];

/// The schema version this build writes.
pub const LATEST_SCHEMA_VERSION: u32 = 13;

pub(crate) fn schema_version(connection: &Connection) -> Result<u32, StoreError> {
    let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    u32::try_from(version)
        .map_err(|_| StoreError::Database(format!("user_version {version} is out of range")))
}

/// Brings the database up to `LATEST_SCHEMA_VERSION`, refusing one that is newer.
pub(crate) fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    migrate_to(connection, LATEST_SCHEMA_VERSION)
}

fn migrate_to(connection: &mut Connection, target_version: u32) -> Result<(), StoreError> {
    for migration in MIGRATIONS.iter().filter(|m| m.version <= target_version) {
        // IMMEDIATE takes the write lock before reading the version, so two processes opening
        // the same file cannot both apply one migration.
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = schema_version(&transaction)?;
        if found > LATEST_SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found,
                supported: LATEST_SCHEMA_VERSION,
            });
        }
        if found >= migration.version {
            continue;
        }
        let context = |error: rusqlite::Error| {
            StoreError::Migration(format!(
                "{:04}_{}: {error}",
                migration.version, migration.name
            ))
        };
        transaction.execute_batch(migration.sql).map_err(context)?;
        let violations: i64 = transaction
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| {
                row.get(0)
            })
            .map_err(context)?;
        if violations > 0 {
            return Err(StoreError::Migration(format!(
                "{:04}_{} left {violations} foreign key violations",
                migration.version, migration.name
            )));
        }
        transaction
            .pragma_update(None, "user_version", migration.version)
            .map_err(context)?;
        transaction.commit().map_err(context)?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied schema migration"
        );
    }
    // Catches a newer database even when there was nothing to apply.
    let found = schema_version(connection)?;
    if found > LATEST_SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            supported: LATEST_SCHEMA_VERSION,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_versions_are_consecutive_and_latest_matches() {
        for (position, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(
                migration.version as usize,
                position + 1,
                "{}",
                migration.name
            );
        }
        assert_eq!(MIGRATIONS.last().unwrap().version, LATEST_SCHEMA_VERSION);
    }

    fn schema_of(connection: &Connection) -> Vec<(String, String, String)> {
        let mut statement = connection
            .prepare(
                "SELECT type, name, sql FROM sqlite_master \
                 WHERE sql IS NOT NULL ORDER BY type, name",
            )
            .unwrap();
        let rows = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap();
        rows.map(Result::unwrap).collect()
    }

    /// The upgrade test is only meaningful if its fixture is what version-1 code really wrote.
    #[test]
    fn version_1_fixture_has_exactly_the_version_1_schema() {
        let mut migrated = Connection::open_in_memory().unwrap();
        migrate_to(&mut migrated, 1).unwrap();
        assert_eq!(schema_version(&migrated).unwrap(), 1);

        let fixture = Connection::open_in_memory().unwrap();
        fixture
            .execute_batch(include_str!("../../tests/fixtures/schema_v1.sql"))
            .unwrap();
        assert_eq!(schema_version(&fixture).unwrap(), 1);
        assert_eq!(schema_of(&fixture), schema_of(&migrated));
    }

    #[test]
    fn migrating_twice_changes_nothing() {
        let mut connection = Connection::open_in_memory().unwrap();
        migrate(&mut connection).unwrap();
        let schema = schema_of(&connection);
        migrate(&mut connection).unwrap();
        assert_eq!(schema_of(&connection), schema);
        assert_eq!(schema_version(&connection).unwrap(), LATEST_SCHEMA_VERSION);
    }
}
