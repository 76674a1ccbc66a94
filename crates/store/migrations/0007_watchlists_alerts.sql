-- Watchlists: lists of enrolled subjects to alert on. An entry cannot exist without legal basis,
-- case, responsible person and expiry; expired or removed entries never match. Alerts are
-- candidates until two distinct reviewers (neither the entry's creator) confirm; one rejection
-- closes them.

CREATE TABLE watchlists (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    description       TEXT,
    -- the alert threshold, as a calibrated false-match rate
    false_match_rate  REAL NOT NULL CHECK (false_match_rate > 0 AND false_match_rate < 1),
    created_by        TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    CHECK (length(trim(name)) > 0)
) STRICT;

CREATE TABLE watchlist_entries (
    id           INTEGER PRIMARY KEY,
    watchlist    INTEGER NOT NULL REFERENCES watchlists (id),
    -- the entry's own subject: removing the entry deletes it and its templates
    subject      INTEGER REFERENCES subjects (id) ON DELETE SET NULL,
    subject_name TEXT NOT NULL,
    legal_basis  TEXT NOT NULL,
    case_ref     TEXT NOT NULL REFERENCES cases (reference),
    responsible  TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    removed_at   INTEGER,
    CHECK (length(trim(legal_basis)) > 0 AND length(trim(case_ref)) > 0
           AND length(trim(responsible)) > 0),
    CHECK (expires_at > created_at)
) STRICT;

CREATE INDEX watchlist_entries_active ON watchlist_entries (expires_at) WHERE removed_at IS NULL;

CREATE TABLE alerts (
    id                         INTEGER PRIMARY KEY,
    sighting                   INTEGER NOT NULL REFERENCES sightings (id) ON DELETE CASCADE,
    watchlist_entry            INTEGER NOT NULL REFERENCES watchlist_entries (id),
    subject                    INTEGER NOT NULL,
    best_template              INTEGER NOT NULL,
    score                      REAL NOT NULL,
    false_match_rate           REAL NOT NULL,
    extrapolated               INTEGER NOT NULL,
    expected_false_candidates  REAL NOT NULL,
    gallery_templates          INTEGER NOT NULL,
    state                      TEXT NOT NULL CHECK (state IN ('candidate', 'confirmed', 'rejected')),
    created_at                 INTEGER NOT NULL,
    closed_at                  INTEGER
) STRICT;

CREATE INDEX alerts_by_state ON alerts (state, created_at);

CREATE TABLE alert_reviews (
    alert     INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    reviewer  TEXT NOT NULL,
    decision  TEXT NOT NULL CHECK (decision IN ('confirm', 'reject')),
    note      TEXT,
    at        INTEGER NOT NULL,
    PRIMARY KEY (alert, reviewer)
) STRICT;
