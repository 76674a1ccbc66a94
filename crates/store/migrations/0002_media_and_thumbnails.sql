-- Version 2: source images become rows of their own (`media`, deduplicated by SHA-256), and
-- thumbnails move out of `templates`.
--
-- Why move thumbnails: start-up reads every embedding of a model (`templates_for_model`). With a
-- several-KiB JPEG inline, each leaf page held a handful of templates and the scan paged through
-- all the thumbnails; without them a page holds dozens of rows.

CREATE TABLE media (
    -- Lowercase hex SHA-256 of the source image file's bytes: the identity of the image, so the
    -- same photo uploaded twice is one row.
    sha256           TEXT    PRIMARY KEY NOT NULL CHECK (length(sha256) = 64),
    -- Unix time in milliseconds (UTC) when a template was first taken from this image.
    first_seen_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO media (sha256, first_seen_at_ms)
SELECT source_sha256, min(created_at_ms) FROM templates GROUP BY source_sha256;

-- SQLite cannot add a NOT NULL foreign key to an existing table, so `templates` is rebuilt.
-- Nothing references `templates` yet, so dropping the old table cascades nowhere.
CREATE TABLE templates_v2 (
    id            INTEGER PRIMARY KEY,
    -- Deleting a subject deletes its templates: no template outlives the person it describes.
    subject_id    INTEGER NOT NULL REFERENCES subjects (id) ON DELETE CASCADE,
    -- Recognizer that produced the embedding (ModelId). Embeddings of different models are
    -- never compared, so every read filters on this column.
    model         TEXT    NOT NULL,
    -- Number of f32 values in `embedding`; equal for every template of one model.
    dimension     INTEGER NOT NULL CHECK (dimension > 0),
    -- `dimension` little-endian IEEE-754 f32 values, L2-normalised to unit length.
    embedding     BLOB    NOT NULL CHECK (length(embedding) = 4 * dimension),
    -- Face quality score from the quality model; higher is better, scale defined by that model.
    quality       REAL    NOT NULL,
    -- Face detector model that found the face (e.g. `scrfd_2.5g`).
    detector      TEXT    NOT NULL,
    -- The image this face was cut from. Media rows are deleted with their last template.
    source_media  TEXT    NOT NULL REFERENCES media (sha256),
    -- File name the source image was uploaded under for this enrolment, if known; informational.
    source_name   TEXT,
    -- Face box in source-image pixels: left, top, right, bottom.
    bbox_x1       REAL    NOT NULL,
    bbox_y1       REAL    NOT NULL,
    bbox_x2       REAL    NOT NULL,
    bbox_y2       REAL    NOT NULL,
    -- Unix time in milliseconds (UTC) when the template was enrolled.
    created_at_ms INTEGER NOT NULL
);

INSERT INTO templates_v2 (id, subject_id, model, dimension, embedding, quality, detector,
                          source_media, source_name, bbox_x1, bbox_y1, bbox_x2, bbox_y2,
                          created_at_ms)
SELECT id, subject_id, model, dimension, embedding, quality, detector,
       source_sha256, source_name, bbox_x1, bbox_y1, bbox_x2, bbox_y2, created_at_ms
FROM templates;

CREATE TABLE template_thumbnails (
    template_id INTEGER PRIMARY KEY REFERENCES templates_v2 (id) ON DELETE CASCADE,
    -- JPEG-encoded crop of the face, shown to operators reviewing a match.
    jpeg        BLOB    NOT NULL
);

INSERT INTO template_thumbnails (template_id, jpeg) SELECT id, thumbnail_jpeg FROM templates;

DROP TABLE templates;
-- Renaming also rewrites the foreign key in `template_thumbnails` to the new name.
ALTER TABLE templates_v2 RENAME TO templates;

CREATE INDEX templates_by_subject ON templates (subject_id);
-- Covers `templates_for_model` ordering and the per-model dimension check.
CREATE INDEX templates_by_model ON templates (model, id);
CREATE INDEX templates_by_media ON templates (source_media);
