-- Version 1: the gallery. A subject is a person; a template is one embedding of one face photo.

CREATE TABLE subjects (
    id            INTEGER PRIMARY KEY,
    -- Display name, trimmed by the application before insert; unique as stored (case-sensitive).
    name          TEXT    NOT NULL UNIQUE,
    notes         TEXT,
    -- Unix time in milliseconds (UTC) when the subject was first enrolled.
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE templates (
    id             INTEGER PRIMARY KEY,
    -- Deleting a subject deletes its templates: no template outlives the person it describes.
    subject_id     INTEGER NOT NULL REFERENCES subjects (id) ON DELETE CASCADE,
    -- Recognizer that produced the embedding (ModelId). Embeddings of different models are
    -- never compared, so every read filters on this column.
    model          TEXT    NOT NULL,
    -- Number of f32 values in `embedding`; equal for every template of one model.
    dimension      INTEGER NOT NULL CHECK (dimension > 0),
    -- `dimension` little-endian IEEE-754 f32 values, L2-normalised to unit length.
    embedding      BLOB    NOT NULL CHECK (length(embedding) = 4 * dimension),
    -- Face quality score from the quality model; higher is better, scale defined by that model.
    quality        REAL    NOT NULL,
    -- Face detector model that found the face (e.g. `scrfd_2.5g`).
    detector       TEXT    NOT NULL,
    -- Lowercase hex SHA-256 of the source image file's bytes.
    source_sha256  TEXT    NOT NULL,
    -- File name the source image was uploaded under, if known; informational only.
    source_name    TEXT,
    -- JPEG-encoded crop of the face, shown to operators reviewing a match.
    thumbnail_jpeg BLOB    NOT NULL,
    -- Face box in source-image pixels: left, top, right, bottom.
    bbox_x1        REAL    NOT NULL,
    bbox_y1        REAL    NOT NULL,
    bbox_x2        REAL    NOT NULL,
    bbox_y2        REAL    NOT NULL,
    -- Unix time in milliseconds (UTC) when the template was enrolled.
    created_at_ms  INTEGER NOT NULL
);

CREATE INDEX templates_by_subject ON templates (subject_id);
CREATE INDEX templates_by_model ON templates (model);
