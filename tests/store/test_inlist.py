"""Statements over many values (store/inlist.py): chunks of placeholders on SQLite, one array on
PostgreSQL, and the same rows either way."""

from __future__ import annotations

from facetrust.store import records
from facetrust.store.inlist import CHUNK, in_chunks, select_in
from facetrust.store.protocol import FaceStore

from .conftest import collection, face


def test_many_keys_and_names_find_the_same_rows_on_either_store(store: FaceStore) -> None:
    cid = collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [face(n) for n in range(2 * CHUNK + 20)])
    ids = [face(n).face_id for n in range(2 * CHUNK + 20)]
    conn = store.connection()
    asked = [*ids[::2], "00000000-0000-4000-8000-999999999999"]  # more than a chunk's worth, one unknown
    assert sorted(records.face_ids_present(conn, asked)) == sorted(ids[::2])
    found = select_in(conn, "SELECT id FROM faces WHERE collection_id = ? AND id IN ({marks})", (cid,), keys[1::2])
    assert sorted(int(r[0]) for r in found) == keys[1::2] and len(keys[1::2]) > CHUNK
    assert list(select_in(conn, "SELECT id FROM faces WHERE id IN ({marks})", (), [])) == []


class _TakesArrays:
    takes_arrays = True


def test_a_connection_that_takes_arrays_gets_one_typed_array_and_others_get_chunks() -> None:
    assert list(in_chunks([1, 2, 3], _TakesArrays())) == [("SELECT unnest(?::bigint[])", [[1, 2, 3]])]
    assert list(in_chunks(["a", "b"], _TakesArrays())) == [("SELECT unnest(?::text[])", [["a", "b"]])]
    assert list(in_chunks([], _TakesArrays())) == []
    mixed = list(in_chunks([1, "a", True], _TakesArrays()))  # of neither kind: placeholders, as on SQLite
    assert mixed == [("?,?,?", [1, "a", True])]
    plain = list(in_chunks(list(range(CHUNK + 1)), None))
    assert [len(chunk) for _, chunk in plain] == [CHUNK, 1] and plain[1] == ("?", [CHUNK])
