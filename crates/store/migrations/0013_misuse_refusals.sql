-- Misuse detection sees probing (docs/design/013): a new rule, `refusals`, for a user whose
-- requests are refused for lacking the permission too often in a day. SQLite cannot alter the
-- CHECK on `rule`, so the table is rebuilt with the same columns.
CREATE TABLE misuse_alerts_rebuilt (
    id               INTEGER PRIMARY KEY,
    user_name        TEXT NOT NULL,
    rule             TEXT NOT NULL
                     CHECK (rule IN ('above_norm', 'off_hours', 'outside_cases', 'refusals')),
    -- the UTC day (unix ms at 00:00) the activity belongs to; with user and rule, the dedup key
    day_ms           INTEGER NOT NULL,
    observed         INTEGER NOT NULL,
    expected         REAL NOT NULL,
    detail           TEXT NOT NULL,
    first_entry      INTEGER NOT NULL,   -- audit sequence numbers of the activity
    last_entry       INTEGER NOT NULL,
    raised_at        INTEGER NOT NULL,
    acknowledged_by  TEXT,
    acknowledged_at  INTEGER,
    note             TEXT,
    UNIQUE (user_name, rule, day_ms)
) STRICT;

INSERT INTO misuse_alerts_rebuilt SELECT id, user_name, rule, day_ms, observed, expected, detail,
    first_entry, last_entry, raised_at, acknowledged_by, acknowledged_at, note FROM misuse_alerts;
DROP TABLE misuse_alerts;
ALTER TABLE misuse_alerts_rebuilt RENAME TO misuse_alerts;
CREATE INDEX misuse_alerts_open ON misuse_alerts (raised_at) WHERE acknowledged_at IS NULL;
