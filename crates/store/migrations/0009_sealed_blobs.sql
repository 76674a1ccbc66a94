-- Version 9: room for sealed blobs (encryption at rest, docs/design/011).
--
-- A sealed blob is "VGS1" ‖ key id (8 B) ‖ nonce (24 B) ‖ ciphertext ‖ tag (16 B): 52 bytes
-- longer than its plaintext. `templates.embedding` checked its length against `dimension`, so
-- the check now also admits a sealed embedding of exactly that plaintext length. SQLite cannot
-- change a CHECK in place: `templates` is rebuilt, and `template_thumbnails` with it, since its
-- foreign key would otherwise cascade-delete every thumbnail when the old table is dropped.

CREATE TABLE templates_v9 (
    id            INTEGER PRIMARY KEY,
    subject_id    INTEGER NOT NULL REFERENCES subjects (id) ON DELETE CASCADE,
    model         TEXT    NOT NULL,
    dimension     INTEGER NOT NULL CHECK (dimension > 0),
    -- `dimension` little-endian f32 values, or those sealed (format VGS1, 52 bytes more).
    embedding     BLOB    NOT NULL CHECK (
        length(embedding) = 4 * dimension
        OR (substr(embedding, 1, 4) = X'56475331' AND length(embedding) = 4 * dimension + 52)),
    quality       REAL    NOT NULL,
    detector      TEXT    NOT NULL,
    source_media  TEXT    NOT NULL REFERENCES media (sha256),
    source_name   TEXT,
    bbox_x1       REAL    NOT NULL,
    bbox_y1       REAL    NOT NULL,
    bbox_x2       REAL    NOT NULL,
    bbox_y2       REAL    NOT NULL,
    created_at_ms INTEGER NOT NULL
);

INSERT INTO templates_v9 (id, subject_id, model, dimension, embedding, quality, detector,
                          source_media, source_name, bbox_x1, bbox_y1, bbox_x2, bbox_y2,
                          created_at_ms)
SELECT id, subject_id, model, dimension, embedding, quality, detector,
       source_media, source_name, bbox_x1, bbox_y1, bbox_x2, bbox_y2, created_at_ms
FROM templates;

CREATE TABLE template_thumbnails_v9 (
    template_id INTEGER PRIMARY KEY REFERENCES templates_v9 (id) ON DELETE CASCADE,
    -- JPEG crop of the face, or that sealed.
    jpeg        BLOB    NOT NULL
);

INSERT INTO template_thumbnails_v9 (template_id, jpeg)
SELECT template_id, jpeg FROM template_thumbnails;

DROP TABLE template_thumbnails;
DROP TABLE templates;
-- Renaming rewrites the foreign key in `template_thumbnails_v9` to the new name.
ALTER TABLE templates_v9 RENAME TO templates;
ALTER TABLE template_thumbnails_v9 RENAME TO template_thumbnails;

CREATE INDEX templates_by_subject ON templates (subject_id);
CREATE INDEX templates_by_model ON templates (model, id);
CREATE INDEX templates_by_media ON templates (source_media);

-- Probe images stay append-only, except that the reseal job (`vigil keys reseal`) may replace
-- an image by a sealed one under the same sha256: the chain hashes only the sha256, and
-- `vigil_audit::verify_sealed` opens the sealed image and checks it against that sha256.
DROP TRIGGER audit_probes_no_update;
CREATE TRIGGER audit_probes_no_update BEFORE UPDATE ON audit_probes
WHEN NEW.sha256 IS NOT OLD.sha256
  OR NEW.first_stored_at_ms IS NOT OLD.first_stored_at_ms
  OR substr(NEW.image, 1, 4) IS NOT X'56475331'
BEGIN
    SELECT RAISE(ABORT, 'audit probes are append-only');
END;
