"""Pruning the change log (store/changelog.py), the same on every store: rows go once a mark at least
the bound old covers them, each collection's newest stays (without its face key), a backlog goes a
bounded batch at a time, and ``change_log_reaches`` says which positions still find every change."""

from __future__ import annotations

from facetrust.store import changelog
from facetrust.store.protocol import FaceStore

from .conftest import collection, face

DAY = 86400.0
T0 = 1_750_000_000.0


def _add(store: FaceStore, collection_id: int, first: int, count: int) -> list[int]:
    with store.transaction() as conn:
        return store.insert_faces(conn, collection_id, [face(n) for n in range(first, first + count)])


def _prune(store: FaceStore, now: float, *, limit: int = changelog.PRUNE_ROWS) -> int:
    with store.transaction() as conn:
        return changelog.prune(conn, now, 7 * DAY, limit=limit)


def _log(store: FaceStore) -> list[tuple[int, int, int, str]]:
    rows = store.connection().execute("SELECT seq, collection_id, face_key, op FROM changes ORDER BY seq")
    return [(int(s), int(c), int(k), str(op)) for s, c, k, op in rows]


def test_rows_go_only_once_a_mark_the_bound_old_covers_them_and_each_collections_newest_stays(
    store: FaceStore,
) -> None:
    quiet, busy = collection(store, "quiet"), collection(store, "busy")
    _add(store, quiet, 0, 2)
    keys = _add(store, busy, 10, 3)
    with store.transaction() as conn:
        store.delete_faces(conn, busy, keys[:1])
    assert _prune(store, T0) == 0  # marks the log's newest: the deletion
    marked = _log(store)
    _add(store, busy, 20, 2)  # after the mark: kept however old
    assert _prune(store, T0 + 7 * DAY - 1) == 0  # the mark is not yet the bound old

    assert _prune(store, T0 + 7 * DAY) == 5  # up to the mark: all but quiet's newest (busy has newer)
    left = _log(store)
    assert left[0] == (marked[1][0], quiet, 0, "add")  # quiet's newest, older than the bound: no face key
    assert [(c, op) for _, c, _, op in left[1:]] == [(busy, "add"), (busy, "add")]
    assert all(key > 0 for _, _, key, _ in left[1:])
    floor = marked[-1][0]
    with store.snapshot() as conn:
        assert changelog.pruned_to(conn) == floor
    assert store.last_change(quiet) == marked[1][0] and store.last_change(busy) == left[-1][0]
    assert store.change_log_reaches(busy, floor)
    assert not store.change_log_reaches(busy, marked[2][0])  # its later rows up to the floor are gone
    assert store.change_log_reaches(quiet, marked[1][0])  # its newest row: nothing of it after was pruned
    assert not store.change_log_reaches(quiet, 0)


def test_a_backlog_is_pruned_a_bounded_batch_a_sweep(store: FaceStore) -> None:
    c = collection(store)
    _add(store, c, 0, 10)
    _prune(store, T0)
    assert _prune(store, T0 + 8 * DAY, limit=4) == 4
    with store.snapshot() as conn:
        first = changelog.pruned_to(conn)
    assert _prune(store, T0 + 8 * DAY + 3600, limit=4) == 4
    assert _prune(store, T0 + 8 * DAY + 7200, limit=4) == 1  # the newest stays
    assert [op for *_, op in _log(store)] == ["add"] and first < store.last_change(c)
    assert _prune(store, T0 + 9 * DAY, limit=4) == 0


def test_a_mark_written_by_a_clock_far_ahead_is_dropped_and_pruning_goes_on(store: FaceStore) -> None:
    c = collection(store)
    _add(store, c, 0, 3)
    _prune(store, T0 + 300 * 365 * DAY)  # a sweep whose clock ran three centuries ahead
    _add(store, c, 3, 3)
    assert _prune(store, T0) == 0  # the far mark is dropped; this one marks the log anew
    assert _prune(store, T0 + 7 * DAY) == 5
    assert len(_log(store)) == 1
