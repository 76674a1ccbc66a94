-- Webhook subscriptions, outbox and delivery log (docs/design/010-webhooks.md). Frozen once
-- released: the store runs this text as one of its migrations, and a released migration is
-- never edited.

-- Who wants which events. Deleting a subscription deletes its deliveries and their log;
-- disable it instead to keep them.
CREATE TABLE notify_subscriptions (
    id              INTEGER PRIMARY KEY,
    url             TEXT NOT NULL,      -- http or https, validated in Rust
    -- HMAC-SHA256 key for X-Vigil-Signature; the UTF-8 bytes of this text are the key
    secret          TEXT NOT NULL CHECK (length(secret) > 0),
    -- JSON array of event kinds to deliver, e.g. ["alert.created"]; [] means every kind
    event_kinds     TEXT NOT NULL CHECK (json_valid(event_kinds) AND json_type(event_kinds) = 'array'),
    enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    description     TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL    -- unix ms
) STRICT;

-- The outbox: one row per (event, subscription), inserted in the transaction that produced
-- the event, so an alert and its notifications commit or roll back together.
CREATE TABLE notify_deliveries (
    id                  INTEGER PRIMARY KEY,  -- sent as X-Vigil-Delivery; receivers dedupe on it
    subscription_id     INTEGER NOT NULL REFERENCES notify_subscriptions (id) ON DELETE CASCADE,
    event_kind          TEXT NOT NULL,        -- sent as X-Vigil-Event
    payload             TEXT NOT NULL CHECK (json_valid(payload)),  -- the POST body, verbatim
    state               TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts            INTEGER NOT NULL CHECK (attempts >= 0),     -- attempts made so far
    -- unix ms when queued, or re-queued by `redeliver`; the retry window counts from here
    created_at_ms       INTEGER NOT NULL,
    -- unix ms; when pending, the earliest time of the next attempt (while an attempt is in
    -- flight, the end of its lease); NULL once delivered or failed
    next_attempt_at_ms  INTEGER,
    finished_at_ms      INTEGER,              -- unix ms of delivery or of giving up
    last_error          TEXT,                 -- why the last attempt failed; NULL if it did not
    CHECK ((state = 'pending') = (next_attempt_at_ms IS NOT NULL))
) STRICT;

CREATE INDEX notify_deliveries_due ON notify_deliveries (next_attempt_at_ms)
    WHERE state = 'pending';
CREATE INDEX notify_deliveries_by_subscription ON notify_deliveries (subscription_id, id);

-- One row per HTTP attempt.
CREATE TABLE notify_attempts (
    id              INTEGER PRIMARY KEY,
    delivery_id     INTEGER NOT NULL REFERENCES notify_deliveries (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL CHECK (attempt >= 1),  -- 1 for the first try
    started_at_ms   INTEGER NOT NULL,   -- unix ms
    duration_ms     INTEGER NOT NULL,   -- until the response's status line, or the failure
    status_code     INTEGER,            -- HTTP status; NULL when no response came
    error           TEXT,               -- NULL for a 2xx answer
    UNIQUE (delivery_id, attempt)
) STRICT;
