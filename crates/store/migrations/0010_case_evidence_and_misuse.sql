-- Case evidence, misuse alerts, and what a case lets its investigators see.

-- Matched sightings are kept per case: a sighting that raised an alert (not rejected) is the
-- case's evidence and is held while the case is open and for `evidence_retention_days` after it
-- closes or expires; then the ordinary sighting retention applies to it again.
ALTER TABLE cases ADD COLUMN evidence_retention_days INTEGER NOT NULL DEFAULT 30
    CHECK (evidence_retention_days >= 0 AND evidence_retention_days <= 3650);

-- Alerts for auditors about how the system is used: a user searching far above their own norm,
-- outside working hours, or under cases they do not belong to. One per user, rule and day.
CREATE TABLE misuse_alerts (
    id               INTEGER PRIMARY KEY,
    user_name        TEXT NOT NULL,
    rule             TEXT NOT NULL CHECK (rule IN ('above_norm', 'off_hours', 'outside_cases')),
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

CREATE INDEX misuse_alerts_open ON misuse_alerts (raised_at) WHERE acknowledged_at IS NULL;

-- Sightings a search under a case returned: with those behind the case's alerts, what the
-- case's investigators may see (an investigator browses no other sightings).
CREATE TABLE case_sightings (
    case_ref   TEXT NOT NULL REFERENCES cases (reference),
    sighting   INTEGER NOT NULL REFERENCES sightings (id) ON DELETE CASCADE,
    linked_at  INTEGER NOT NULL,
    PRIMARY KEY (case_ref, sighting)
) STRICT;

CREATE INDEX case_sightings_by_sighting ON case_sightings (sighting);
