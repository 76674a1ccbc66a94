//! Reads for a case's evidence bundle (`vigil-evidence`): everything of a case, unpaged.

use super::SqliteStore;
use crate::error::StoreError;

impl SqliteStore {
    /// Ids of every alert on `case`'s watchlist entries, oldest first, with no limit: an
    /// evidence bundle must not silently drop alerts past a page size (`alerts_in_case` shows
    /// at most 1000).
    pub fn case_alert_ids(&self, case: &str) -> Result<Vec<i64>, StoreError> {
        let connection = self.connection.lock();
        let mut statement = connection.prepare(
            "SELECT alerts.id FROM alerts
             JOIN watchlist_entries ON watchlist_entries.id = alerts.watchlist_entry
             WHERE watchlist_entries.case_ref = ?1 ORDER BY alerts.id",
        )?;
        let rows = statement.query_map([case], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
