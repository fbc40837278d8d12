"""The signatures seen, on every store: first use, honest repeat, replay, and a table that cannot grow without bound."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import threading
from pathlib import Path

from facetrust.store import signatures
from facetrust.store.postgres import PostgresStore
from facetrust.store.protocol import FaceStore
from facetrust.store.sqlite import PRUNE_EVERY, REPLAYS_NAME, Store


def digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def admit(store: FaceStore, name: str, signed_at: float, now: float, repeat_s: float = 10.0) -> str | None:
    return store.admit_signature(digest(name), signed_at, now, repeat_s=repeat_s, window_s=300.0)


def record(store: FaceStore) -> sqlite3.Connection:
    """The connection to the table of the signatures seen (on SQLite, replays.db; on PostgreSQL, the database)."""
    assert isinstance(store, Store)
    return store.signatures_connection()


def rows(store: FaceStore) -> int:
    return int(record(store).execute("SELECT count(*) FROM seen_signatures").fetchone()[0])


def test_a_signature_is_admitted_repeated_within_the_window_and_then_refused_as_a_replay(store: FaceStore) -> None:
    assert admit(store, "a", signed_at=1000.0, now=1000.0) is None
    assert admit(store, "a", signed_at=1000.0, now=1009.5) is None  # an honest repeat, 9.5 s after

    assert admit(store, "a", signed_at=1000.0, now=1011.0) == signatures.replayed(11)
    assert admit(store, "a", signed_at=1000.0, now=1011.0) == (
        "Signature replayed: this signed request was first accepted 11 s ago; sign each request anew"
    )
    assert admit(store, "b", signed_at=1000.0, now=1011.0) is None  # another signature is its own
    assert admit(store, "c", signed_at=1000.0, now=1000.0, repeat_s=0) is None
    assert admit(store, "c", signed_at=1000.0, now=1000.0, repeat_s=0) == signatures.replayed(0)


def test_two_stores_over_one_database_share_the_signatures_seen(store: FaceStore, tmp_path: Path) -> None:
    if isinstance(store, PostgresStore):  # another replica: its own data directory, the same database
        other: FaceStore = PostgresStore(tmp_path / "other" / "facetrust.db", store.url)
    else:  # another process over the same data directory
        assert isinstance(store, Store)
        other = Store(store.path)
    try:
        assert admit(store, "a", signed_at=1000.0, now=1000.0) is None
        assert admit(other, "a", signed_at=1000.0, now=1005.0) is None  # a repeat, seen from the other one
        assert admit(other, "a", signed_at=1000.0, now=1020.0) == signatures.replayed(20)
        assert admit(store, "a", signed_at=1000.0, now=1021.0) == signatures.replayed(21)
    finally:
        other.close()


def test_of_many_threads_presenting_one_signature_at_once_one_is_first_and_late_ones_are_all_refused(
    store: FaceStore,
) -> None:
    assert admit(store, "a", signed_at=1000.0, now=1000.0) is None
    outcomes: list[str | None] = []
    barrier = threading.Barrier(6)

    def late() -> None:
        barrier.wait()
        outcomes.append(admit(store, "a", signed_at=1000.0, now=1060.0))

    threads = [threading.Thread(target=late) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert outcomes == [signatures.replayed(60)] * 6
    assert rows(store) == 1


def test_expired_signatures_are_pruned_a_bounded_batch_at_a_time(store: FaceStore) -> None:
    conn = record(store)
    conn.executemany(
        "INSERT INTO seen_signatures(digest, signed_at, first_at, uses) VALUES (?, ?, ?, ?)",
        [(digest(f"old{i}"), 100.0 + i, 100.0 + i, 1) for i in range(5)] + [(digest("live"), 1000.0, 1000.0, 1)],
    )
    now = 1000.0 + 10  # the old ones' windows (300 s) closed long before; "live" is within its own

    assert signatures.prune(conn, now, 300.0, limit=3) == 3
    assert signatures.prune(conn, now, 300.0, limit=3) == 2
    assert signatures.prune(conn, now, 300.0, limit=3) == 0
    assert rows(store) == 1
    assert admit(store, "live", signed_at=1000.0, now=now + 1) == signatures.replayed(11)


def test_admitting_signatures_prunes_expired_ones_as_it_goes(store: FaceStore) -> None:
    calls = 3 * PRUNE_EVERY
    for i in range(calls):  # each signed and presented 10 s after the last; the window is 300 s
        assert admit(store, f"s{i}", signed_at=float(i * 10), now=float(i * 10)) is None

    last_prune = float((calls - 1) * 10)  # the last call pruned what was signed before last_prune - 360
    oldest = last_prune - 300.0 - signatures.PRUNE_MARGIN_S
    kept = record(store).execute("SELECT min(signed_at), count(*) FROM seen_signatures").fetchone()
    assert (float(kept[0]), int(kept[1])) == (oldest, int((last_prune - oldest) / 10) + 1)


def test_a_replay_check_on_sqlite_is_not_blocked_by_a_write_transaction_held_on_the_main_database(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "facetrust.db")
    writer = sqlite3.connect(store.path, isolation_level=None)  # a long import, in another process or thread
    answers: list[str | None] = []
    try:
        writer.execute("BEGIN IMMEDIATE")
        checking = threading.Thread(target=lambda: answers.append(admit(store, "a", signed_at=1000.0, now=1000.0)))
        checking.start()
        checking.join(timeout=5.0)  # on the main database it would wait for the lock (30 s), then fail

        assert not checking.is_alive(), "the replay check waited for the main database's write lock"
        assert answers == [None]
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        store.close()


def test_the_replay_record_on_sqlite_is_its_own_private_file_in_the_data_directory(tmp_path: Path) -> None:
    store = Store(tmp_path / "facetrust.db")
    try:
        assert admit(store, "a", signed_at=1000.0, now=1000.0) is None
        main = {str(r[0]) for r in store.connection().execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

        assert "seen_signatures" not in main
        assert stat.S_IMODE(os.stat(tmp_path / REPLAYS_NAME).st_mode) == 0o600
        assert rows(store) == 1
    finally:
        store.close()
