-- Users, credentials and login throttling (vigil-auth). All times are INTEGER Unix milliseconds.
-- `IF NOT EXISTS` lets `UserDatabase` apply this to a file it opened before; inside the store's
-- versioned migrations it runs exactly once.

CREATE TABLE IF NOT EXISTS auth_users (
    id              INTEGER PRIMARY KEY,
    -- login name: lowercase ASCII letters, digits, '.', '_', '-'; 1 to 64 characters
    name            TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL,
    -- comma-separated role names in `Role` order (e.g. 'reviewer,auditor'); text rather than a CHECKed
    -- enum so that adding a role later needs no table rebuild; parsed strictly on read
    roles           TEXT NOT NULL,
    -- argon2id PHC string ('$argon2id$v=19$m=...,t=...,p=...$salt$hash'); NULL: token-only user
    password_hash   TEXT,
    disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
) STRICT;

-- API tokens. Only the SHA-256 of the secret is kept: a copy of the database yields no usable
-- token.
CREATE TABLE IF NOT EXISTS auth_tokens (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    -- lowercase hex SHA-256 of the whole secret string ('vgl_...')
    secret_sha256   TEXT NOT NULL UNIQUE CHECK (length(secret_sha256) = 64),
    created_at_ms   INTEGER NOT NULL,
    expires_at_ms   INTEGER,            -- NULL: never expires
    last_used_at_ms INTEGER,            -- refreshed at most once a minute
    revoked_at_ms   INTEGER             -- NULL: not revoked
) STRICT;

CREATE INDEX IF NOT EXISTS auth_tokens_by_user ON auth_tokens (user_id);

-- Web UI sessions, identified by the SHA-256 of the opaque cookie secret ('vgs_...').
CREATE TABLE IF NOT EXISTS auth_sessions (
    secret_sha256   TEXT PRIMARY KEY CHECK (length(secret_sha256) = 64),
    user_id         INTEGER NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    created_at_ms   INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL,   -- absolute end, whatever the activity
    last_seen_at_ms INTEGER NOT NULL    -- idle expiry counts from here; refreshed at most once a minute
) STRICT;

CREATE INDEX IF NOT EXISTS auth_sessions_by_user ON auth_sessions (user_id);

-- One row per password check (not per refused, throttled request). Rows older than the
-- throttling window are pruned on each login.
CREATE TABLE IF NOT EXISTS auth_login_attempts (
    id              INTEGER PRIMARY KEY,
    -- the name as submitted, normalised, whether or not such a user exists
    user_name       TEXT NOT NULL,
    -- client address; IPv6 reduced to its /64 network, which one attacker usually holds whole
    client_ip       TEXT NOT NULL,
    at_ms           INTEGER NOT NULL,
    -- written as 0 before the password is checked, so parallel guesses count against each other
    succeeded       INTEGER NOT NULL CHECK (succeeded IN (0, 1))
) STRICT;

CREATE INDEX IF NOT EXISTS auth_login_attempts_by_user ON auth_login_attempts (user_name, at_ms);
CREATE INDEX IF NOT EXISTS auth_login_attempts_by_ip ON auth_login_attempts (client_ip, at_ms);
CREATE INDEX IF NOT EXISTS auth_login_attempts_by_time ON auth_login_attempts (at_ms);
