"""The store contract: the same behaviour from every store (SQLite and PostgreSQL), asserted once."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facetrust.governance import audit
from facetrust.governance.crypto import Keyring, TemplateKey, is_sealed
from facetrust.governance.pseudonyms import deployment_key
from facetrust.store import crops, records
from facetrust.store import people as tables
from facetrust.store.postgres import PostgresStore
from facetrust.store.sqlite import NewFace, Store

KEYRING = Keyring(TemplateKey(b"k" * 8, os.urandom(32)))


def _open(kind: str, folder: Path, url: str | None, keyring: Keyring | None) -> Store:
    if kind == "sqlite":
        return Store(folder / "facetrust.db", keyring=keyring)
    assert url is not None
    return PostgresStore(folder / "facetrust.db", url, keyring=keyring)


@pytest.fixture(params=["sqlite", "postgresql"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(kind: str, request: pytest.FixtureRequest) -> str | None:
    return str(request.getfixturevalue("pg_url")) if kind == "postgresql" else None


@pytest.fixture(params=["sealed", "plain"])
def store(request: pytest.FixtureRequest, kind: str, url: str | None, tmp_path: Path) -> Iterator[Store]:
    s = _open(kind, tmp_path, url, KEYRING if request.param == "sealed" else None)
    yield s
    s.close()


def _face(n: int, *, external: str | None = None, expires_at: float | None = None) -> NewFace:
    vec = np.full(4, n, dtype=np.float32)
    return NewFace(
        face_id=f"face-{n}",
        image_id=f"image-{n}",
        external_image_id=external,
        box=(0.1, 0.2, 0.3, 0.4),
        confidence=0.99,
        brightness=50.5,
        sharpness=60.25,
        pose=(1.5, -2.5, 3.0),
        embedding=vec.tobytes(),
        expires_at=expires_at,
    )


def _collection(store: Store, name: str = "c1") -> int:
    with store.transaction() as conn:
        return store.insert_collection(conn, name, "model-1", "general").id


def test_collections_are_created_listed_in_name_order_paged_and_deleted(store: Store) -> None:
    for name in ("b", "a", "B", "c"):
        _collection(store, name)
    assert [c.name for c in store.list_collections(None, 10)] == ["B", "a", "b", "c"]  # byte order, as SQLite
    assert [c.name for c in store.list_collections("a", 2)] == ["b", "c"]
    found = store.get_collection("a")
    assert found is not None and found.model == "model-1" and found.purpose == "general" and found.id > 0
    assert store.get_collection("missing") is None
    assert store.count_collections() == 4
    with store.transaction() as conn:
        assert store.delete_collection(conn, found.id) == 0
    assert store.get_collection("a") is None and store.count_collections() == 3


def test_a_duplicate_collection_name_is_an_integrity_error_and_changes_nothing(store: Store) -> None:
    _collection(store, "same")
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as conn:
        store.insert_collection(conn, "same", "m", "general")
    assert store.count_collections() == 1
    with store.transaction() as conn:  # the connection is usable after the failed transaction
        store.insert_collection(conn, "other", "m", "general")
    assert store.count_collections() == 2


def test_faces_round_trip_with_their_templates_sealed_or_plain(store: Store) -> None:
    cid = _collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [_face(1, external="Ann"), _face(2)], now=1000.5)
    assert keys[0] > 0 and keys[1] > keys[0]
    rows = store.faces_by_ids(cid, ["face-1", "face-2", "nope"])
    assert set(rows) == {"face-1", "face-2"}
    one = rows["face-1"]
    assert (one.key, one.image_id, one.external_image_id, one.user_id) == (keys[0], "image-1", "Ann", None)
    assert one.box == (0.1, 0.2, 0.3, 0.4) and one.pose == (1.5, -2.5, 3.0)  # doubles, not 4-byte floats
    assert (one.confidence, one.brightness, one.sharpness, one.created_at) == (0.99, 50.5, 60.25, 1000.5)
    assert set(store.faces_by_keys(cid, keys)) == set(keys)
    assert store.embedding(cid, keys[1]) == np.full(4, 2, dtype=np.float32).tobytes()
    assert dict(store.embeddings(cid)) == {k: np.full(4, n, dtype=np.float32).tobytes() for n, k in enumerate(keys, 1)}
    assert [k for k, _ in store.embeddings(cid, [keys[1]])] == [keys[1]]
    raw = bytes(store.connection().execute("SELECT embedding FROM faces WHERE id = ?", (keys[0],)).fetchone()[0])
    assert is_sealed(raw) == (store.keyring is not None)
    assert [f.face_id for f in store.list_faces(cid, after_key=0, limit=1)] == ["face-1"]
    assert [f.face_id for f in store.list_faces(cid, after_key=keys[0], limit=5)] == ["face-2"]
    assert sorted(store.face_keys(cid)) == keys
    assert store.counts(cid) == (2, 0)


def test_many_ids_are_looked_up_in_chunks(store: Store) -> None:
    cid = _collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [_face(n) for n in range(1200)])
    assert len(store.faces_by_keys(cid, keys)) == 1200
    assert len(records.face_ids_present(store.connection(), [f"face-{n}" for n in range(0, 1300)])) == 1200


def test_the_change_log_records_adds_and_deletes_in_order(store: Store) -> None:
    cid = _collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [_face(1), _face(2)])
    start = store.last_change(cid)
    with store.transaction() as conn:
        store.delete_faces(conn, cid, [keys[0]])
    changes = store.changes_since(cid, 0)
    assert [(k, op) for _, k, op in changes] == [(keys[0], "add"), (keys[1], "add"), (keys[0], "del")]
    assert [s for s, _, _ in changes] == sorted(s for s, _, _ in changes)
    assert store.changes_since(cid, start) == [changes[-1]]
    assert store.last_change(cid) == changes[-1][0]
    assert store.faces_by_keys(cid, keys).keys() == {keys[1]}


def test_users_are_created_associated_counted_and_deleted(store: Store) -> None:
    cid = _collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [_face(1), _face(2), _face(3)])
        store.insert_user(conn, cid, "u1")
        store.insert_user(conn, cid, "u0")
        store.set_user(conn, cid, keys[:2], "u1")
    user = store.get_user(cid, "u1")
    assert user is not None and user.face_count == 2
    assert [(u.user_id, u.face_count) for u in store.list_users(cid, None, 10)] == [("u0", 0), ("u1", 2)]
    assert store.count_user_faces(cid) == 2
    assert [f.key for f in records.faces_of_user(store.connection(), cid, "u1")] == keys[:2]
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as conn:
        store.insert_user(conn, cid, "u1")
    with store.transaction() as conn:
        store.delete_user(conn, cid, "u1")
    assert store.get_user(cid, "u1") is None and store.count_user_faces(cid) == 0


def test_consents_are_put_replaced_found_under_any_spelling_and_revoked(store: Store) -> None:
    with store.transaction() as conn:
        records.put_consent(conn, "Ann", "consent", 10.0, None, "h1", 11.0)
        records.put_consent(conn, "ANN", "contract", 20.0, 99.5, "h2", 21.0)
    found = records.get_consent(store.connection(), "ann")
    assert found == ("ANN", "contract", 20.0, 99.5, "h2", 21.0, None)
    with store.transaction() as conn:
        records.revoke_consent(conn, "Ann", 30.0)
    found = records.get_consent(store.connection(), "Ann")
    assert found is not None and found[6] == 30.0
    assert records.get_consent(store.connection(), "Bob") is None


def test_a_literal_percent_sign_and_question_mark_reach_the_database_as_written(store: Store) -> None:
    conn = store.connection()
    assert conn.execute("SELECT '100% ?'").fetchone()[0] == "100% ?"
    assert conn.execute("SELECT '100% ?', ?", ("x",)).fetchone() == ("100% ?", "x")


def test_reviews_are_stored_once(store: Store) -> None:
    with store.transaction() as conn:
        records.insert_review(conn, 7, "confirmed", "rev", "a note with 100% and ? in it", 8)
    assert records.get_review(store.connection(), 7) == (7, "confirmed", "rev", "a note with 100% and ? in it", 8)
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as conn:
        records.insert_review(conn, 7, "rejected", "rev", "", 9)
    assert records.get_review(store.connection(), 8) is None


def test_expiry_and_external_ids_select_faces(store: Store) -> None:
    cid = _collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [_face(1, external="Ann", expires_at=50.0), _face(2, external="ann")])
        records.set_expiry(conn, keys[1], 500.0)
    conn = store.connection()
    assert {f.key for f in records.faces_by_external_id(conn, "ANN")[cid]} == set(keys)
    assert [f.key for f in records.expired_faces(conn, 100.0)[cid]] == [keys[0]]
    assert records.live_face_count(conn, cid, 100.0) == 1
    assert len(records.faces_in_collection(conn, cid)) == 2


def test_the_audit_chain_appends_verifies_and_detects_an_edit(store: Store) -> None:
    with store.transaction() as conn:
        first = audit.append(conn, {"operation": "A", "note": "100% ?"})
        second = audit.append(conn, {"operation": "B"})
    assert (first.seq, second.seq, second.prev_hash) == (1, 2, first.hash)
    conn = store.connection()
    assert audit.head(conn) == audit.AuditHead(2, second.hash)
    assert [e.data["operation"] for e in audit.entries(conn)] == ["A", "B"]
    assert [e.seq for e in audit.entries(conn, after_seq=1, limit=5)] == [2]
    report = audit.verify_anchored(conn, store.heads)
    assert report.ok and report.entries == 2
    assert store.heads.heads()[-1].seq == 2  # the head file is local, beside the data
    with store.transaction() as c:
        c.execute("UPDATE audit_log SET entry = replace(entry, '\"A\"', '\"Z\"') WHERE seq = 1")
    report = audit.verify_anchored(store.connection(), store.heads)
    assert not report.ok and report.first_bad_seq == 1


def test_the_pseudonym_key_is_made_once(store: Store) -> None:
    with store.transaction() as conn:
        key = deployment_key(conn)
    with store.transaction() as conn:
        assert deployment_key(conn) == key and len(key) == 32


def test_ingested_hashes_are_recorded_replaced_and_erased_with_their_image(store: Store) -> None:
    cid = _collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [_face(1)])
        store.record_ingested(conn, cid, "h1", "image-1", 1.0)
        store.record_ingested(conn, cid, "h1", "image-1", 2.0)  # a rerun replaces
        store.record_ingested(conn, cid, "h2", "image-2", 1.0)
    assert store.ingested(cid, ["h1", "h2", "h3"]) == {"h1", "h2"}
    with store.transaction() as conn:
        store.delete_faces(conn, cid, keys)  # the trigger erases image-1's record
    assert store.ingested(cid, ["h1", "h2"]) == {"h2"}


def test_people_tables_and_crops_follow_their_faces(store: Store) -> None:
    cid = _collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [_face(1), _face(2), _face(3)])
        tables.set_members(conn, cid, [(keys[0], "p1"), (keys[1], "p1"), (keys[2], None)])
        tables.set_members(conn, cid, [(keys[2], "p2")])  # upsert
        tables.replace_clusters(conn, cid, [("p1", keys[0], 0.9), ("p2", keys[2], 1.0)])
        tables.replace_clusters(conn, cid, [("p1", keys[1], 0.8)])  # replaces p1
        tables.set_threshold(conn, cid, 0.5)
        tables.set_threshold(conn, cid, 0.6)
        assert tables.add_links(conn, cid, "cannot", [(keys[1], keys[0]), (keys[2], keys[2])]) == 1
    conn = store.connection()
    assert tables.members(conn, cid) == {keys[0]: "p1", keys[1]: "p1", keys[2]: "p2"}
    clusters = tables.clusters(conn, cid)
    assert [(c.cluster_id, c.representative, c.cohesion, c.size) for c in clusters] == [
        ("p1", keys[1], 0.8, 2),
        ("p2", keys[2], 1.0, 1),
    ]
    assert [c.cluster_id for c in tables.clusters(conn, cid, ["p2"])] == ["p2"]
    assert tables.threshold(conn, cid) == 0.6
    assert tables.links(conn, cid, "cannot") == [(keys[0], keys[1])]
    if store.keyring is not None:
        with store.transaction() as c:
            crops.insert_crops(c, store.keyring, cid, [(keys[0], "face-1", b"jpeg-bytes")])
        assert crops.read_crop(store.connection(), store.keyring, cid, "face-1") == b"jpeg-bytes"
        assert crops.crop_keys(store.connection(), keys) == {keys[0]}
    with store.transaction() as c:
        store.delete_faces(c, cid, [keys[0]])  # cascades: membership, links, crop
    conn = store.connection()
    assert keys[0] not in tables.members(conn, cid)
    assert tables.links(conn, cid, "cannot") == []
    assert crops.crop_keys(conn, keys) == set()
    assert tables.pending_keys(conn, cid) == []


def test_erasure_leaves_no_row_and_deleting_a_collection_cascades(store: Store) -> None:
    cid = _collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [_face(1), _face(2)])
        store.insert_user(conn, cid, "u")
    with store.transaction() as conn:
        store.delete_faces(conn, cid, [keys[0]])
    assert store.embedding(cid, keys[0]) is None
    with store.transaction() as conn:
        assert store.delete_collection(conn, cid) == 1
    conn = store.connection()
    for table in ("faces", "users", "changes", "collections"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_a_failed_transaction_commits_nothing(store: Store) -> None:
    cid = _collection(store)
    with pytest.raises(RuntimeError), store.transaction() as conn:
        store.insert_faces(conn, cid, [_face(1)])
        raise RuntimeError("stop")
    assert store.face_keys(cid) == [] and not store.connection().in_transaction


def test_reseal_moves_plain_templates_under_the_key(kind: str, url: str | None, tmp_path: Path) -> None:
    plain = _open(kind, tmp_path, url, None)
    cid = _collection(plain)
    with plain.transaction() as conn:
        keys = plain.insert_faces(conn, cid, [_face(1), _face(2)])
    plain.close()
    sealed = _open(kind, tmp_path, url, Keyring(KEYRING.current, plain_ok=True))
    with sealed.transaction() as conn:
        assert sealed.reseal_batch(conn, 0, 10) == (2, keys[1])
    assert sealed.embedding(cid, keys[0]) == np.full(4, 1, dtype=np.float32).tobytes()
    sealed.close()
