-- Live video: cameras added through the API, sightings (one per person-track), recording
-- segments, and the garbage list that makes segment deletion crash-safe.

CREATE TABLE cameras (
    id          TEXT PRIMARY KEY,
    -- The camera's settings as JSON (vigil_base::CameraConfig); validated before it is written.
    config      TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE sightings (
    id              INTEGER PRIMARY KEY,
    camera          TEXT NOT NULL,
    track           INTEGER NOT NULL,
    started_at      INTEGER NOT NULL,   -- unix ms, wall clock
    ended_at        INTEGER NOT NULL,
    best_at         INTEGER NOT NULL,
    observations    INTEGER NOT NULL,
    end_reason      TEXT NOT NULL,
    quality         REAL NOT NULL,
    detector_score  REAL NOT NULL,
    -- best-shot box in analysed-frame pixels, and that frame's size
    box_x1 REAL NOT NULL, box_y1 REAL NOT NULL, box_x2 REAL NOT NULL, box_y2 REAL NOT NULL,
    frame_width     INTEGER NOT NULL,
    frame_height    INTEGER NOT NULL,
    crop_jpeg       BLOB NOT NULL,
    -- [[t_ms, cx, cy, w, h], ...], at most a few dozen points
    trajectory      TEXT NOT NULL,
    -- identification against the enrolled gallery when the sighting was made (JSON list)
    candidates      TEXT NOT NULL,
    top_subject     INTEGER,
    created_at      INTEGER NOT NULL,
    CHECK (ended_at >= started_at)
) STRICT;

CREATE INDEX sightings_by_time ON sightings (started_at);
CREATE INDEX sightings_by_camera_time ON sightings (camera, started_at);
CREATE INDEX sightings_by_subject ON sightings (top_subject) WHERE top_subject IS NOT NULL;

-- The best few embeddings of a sighting, for search and fusion; gone with their sighting.
CREATE TABLE sighting_embeddings (
    sighting    INTEGER NOT NULL REFERENCES sightings (id) ON DELETE CASCADE,
    rank        INTEGER NOT NULL,
    model       TEXT NOT NULL,
    dimension   INTEGER NOT NULL,
    embedding   BLOB NOT NULL,
    quality     REAL NOT NULL,
    PRIMARY KEY (sighting, rank)
) STRICT;

CREATE INDEX sighting_embeddings_by_model ON sighting_embeddings (model);

-- A row exists only while its file is complete on disk: rows are inserted after ffmpeg closed
-- the file and removed (into `recording_garbage`) before the file is unlinked.
CREATE TABLE recording_segments (
    id          INTEGER PRIMARY KEY,
    camera      TEXT NOT NULL,
    path        TEXT NOT NULL UNIQUE,   -- relative to the recordings folder
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    CHECK (ended_at >= started_at AND bytes >= 0)
) STRICT;

CREATE INDEX recording_segments_by_time ON recording_segments (started_at);
CREATE INDEX recording_segments_by_camera_time ON recording_segments (camera, started_at);

-- Files whose rows are gone but which may still be on disk; emptied after unlink + fsync.
CREATE TABLE recording_garbage (
    path        TEXT PRIMARY KEY
) STRICT;
