-- Tamper-evident audit log (docs/design/008-audit-chain.md). Frozen once released: the store
-- runs this text as one of its migrations, and a released migration is never edited.

-- One row per audited operation. Rows form a hash chain: entry_hash = SHA-256 over every other
-- column (see `vigil_audit::entry_hash`), previous_hash = the entry_hash of sequence - 1.
CREATE TABLE audit_entries (
    sequence        INTEGER PRIMARY KEY CHECK (sequence >= 1),   -- 1, 2, 3, ... without gaps
    at_ms           INTEGER NOT NULL,   -- unix ms, wall clock of the writer; not monotonic
    actor_id        TEXT,               -- the user's id; NULL when there is none (failed login)
    actor_name      TEXT NOT NULL,      -- the user name at the time of the operation
    action          TEXT NOT NULL,      -- snake_case name of `AuditAction`, validated in Rust
    target_kind     TEXT NOT NULL,      -- e.g. subject, sighting, camera, user
    target_id       TEXT NOT NULL,
    case_ref        TEXT,
    reason          TEXT NOT NULL,
    -- request summary: a JSON object in canonical form (sorted keys, no whitespace)
    request         TEXT NOT NULL CHECK (json_valid(request) AND json_type(request) = 'object'),
    -- the probe image's sha256 (64 lowercase hex), its bytes in audit_probes
    probe_sha256    TEXT REFERENCES audit_probes (sha256),
    outcome         TEXT NOT NULL CHECK (outcome IN ('success', 'refused', 'failed')),
    outcome_detail  TEXT NOT NULL,
    previous_hash   TEXT NOT NULL CHECK (length(previous_hash) = 64),  -- lowercase hex
    entry_hash      TEXT NOT NULL CHECK (length(entry_hash) = 64)      -- lowercase hex
) STRICT;

CREATE INDEX audit_entries_by_actor_name ON audit_entries (actor_name, at_ms);
CREATE INDEX audit_entries_by_actor_id ON audit_entries (actor_id, at_ms) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_entries_by_case ON audit_entries (case_ref) WHERE case_ref IS NOT NULL;
CREATE INDEX audit_entries_by_time ON audit_entries (at_ms);

-- Probe images of searches, stored once per distinct image; entries hash only the sha256.
CREATE TABLE audit_probes (
    sha256              TEXT PRIMARY KEY CHECK (length(sha256) = 64),  -- of `image`, lowercase hex
    image               BLOB NOT NULL,
    first_stored_at_ms  INTEGER NOT NULL
) STRICT;

-- Append-only in the database itself. An insert must continue the chain: this also stops
-- INSERT OR REPLACE, whose implicit delete does not fire delete triggers.
CREATE TRIGGER audit_entries_insert_continues_chain BEFORE INSERT ON audit_entries
WHEN NEW.sequence IS NOT (SELECT coalesce(max(sequence), 0) + 1 FROM audit_entries)
  OR NEW.previous_hash IS NOT coalesce(
        (SELECT entry_hash FROM audit_entries ORDER BY sequence DESC LIMIT 1),
        '0000000000000000000000000000000000000000000000000000000000000000')
BEGIN
    SELECT RAISE(ABORT, 'audit entries must continue the chain');
END;

CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;

CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;

CREATE TRIGGER audit_probes_insert_once BEFORE INSERT ON audit_probes
WHEN EXISTS (SELECT 1 FROM audit_probes WHERE sha256 = NEW.sha256)
BEGIN
    SELECT RAISE(ABORT, 'audit probes are append-only');
END;

CREATE TRIGGER audit_probes_no_update BEFORE UPDATE ON audit_probes
BEGIN
    SELECT RAISE(ABORT, 'audit probes are append-only');
END;

CREATE TRIGGER audit_probes_no_delete BEFORE DELETE ON audit_probes
BEGIN
    SELECT RAISE(ABORT, 'audit probes are append-only');
END;
