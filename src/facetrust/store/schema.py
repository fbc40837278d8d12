"""The SQLite schema of a facetrust data directory, and its migrations."""

from __future__ import annotations

from facetrust.store.client_tokens import DDL as CLIENT_TOKENS_DDL

SCHEMA_VERSION = 6  # 2: the resume record keyed by a 64-bit hash key (store/upgrade.py moves version 1's);
# 3: faces.retained_until, the end of a face's retention fixed at enrolment (upgrade.py adds it);
# 4: an image's resume record goes with its last face, not its first (upgrade.py drops the old trigger);
# 5: the ClientRequestToken answers (store/client_tokens.py), which deleting a user must forget: a
#    facetrust of version 4 would delete users without forgetting them, so it must refuse the store;
# 6: the change log is pruned (store/changelog.py): a facetrust of version 5 would catch an index up
#    across a pruned stretch and miss its changes, so it must refuse the store

# Bulk ingestion's resume record: an image (by the SHA-256 of its bytes) already indexed into a
# collection, written in the same transaction as its faces, so a rerun skips exactly those.
# Erasing the last face of the image erases the record too (the trigger), so no trace of an erased
# image stays and a rerun offers it to the governed path again; while some of its faces remain
# (one deleted as not wanted, say), the record stays and a rerun skips the image instead of
# indexing the others twice. Looked up by `hash_key`, the
# SHA-256's first 8 bytes as a signed integer (store/ingested.py: `hash_key`, stored, never to
# change), and the full hash compared: at 10,000,000 images the index on 8-byte keys stays in
# SQLite's page cache, where one on the 64-character text took three times the space and a random
# page of it per insert (bench/results/ingest-bulk-10m-resume.md). No key is unique: the store
# deletes an image's earlier record before it writes the new one.
# An IndexFaces that names an ExternalImageId records its image here too, under a hash of the
# ExternalImageId and the bytes (service/faces.py: repeat_key), never equal to an image's plain
# SHA-256, so bulk ingestion does not skip what IndexFaces stored, nor the other way round.
RESUME_DDL = """
CREATE TABLE IF NOT EXISTS ingested_images (
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    hash_key      INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    image_id      TEXT NOT NULL,
    indexed_at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ingested_by_hash ON ingested_images(collection_id, hash_key);
CREATE INDEX IF NOT EXISTS ingested_by_image ON ingested_images(image_id);
CREATE TRIGGER IF NOT EXISTS ingested_erased_last AFTER DELETE ON faces BEGIN
    DELETE FROM ingested_images WHERE image_id = OLD.image_id
        AND NOT EXISTS (SELECT 1 FROM faces WHERE image_id = OLD.image_id);
END;
"""

# A face's `expires_at` is when it becomes unusable: its `retained_until` (enrolment + its purpose's
# retention then, fixed), or sooner where its subject's consent ends sooner; a renewed consent moves
# `expires_at` again, never past `retained_until`.
# Every face mutation appends to `changes`; the derived vector index records the last `seq`
# it applied, so it can catch up (or be rebuilt) and never disagrees with the database. The
# retention sweep deletes its rows older than `change_log_days` (store/changelog.py).
DDL = (
    """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS collections (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE,
    model      TEXT NOT NULL,
    purpose    TEXT NOT NULL DEFAULT 'general',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    face_id           TEXT NOT NULL UNIQUE,
    collection_id     INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    image_id          TEXT NOT NULL,
    external_image_id TEXT,
    user_id           TEXT,
    box_left          REAL NOT NULL,
    box_top           REAL NOT NULL,
    box_width         REAL NOT NULL,
    box_height        REAL NOT NULL,
    confidence        REAL NOT NULL,
    brightness        REAL NOT NULL,
    sharpness         REAL NOT NULL,
    roll              REAL NOT NULL,
    yaw               REAL NOT NULL,
    pitch             REAL NOT NULL,
    embedding         BLOB NOT NULL,
    created_at        REAL NOT NULL,
    expires_at        REAL,
    retained_until    REAL
);
CREATE INDEX IF NOT EXISTS faces_by_collection ON faces(collection_id, id);
CREATE INDEX IF NOT EXISTS faces_by_external ON faces(collection_id, external_image_id);
CREATE INDEX IF NOT EXISTS faces_by_subject ON faces(lower(external_image_id));
CREATE INDEX IF NOT EXISTS faces_by_image ON faces(image_id);
CREATE INDEX IF NOT EXISTS faces_by_user ON faces(collection_id, user_id);
CREATE TABLE IF NOT EXISTS users (
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL,
    created_at    REAL NOT NULL,
    PRIMARY KEY (collection_id, user_id)
);
CREATE TABLE IF NOT EXISTS changes (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id INTEGER NOT NULL,
    face_key      INTEGER NOT NULL,
    op            TEXT NOT NULL CHECK (op IN ('add', 'del'))
);
CREATE INDEX IF NOT EXISTS changes_by_collection ON changes(collection_id, seq);
CREATE INDEX IF NOT EXISTS faces_by_expiry ON faces(expires_at);
CREATE TABLE IF NOT EXISTS consents (
    subject       TEXT PRIMARY KEY,
    basis         TEXT NOT NULL,
    granted_at    REAL NOT NULL,
    expires_at    REAL,
    evidence_hash TEXT NOT NULL,
    recorded_at   REAL NOT NULL,
    revoked_at    REAL
);
CREATE INDEX IF NOT EXISTS consents_by_subject ON consents(lower(subject));
CREATE TABLE IF NOT EXISTS pseudonym_key (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    key BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS reviews (
    search_seq  INTEGER PRIMARY KEY,
    decision    TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    note        TEXT NOT NULL,
    audit_seq   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS people_clusters (
    collection_id  INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    cluster_id     TEXT NOT NULL,
    representative INTEGER REFERENCES faces(id) ON DELETE SET NULL,
    cohesion       REAL NOT NULL,
    updated_at     REAL NOT NULL,
    PRIMARY KEY (collection_id, cluster_id)
);
CREATE INDEX IF NOT EXISTS people_clusters_by_representative ON people_clusters(representative);
CREATE TABLE IF NOT EXISTS people_settings (
    collection_id INTEGER PRIMARY KEY REFERENCES collections(id) ON DELETE CASCADE,
    threshold     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS people_members (
    face_key      INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
    collection_id INTEGER NOT NULL,
    cluster_id    TEXT
);
CREATE INDEX IF NOT EXISTS people_members_by_cluster ON people_members(collection_id, cluster_id);
CREATE TABLE IF NOT EXISTS people_links (
    face_a        INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    face_b        INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    collection_id INTEGER NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('must', 'cannot')),
    created_at    REAL NOT NULL,
    PRIMARY KEY (face_a, face_b)
);
CREATE INDEX IF NOT EXISTS people_links_by_b ON people_links(face_b);
CREATE INDEX IF NOT EXISTS people_links_by_collection ON people_links(collection_id);
CREATE TABLE IF NOT EXISTS face_crops (
    face_key      INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
    collection_id INTEGER NOT NULL,
    crop          BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS video_jobs (
    job_id         TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    client_token   TEXT,
    request_hash   TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    request        TEXT NOT NULL,
    actor          TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('IN_PROGRESS', 'SUCCEEDED', 'FAILED')),
    status_message TEXT,
    metadata       TEXT,
    result         TEXT,
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS video_jobs_by_token ON video_jobs(key_id, kind, client_token);
-- A FaceSearch job's matches (store/video_jobs.py), one row per (person, matched face), kept out of
-- the job's result so that a face's erasure, deletion or expiry removes them with it (the cascade
-- on faces.face_id): no stored job result names a face that is no longer stored.
CREATE TABLE IF NOT EXISTS video_job_matches (
    job_id  TEXT NOT NULL REFERENCES video_jobs(job_id) ON DELETE CASCADE,
    person  INTEGER NOT NULL,
    ordinal INTEGER NOT NULL,
    face_id TEXT NOT NULL REFERENCES faces(face_id) ON DELETE CASCADE,
    match   TEXT NOT NULL,
    PRIMARY KEY (job_id, person, ordinal)
);
CREATE INDEX IF NOT EXISTS video_job_matches_by_face ON video_job_matches(face_id);
CREATE INDEX IF NOT EXISTS video_jobs_by_update ON video_jobs(status, updated_at);
-- Leases (store/leases.py): the retention sweep and each video job run on one replica at a time.
CREATE TABLE IF NOT EXISTS leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at REAL NOT NULL
);
-- Per-face cohort statistics (store/tailstats.py): each face's top-K scores against the rest of
-- its collection (float16) and whose they are (int64 keys), the score a new face must beat to
-- enter them (entry_score; -2 while it holds fewer than K) and the largest face key stored when
-- they were computed (upto: faces up to it were considered). Derived from templates, so they go
-- with their face (cascade), and a face whose top K held an erased face is marked stale (its
-- scores dropped) until recomputed. face_tail_refs answers "whose top K holds this face".
CREATE TABLE IF NOT EXISTS face_tails (
    face_key      INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
    collection_id INTEGER NOT NULL,
    stale         INTEGER NOT NULL DEFAULT 0,
    entry_score   REAL,
    upto          INTEGER,
    scores        BLOB,
    neighbours    BLOB
);
CREATE INDEX IF NOT EXISTS face_tails_by_state ON face_tails(collection_id, stale);
CREATE TABLE IF NOT EXISTS face_tail_refs (
    neighbour_key INTEGER NOT NULL,
    face_key      INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    PRIMARY KEY (neighbour_key, face_key)
);
CREATE INDEX IF NOT EXISTS face_tail_refs_by_face ON face_tail_refs(face_key);
"""
    + RESUME_DDL
    + CLIENT_TOKENS_DDL
)  # faces exist before the triggers on them
