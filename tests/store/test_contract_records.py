"""The rest of the store contract: the schema's other tables, through the SQL helper modules
(records, people, crops, pseudonyms) and the store, on every store of tests/store/conftest.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from facetrust.governance import audit
from facetrust.governance.pseudonyms import deployment_key
from facetrust.store import crops, records
from facetrust.store import people as tables
from facetrust.store.faces import Resealed
from facetrust.store.protocol import FaceStore
from facetrust.store.sealing import Keyring, is_sealed

from .conftest import KEYRING, STORES
from .conftest import collection as _collection
from .conftest import face as _face


def test_user_ids_sort_and_page_in_byte_order(store: FaceStore) -> None:
    # collections page by row id (ListCollections' tokens must stay short); users still by name
    cid = _collection(store)
    with store.transaction() as conn:
        for user in ("b", "a", "B", "c", "a:b", "a-b"):
            store.insert_user(conn, cid, user)
    assert [u.user_id for u in store.list_users(cid, None, 10)] == ["B", "a", "a-b", "a:b", "b", "c"]
    assert [u.user_id for u in store.list_users(cid, "a:b", 2)] == ["b", "c"]


def test_a_duplicate_is_an_integrity_error_that_leaves_the_connection_usable(store: FaceStore) -> None:
    cid = _collection(store, "same")
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as conn:
        store.insert_collection(conn, "same", "m", "general")
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as conn:
        store.insert_user(conn, cid, "u")
        store.insert_user(conn, cid, "u")
    assert store.count_collections() == 1 and store.get_user(cid, "u") is None
    with store.transaction() as conn:
        store.insert_collection(conn, "other", "m", "general")
    assert store.count_collections() == 2


def test_templates_are_sealed_at_rest_exactly_when_a_keyring_is_given_and_reals_are_doubles(store: FaceStore) -> None:
    cid = _collection(store)
    new = _face(1)
    with store.transaction() as conn:
        (key,) = store.insert_faces(conn, cid, [new], now=1000.123456789)
    raw = bytes(store.connection().execute("SELECT embedding FROM faces WHERE id = ?", (key,)).fetchone()[0])
    assert is_sealed(raw) == (store.keyring is not None) and (raw == new.embedding) == (store.keyring is None)
    assert store.faces_by_keys(cid, [key])[key].created_at == 1000.123456789  # 8-byte floats, not 4


def test_many_ids_are_looked_up_in_chunks(store: FaceStore) -> None:
    cid = _collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [_face(n) for n in range(1200)])
    assert len(store.faces_by_keys(cid, keys)) == 1200
    assert len(records.face_ids_present(store.connection(), [_face(n).face_id for n in range(1300)])) == 1200


def test_a_literal_percent_sign_and_question_mark_reach_the_database_as_written(store: FaceStore) -> None:
    conn = store.connection()
    assert conn.execute("SELECT '100% ?'").fetchone()[0] == "100% ?"
    assert conn.execute("SELECT '100% ?', ?", ("x",)).fetchone() == ("100% ?", "x")


def test_consents_are_put_replaced_found_under_any_spelling_and_revoked(store: FaceStore) -> None:
    with store.transaction() as conn:
        records.put_consent(conn, "Ann", "consent", 10.0, None, "h1", 11.0)
        records.put_consent(conn, "ANN", "contract", 20.0, 99.5, "h2", 21.0)
    assert records.get_consent(store.connection(), "ann") == ("ANN", "contract", 20.0, 99.5, "h2", 21.0, None)
    with store.transaction() as conn:
        records.revoke_consent(conn, "Ann", 30.0)
    found = records.get_consent(store.connection(), "Ann")
    assert found is not None and found[6] == 30.0
    assert records.get_consent(store.connection(), "Bob") is None


def test_reviews_are_stored_once(store: FaceStore) -> None:
    with store.transaction() as conn:
        records.insert_review(conn, 7, "confirmed", "rev", "a note with 100% and ? in it", 8)
    assert records.get_review(store.connection(), 7) == (7, "confirmed", "rev", "a note with 100% and ? in it", 8)
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as conn:
        records.insert_review(conn, 7, "rejected", "rev", "", 9)
    assert records.get_review(store.connection(), 8) is None


def test_the_audit_log_leaves_out_the_searches_a_review_names_when_asked(store: FaceStore) -> None:
    with store.transaction() as conn:
        seqs = [audit.append(conn, {"operation": "SearchFaces", "review_required": True}).seq for _ in range(3)]
        records.insert_review(conn, seqs[1], "confirmed", "rev", "", 9)
    conn = store.connection()
    waiting = audit.entries(conn, containing='"review_required":true', unreviewed=True)
    assert [e.seq for e in waiting] == [seqs[0], seqs[2]]
    assert [e.seq for e in audit.entries(conn)] == seqs  # the log itself keeps them all


def test_expiry_external_ids_and_users_select_faces(store: FaceStore) -> None:
    cid = _collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [_face(1, "Ann", expires_at=50.0), _face(2, "ann")])
        records.set_expiry(conn, keys[1], 500.0)
        store.insert_user(conn, cid, "u1")
        store.set_user(conn, cid, keys[:1], "u1")
    conn = store.connection()
    assert {f.key for f in records.faces_by_external_id(conn, "ANN")[cid]} == set(keys)
    assert records.expired_in_order(conn, 100.0) == [(cid, (keys[0], _face(1).face_id))]
    assert records.live_face_count(conn, cid, 100.0) == 1
    assert records.face_keys_in_collection(conn, cid) == [(keys[0], _face(1).face_id), (keys[1], _face(2).face_id)]
    assert [f.key for f in records.faces_of_user(conn, cid, "u1")] == keys[:1]


def test_the_audit_chain_lists_its_entries_and_detects_an_edit(store: FaceStore) -> None:
    with store.transaction() as conn:
        first = audit.append(conn, {"operation": "A", "note": "100% ?"})
        second = audit.append(conn, {"operation": "B"})
    assert (first.seq, second.seq, second.prev_hash) == (1, 2, first.hash)
    conn = store.connection()
    assert audit.head(conn) == audit.AuditHead(2, second.hash)
    assert [e.data["operation"] for e in audit.entries(conn)] == ["A", "B"]
    assert [e.seq for e in audit.entries(conn, after_seq=1, limit=5)] == [2]
    with store.transaction() as c:
        c.execute("UPDATE audit_log SET entry = replace(entry, '\"A\"', '\"Z\"') WHERE seq = 1")
    report = audit.verify_anchored(store.connection(), store.heads)
    assert not report.ok and report.first_bad_seq == 1


def test_the_pseudonym_key_is_made_once(store: FaceStore) -> None:
    with store.transaction() as conn:
        key = deployment_key(conn)
    with store.transaction() as conn:
        assert deployment_key(conn) == key and len(key) == 32


def test_ingested_hashes_are_replaced_on_a_rerun_and_erased_with_their_image(store: FaceStore) -> None:
    cid = _collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [_face(1)])
        store.record_ingested(conn, cid, "h1", "image-1", 1.0)
        store.record_ingested(conn, cid, "h1", "image-1", 2.0)
        store.record_ingested(conn, cid, "h2", "image-2", 1.0)
    assert store.ingested(cid, ["h1", "h2", "h3"]) == {"h1", "h2"}
    with store.transaction() as conn:
        store.delete_faces(conn, cid, keys)  # the trigger erases image-1's record
    assert store.ingested(cid, ["h1", "h2"]) == {"h2"}


def test_a_batch_of_ingested_hashes_is_recorded_at_once_and_replaces_earlier_records(store: FaceStore) -> None:
    cid = _collection(store)
    with store.transaction() as conn:
        store.record_ingested(conn, cid, "h1", "image-0", 1.0)
        store.record_ingested_many(conn, cid, [("h1", "image-1"), ("h2", "image-2"), ("h3", "image-3")], 2.0)
        store.record_ingested_many(conn, cid, [], 3.0)  # an empty batch writes nothing
    assert store.ingested(cid, ["h1", "h2", "h3", "h4"]) == {"h1", "h2", "h3"}
    rows = store.connection().execute(
        "SELECT sha256, image_id, indexed_at FROM ingested_images WHERE collection_id = ? ORDER BY sha256", (cid,)
    )
    assert [tuple(r) for r in rows] == [("h1", "image-1", 2.0), ("h2", "image-2", 2.0), ("h3", "image-3", 2.0)]


def test_people_tables_and_crops_follow_their_faces(store: FaceStore) -> None:
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
    found = [(c.cluster_id, c.representative, c.cohesion, c.size) for c in tables.clusters(conn, cid, 0.0)]
    assert found == [("p1", keys[1], 0.8, 2), ("p2", keys[2], 1.0, 1)]
    assert [c.cluster_id for c in tables.clusters(conn, cid, 0.0, ["p2"])] == ["p2"]
    assert tables.member_keys(conn, cid, "p1", 0.0) == [keys[0], keys[1]]
    assert tables.threshold(conn, cid) == 0.6
    assert tables.links(conn, cid, "cannot") == [(keys[0], keys[1])]
    with store.transaction() as c:
        crops.insert_crops(c, KEYRING, cid, [(keys[0], _face(1).face_id, b"jpeg-bytes")])
    assert crops.read_crop(store.connection(), KEYRING, cid, _face(1).face_id) == b"jpeg-bytes"
    assert crops.crop_keys(store.connection(), keys) == {keys[0]}
    with store.transaction() as c:
        store.delete_faces(c, cid, [keys[0]])  # cascades: membership, links, crop
    conn = store.connection()
    assert keys[0] not in tables.members(conn, cid)
    assert tables.links(conn, cid, "cannot") == [] and crops.crop_keys(conn, keys) == set()
    assert tables.pending_keys(conn, cid) == []


def test_people_tables_count_only_faces_not_expired(store: FaceStore) -> None:
    cid = _collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(
            conn, cid, [_face(1, expires_at=100.0), _face(2), _face(3, expires_at=100.0), _face(4, expires_at=50.0)]
        )
        tables.set_members(conn, cid, [(keys[0], "p1"), (keys[1], "p1"), (keys[2], "p2"), (keys[3], None)])
        tables.replace_clusters(conn, cid, [("p1", keys[0], 0.9), ("p2", keys[2], 1.0)])
        store.insert_user(conn, cid, "u")
        store.set_user(conn, cid, [keys[0]], "u")
    conn = store.connection()
    before = [(c.cluster_id, c.size) for c in tables.clusters(conn, cid, 10.0)]
    assert before == [("p1", 2), ("p2", 1)] and tables.unclustered(conn, cid, 10.0) == 1
    assert tables.cluster_users(conn, cid, 10.0, ["p1"]).get("p1") == "u"
    assert tables.cluster_users(conn, cid, 10.0, ["p1", "p2"]) == {"p1": "u"}  # p2 has no user
    assert tables.cluster_users(conn, cid, 10.0, ["p2"]) == {}
    # at 100 faces 1 and 3 have expired (and face 4 at 50): p2 is nobody, p1 is face 2 alone
    assert [(c.cluster_id, c.size) for c in tables.clusters(conn, cid, 100.0)] == [("p1", 1)]
    assert tables.clusters(conn, cid, 100.0, ["p2"]) == []
    assert tables.member_keys(conn, cid, "p1", 100.0) == [keys[1]]
    assert tables.member_keys(conn, cid, "p2", 100.0) == []
    assert tables.cluster_users(conn, cid, 100.0, ["p1"]).get("p1") is None
    assert tables.cluster_users(conn, cid, 100.0, ["p1", "p2"]) == {}
    assert tables.unclustered(conn, cid, 60.0) == 0


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_reseal_moves_plain_templates_under_the_key(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue("pg_url")) if kind == "postgresql" else None
    plain = STORES[kind](tmp_path, url)
    cid = _collection(plain)
    with plain.transaction() as conn:
        keys = plain.insert_faces(conn, cid, [_face(1), _face(2)])
    plain.close()
    sealed = STORES[kind + "-sealed"](tmp_path, url)
    sealed.keyring = Keyring(KEYRING.current, plain_ok=True)
    with sealed.transaction() as conn:
        assert sealed.reseal_batch(conn, 0, 10) == Resealed(2, 0, keys[1])
    assert sealed.embedding(cid, keys[0]) == _face(1).embedding
    sealed.close()
