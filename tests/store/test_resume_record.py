"""Bulk ingestion's resume record: looked up by a 64-bit key of the hash, answered by the full hash
(keys collide; hashes must not), and a version-1 store's records moved to it when the store opens."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetrust.store.ingested import hash_key
from facetrust.store.postgres import open_store
from facetrust.store.protocol import FaceStore
from facetrust.store.schema import SCHEMA_VERSION

from .conftest import collection, face

A = "ab" * 8 + "0" * 48  # three hashes with the same first 16 hex digits: one key
B = "ab" * 8 + "1" * 48
C = "ab" * 8 + "2" * 48


def test_the_key_is_the_first_eight_bytes_and_any_text_has_one() -> None:
    assert hash_key("00" * 8 + "ff" * 24) == 0
    assert hash_key("7f" + "ff" * 7 + "00" * 24) == 2**63 - 1
    assert hash_key("80" + "00" * 7 + "00" * 24) == -(2**63)
    assert hash_key(A) == hash_key(B) == hash_key(C)
    assert hash_key("h1") == hash_key("h1") != hash_key("h2")  # not hex: a digest of the text
    assert all(-(2**63) <= hash_key(t) < 2**63 for t in ("", "-fffffffffffffff", "0x12", "zz" * 40))


def test_hashes_that_share_a_key_are_told_apart(store: FaceStore) -> None:
    cid = collection(store)
    with store.transaction() as conn:
        store.record_ingested(conn, cid, A, "image-a", 1.0)
    assert store.ingested(cid, [B, C]) == set()
    assert store.ingested(cid, [A, B]) == {A}
    with store.transaction() as conn:
        store.record_ingested_many(conn, cid, [(B, "image-b"), (A, "image-a2")], 2.0)
    assert store.ingested(cid, [A, B, C]) == {A, B}
    rows = store.connection().execute(
        "SELECT sha256, image_id, indexed_at FROM ingested_images WHERE collection_id = ? ORDER BY sha256", (cid,)
    )
    assert [tuple(r) for r in rows] == [(A, "image-a2", 2.0), (B, "image-b", 2.0)]  # A replaced, B kept apart


def test_a_hash_repeated_in_one_batch_is_recorded_once_the_last_image_winning(store: FaceStore) -> None:
    cid = collection(store)
    with store.transaction() as conn:
        store.record_ingested_many(conn, cid, [("h1", "image-1"), ("h1", "image-2")], 1.0)
    rows = store.connection().execute("SELECT sha256, image_id FROM ingested_images WHERE collection_id = ?", (cid,))
    assert [tuple(r) for r in rows] == [("h1", "image-2")]


_V1 = """
CREATE TABLE ingested_images (
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    sha256        TEXT NOT NULL,
    image_id      TEXT NOT NULL,
    indexed_at    REAL NOT NULL,
    PRIMARY KEY (collection_id, sha256)
);
CREATE INDEX ingested_by_image ON ingested_images(image_id);
CREATE TRIGGER IF NOT EXISTS ingested_erased AFTER DELETE ON faces BEGIN
    DELETE FROM ingested_images WHERE image_id = OLD.image_id;
END;
"""


def _make_version_1(root: Path, url: str, hashes: int) -> None:
    """A store as facetrust's schema version 1 left it: the resume record keyed by the hash's text."""
    store = open_store(root / "facetrust.db", url)
    try:
        cid = collection(store)
        with store.transaction() as conn:
            store.insert_faces(conn, cid, [face(1)])  # image-1
            conn.execute("DROP TRIGGER ingested_erased_last" + (" ON faces" if url != "sqlite" else ""))
            conn.execute("DROP TABLE ingested_images")
            conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        store.connection().executescript(_V1)
        with store.transaction() as conn:
            conn.executemany(
                "INSERT INTO ingested_images(collection_id, sha256, image_id, indexed_at) VALUES (?, ?, ?, ?)",
                [(cid, f"{n:064x}", "image-1" if n == 0 else f"image-x{n}", float(n)) for n in range(hashes)],
            )
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_version_1_store_keeps_every_record_when_it_opens(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = str(request.getfixturevalue("pg_url")) if kind == "postgresql" else "sqlite"
    _make_version_1(tmp_path, url, 25_003)  # more than one page of the copy
    store = open_store(tmp_path / "facetrust.db", url)
    try:
        conn = store.connection()
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        cid = store.get_collection("staff").id  # type: ignore[union-attr]
        every = [f"{n:064x}" for n in range(25_003)]
        assert store.ingested(cid, every) == set(every)
        assert conn.execute("SELECT count(*) FROM ingested_images").fetchone() == (25_003,)
        (mismatched,) = conn.execute(
            "SELECT count(*) FROM ingested_images WHERE indexed_at = 17 AND (hash_key != ? OR image_id != 'image-x17')",
            (hash_key(f"{17:064x}"),),
        ).fetchone()
        assert mismatched == 0
        with store.transaction() as c:  # the erasure trigger follows the new table
            store.delete_faces(c, cid, store.face_keys(cid))
        assert store.ingested(cid, every[:2]) == {every[1]}
    finally:
        store.close()
    again = open_store(tmp_path / "facetrust.db", url)  # opening it again changes nothing
    try:
        assert again.ingested(cid, every[:3]) == set(every[1:3])
    finally:
        again.close()
