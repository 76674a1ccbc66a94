-- Cases: every search and watchlist entry names one. A case has a purpose, a legal basis, an
-- owner and an expiry; only its owner and members may act under it, and only while it is open.

CREATE TABLE cases (
    id           INTEGER PRIMARY KEY,
    reference    TEXT NOT NULL UNIQUE,
    purpose      TEXT NOT NULL,
    legal_basis  TEXT NOT NULL,
    owner        TEXT NOT NULL,
    opened_at    INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    closed_at    INTEGER,
    CHECK (length(trim(reference)) > 0 AND length(trim(purpose)) > 0
           AND length(trim(legal_basis)) > 0 AND length(trim(owner)) > 0),
    CHECK (expires_at > opened_at)
) STRICT;

CREATE TABLE case_members (
    case_id    INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    user_name  TEXT NOT NULL,
    PRIMARY KEY (case_id, user_name)
) STRICT;
