"""The SQLite schema of a facetrust data directory, and its migrations."""

from __future__ import annotations

SCHEMA_VERSION = 1

# Every face mutation appends to `changes`; the derived vector index records the last `seq`
# it applied, so it can catch up (or be rebuilt) and never disagrees with the database.
DDL = """
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
    expires_at        REAL
);
CREATE INDEX IF NOT EXISTS faces_by_collection ON faces(collection_id, id);
CREATE INDEX IF NOT EXISTS faces_by_external ON faces(collection_id, external_image_id);
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
"""
