-- Camera settings sealed at rest (docs/design/011): a camera's URL may carry its password, so
-- with encryption on, `config` holds the settings' JSON sealed (a BLOB bound to the camera id)
-- instead of the JSON text. A STRICT table cannot hold both in a TEXT column, and SQLite cannot
-- alter a column's type: the table is rebuilt with `config ANY` (text, or a sealed blob).
CREATE TABLE cameras_sealable (
    id          TEXT PRIMARY KEY,
    config      ANY NOT NULL CHECK (typeof(config) IN ('text', 'blob')),
    updated_at  INTEGER NOT NULL
) STRICT;

INSERT INTO cameras_sealable (id, config, updated_at) SELECT id, config, updated_at FROM cameras;
DROP TABLE cameras;
ALTER TABLE cameras_sealable RENAME TO cameras;
