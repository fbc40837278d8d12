"""The store contract: what every ``FaceStore`` (store/protocol.py) must do, as the operations rely on it.

Each test runs against every store in ``STORES`` (tests/store/conftest.py: SQLite and PostgreSQL,
templates sealed and plain), as tests/index/test_contract.py does for indexes;
test_contract_records.py holds the contract of the SQL helper modules and the rest of the schema.
"""

from __future__ import annotations

import pytest

from facetrust.governance import audit
from facetrust.store import records
from facetrust.store.protocol import FaceStore

from .conftest import collection as _collection
from .conftest import face as _face


def test_a_collection_is_found_by_name_listed_in_order_made_and_paged(store: FaceStore) -> None:
    for name in ("beta", "alpha", "gamma"):
        _collection(store, name)
    found = store.get_collection("alpha")
    assert found is not None and (found.name, found.model, found.purpose) == ("alpha", "model-a", "general")
    assert store.get_collection("missing") is None
    assert [r.name for r in store.list_collections(0, 2)] == ["beta", "alpha"]
    assert [r.name for r in store.list_collections(found.id, 10)] == ["gamma"]
    assert store.count_collections() == 3


def test_faces_are_read_back_by_id_and_by_key_with_their_templates(store: FaceStore) -> None:
    cid = _collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [_face(1, "alice"), _face(2)], now=1000.0)
    by_id = store.faces_by_ids(cid, [_face(1).face_id, "00000000-0000-4000-8000-999999999999"])
    assert list(by_id) == [_face(1).face_id]
    row = by_id[_face(1).face_id]
    assert (row.key, row.external_image_id, row.created_at, row.box, row.pose) == (
        keys[0],
        "alice",
        1000.0,
        (0.1, 0.2, 0.3, 0.4),
        (1.0, 2.0, 3.0),
    )
    assert set(store.faces_by_keys(cid, keys)) == set(keys)
    assert store.embedding(cid, keys[1]) == _face(2).embedding  # sealed or not, read back as stored
    assert dict(store.embeddings(cid)) == {keys[0]: _face(1).embedding, keys[1]: _face(2).embedding}
    assert store.face_keys(cid) == sorted(keys)
    assert store.counts(cid) == (2, 0)


def test_the_change_log_numbers_every_addition_and_deletion_in_order(store: FaceStore) -> None:
    cid = _collection(store)
    start = store.last_change(cid)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [_face(1), _face(2)])
    with store.transaction() as conn:
        store.delete_faces(conn, cid, [keys[0]])
    changes = store.changes_since(cid, start)
    assert [(key, op) for _, key, op in changes] == [(keys[0], "add"), (keys[1], "add"), (keys[0], "del")]
    assert [seq for seq, _, _ in changes] == sorted(seq for seq, _, _ in changes)
    assert store.last_change(cid) == changes[-1][0]
    assert store.changes_since(cid, changes[-1][0]) == []
    assert store.faces_by_keys(cid, keys).keys() == {keys[1]}


def test_deleting_many_faces_at_once_deletes_those_logs_each_and_stales_their_holders(store: FaceStore) -> None:
    import numpy as np

    from facetrust.store import tailstats
    from facetrust.store.inlist import CHUNK

    cid = _collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [_face(n) for n in range(CHUNK * 2 + 3)])
        held = {keys[-1]: [keys[0], keys[CHUNK + 1]], keys[-2]: [keys[-1]]}  # two faces kept, whose tops held others
        tails = {
            k: tailstats.FaceTail(np.ones(2, np.float32), np.array(n, np.int64), keys[-1]) for k, n in held.items()
        }
        tailstats.put(conn, cid, tails, 2)
    start = store.last_change(cid)
    gone = keys[: CHUNK * 2 + 1]  # more than two IN (…) chunks
    with store.transaction() as conn:
        store.delete_faces(conn, cid, gone)
    assert store.face_keys(cid) == keys[CHUNK * 2 + 1 :]
    assert [(k, op) for _, k, op in store.changes_since(cid, start)] == [(k, "del") for k in gone]
    conn = store.connection()
    assert tailstats.stale(conn, cid, 10) == [keys[-1]]  # its top held erased faces; keys[-2]'s did not
    assert tailstats.lacking(conn, [keys[-2]]) == {}  # its row stays fresh
    refs = conn.execute("SELECT count(*) FROM face_tail_refs WHERE neighbour_key IN (?, ?)", (keys[0], keys[CHUNK + 1]))
    assert refs.fetchone()[0] == 0


def test_a_failed_transaction_writes_nothing(store: FaceStore) -> None:
    cid = _collection(store)
    with pytest.raises(RuntimeError, match="stop"):
        with store.transaction() as conn:
            store.insert_faces(conn, cid, [_face(1)])
            raise RuntimeError("stop")
    assert store.counts(cid) == (0, 0)
    assert store.changes_since(cid, 0) == []


def test_users_group_faces_and_count_them(store: FaceStore) -> None:
    cid = _collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [_face(1), _face(2), _face(3)])
        store.insert_user(conn, cid, "alice")
        store.insert_user(conn, cid, "bob")
        store.set_user(conn, cid, keys[:2], "alice")
    alice = store.get_user(cid, "alice")
    assert alice is not None and alice.face_count == 2
    assert [f.key for f in store.list_faces(cid, after_key=0, limit=10, user_id="alice")] == keys[:2]
    assert [u.user_id for u in store.list_users(cid, None, 10)] == ["alice", "bob"]
    assert store.count_user_faces(cid, now=0.0) == 2
    with store.transaction() as conn:
        store.delete_user(conn, cid, "alice")
    assert store.get_user(cid, "alice") is None
    assert all(f.user_id is None for f in store.faces_by_keys(cid, keys).values())  # faces stay, unassociated


def test_faces_by_keys_with_users_only_reads_only_the_faces_of_a_user(store: FaceStore) -> None:
    cid = _collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [_face(n) for n in range(1, 7)])
        store.insert_user(conn, cid, "alice")
        store.insert_user(conn, cid, "bob")
        store.set_user(conn, cid, keys[1:3], "alice")
        store.set_user(conn, cid, keys[4:5], "bob")
    found = store.faces_by_keys(cid, keys, users_only=True)
    assert sorted(found) == [keys[1], keys[2], keys[4]]
    assert {k: f.user_id for k, f in found.items()} == {keys[1]: "alice", keys[2]: "alice", keys[4]: "bob"}
    with store.snapshot() as conn:  # on a caller's connection too, and the keys without a user are left out
        assert store.faces_by_keys(cid, [keys[0], keys[3], keys[5]], conn, users_only=True) == {}
    assert sorted(store.faces_by_keys(cid, keys)) == sorted(keys)  # without it, every face asked for


def test_deleting_a_collection_removes_its_faces_users_and_changes(store: FaceStore) -> None:
    cid = _collection(store)
    other = _collection(store, "other")
    with store.transaction() as conn:
        store.insert_faces(conn, cid, [_face(1), _face(2)])
        kept = store.insert_faces(conn, other, [_face(3)])
        store.insert_user(conn, cid, "alice")
    with store.transaction() as conn:
        assert store.delete_collection(conn, cid) == 2
    assert store.get_collection("staff") is None
    assert store.counts(cid) == (0, 0) and store.changes_since(cid, 0) == []
    assert list(store.faces_by_keys(other, kept)) == kept


def test_ingested_images_are_remembered_per_collection(store: FaceStore) -> None:
    cid, other = _collection(store), _collection(store, "other")
    with store.transaction() as conn:
        store.record_ingested(conn, cid, "a" * 64, "image-1", 1.0)
    assert store.ingested(cid, ["a" * 64, "b" * 64]) == {"a" * 64}
    assert store.ingested(other, ["a" * 64]) == set()


def test_the_audit_chain_commits_with_its_operation_and_anchors_its_head(store: FaceStore) -> None:
    with store.transaction() as conn:
        entry = audit.append(conn, {"operation": "Test"})
    assert store.heads.heads()[-1] == audit.AuditHead(entry.seq, entry.hash)
    with store.snapshot() as conn:
        assert audit.verify_anchored(conn, store.heads).ok


def test_a_snapshot_reads_what_was_committed(store: FaceStore) -> None:
    cid = _collection(store)
    with store.transaction() as conn:
        store.insert_faces(conn, cid, [_face(1, "alice")])
    with store.snapshot() as conn:
        assert records.live_face_count(conn, cid, 0.0) == 1
        assert store.counts(cid, conn) == (1, 0)
