"""Store.transaction: a failed transaction leaves the connection usable and its error visible."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.store.sqlite import Store
from pg_cluster import SQLITE_FILES


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "facetrust.db")
    yield s
    s.close()


def _users(store: Store) -> int:
    return int(store.connection().execute("SELECT count(*) FROM users").fetchone()[0])


def test_a_failed_commit_is_rolled_back_and_the_next_transaction_works(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        with store.transaction() as conn:
            conn.execute("PRAGMA defer_foreign_keys=ON")  # the violation surfaces at COMMIT
            conn.execute("INSERT INTO users (collection_id, user_id, created_at) VALUES (999, 'ghost', 0)")
    assert not store.connection().in_transaction
    with store.transaction() as conn:  # BEGIN IMMEDIATE would fail inside a still-open transaction
        conn.execute("SELECT 1")
    assert _users(store) == 0


def test_an_error_after_sqlite_ended_the_transaction_is_raised_as_it_was(store: Store) -> None:
    with pytest.raises(ValueError, match="the real error"):
        with store.transaction() as conn:
            conn.execute("ROLLBACK")  # as SQLite does by itself after some I/O errors
            raise ValueError("the real error")
    with store.snapshot() as conn:
        conn.execute("ROLLBACK")
    with store.transaction():
        pass


def test_a_checkpoint_a_reader_blocks_is_due_until_a_retry_completes_it(store: Store, tmp_path: Path) -> None:
    from .conftest import collection, face

    cid = collection(store)  # type: ignore[arg-type]
    template = face(7).embedding
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [face(7)])
    assert store.checkpoint() and store.retry_checkpoint()  # nothing due
    reader = sqlite3.connect(tmp_path / "facetrust.db")
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM faces").fetchone()  # holds the snapshot that still has the face
    store._conn().execute("PRAGMA busy_timeout=50")
    with store.transaction() as conn:
        store.delete_faces(conn, cid, keys)

    assert not store.checkpoint()  # the reader's snapshot needs the old pages: not folded yet
    assert not store.retry_checkpoint()
    reader.rollback()
    reader.close()
    assert store.retry_checkpoint() and store.retry_checkpoint()  # completed, and then nothing is due
    files = [tmp_path / "facetrust.db", tmp_path / "facetrust.db-wal"]
    assert not any(template in f.read_bytes() for f in files if f.exists())


def _lock_held(path: Path) -> sqlite3.Connection:
    """Another process's long write (an upgrade, an import): its write lock on ``path``, held."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_a_store_locked_longer_than_the_busy_timeout_is_store_busy_not_a_sqlite_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facetrust.errors import StoreBusyError
    from facetrust.store import busy

    monkeypatch.setattr(busy, "BUSY_TIMEOUT_S", 0.2)
    Store(tmp_path / "facetrust.db").close()  # made before the lock
    other = _lock_held(tmp_path / "facetrust.db")
    try:
        with pytest.raises(StoreBusyError, match=rf"^Data directory {tmp_path} is locked by another process .* 0\.2 s"):
            Store(tmp_path / "facetrust.db")  # opening takes the write lock to make the schema
        other.execute("COMMIT")
        store = Store(tmp_path / "facetrust.db")
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreBusyError), store.transaction() as conn:
                conn.execute("INSERT INTO meta(key, value) VALUES ('x', 'y')")
            other.execute("COMMIT")
            with store.transaction() as conn:  # the lock gone, the same connection writes again
                conn.execute("INSERT INTO meta(key, value) VALUES ('x', 'y')")
        finally:
            store.close()
    finally:
        other.close()


def test_a_second_process_opening_an_old_store_while_another_upgrades_it_is_told_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facetrust.errors import StoreBusyError
    from facetrust.store import busy

    monkeypatch.setattr(busy, "BUSY_TIMEOUT_S", 0.2)
    store = Store(tmp_path / "facetrust.db")
    with store.transaction() as conn:
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")  # an older facetrust's store
    store.close()
    other = _lock_held(tmp_path / "facetrust.db")  # the first process, upgrading it
    try:
        with pytest.raises(StoreBusyError, match="an upgrade of an older store"):
            Store(tmp_path / "facetrust.db")
    finally:
        other.close()
    Store(tmp_path / "facetrust.db").close()  # once it is done, the store opens (and is upgraded)


_KILLED_AFTER_AN_ERASURE = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from conftest import collection, face
from facetrust.store.sqlite import Store
store = Store(Path(sys.argv[1]) / "facetrust.db")
cid = collection(store)
with store.transaction() as conn:
    keys = store.insert_faces(conn, cid, [face(7)])
assert store.checkpoint()  # the template is in facetrust.db itself
with store.transaction() as conn:
    store.delete_faces(conn, cid, keys)
os.kill(os.getpid(), signal.SIGKILL)  # kill -9 between the erasure's commit and its checkpoint
"""


@SQLITE_FILES  # SQLite's WAL
def test_a_checkpoint_a_killed_process_left_undone_is_due_when_the_store_opens_again(tmp_path: Path) -> None:
    import subprocess
    import sys

    from .conftest import face

    template = face(7).embedding
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_AN_ERASURE, str(tmp_path), str(Path(__file__).parent)], check=False
    )
    assert child.returncode == -9
    files = lambda: [p for p in tmp_path.iterdir() if p.is_file()]  # noqa: E731
    assert any(template in p.read_bytes() for p in files())  # the erased row's old page is still in facetrust.db

    store = Store(tmp_path / "facetrust.db")  # the next process (a server: its periodic step retries it)
    try:
        assert store.retry_checkpoint()
        for path in files():
            assert template not in path.read_bytes(), path
    finally:
        store.close()


_ERASED_THEN_KILLED = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from facetrust.store.sqlite import Store
store = Store(Path(sys.argv[1]) / "facetrust.db")
cid = store.get_collection("staff").id
with store.transaction() as conn:
    store.delete_faces(conn, cid, store.face_keys(cid))
os.kill(os.getpid(), signal.SIGKILL)  # kill -9 between the erasure's commit and its checkpoint
"""


@SQLITE_FILES  # SQLite's WAL
def test_an_erasure_another_process_committed_but_never_folded_is_folded_by_the_running_server(tmp_path: Path) -> None:
    """``facetrust erase`` killed beside a running server: the server's periodic step learns of the
    erasure from the store and folds the WAL, where it had kept the template until its own next erasure."""
    import subprocess
    import sys

    from .conftest import collection, face

    template = face(7).embedding
    server = Store(tmp_path / "facetrust.db")  # open all along, as a server is
    try:
        cid = collection(server)
        with server.transaction() as conn:
            server.insert_faces(conn, cid, [face(7)])
        assert server.checkpoint() and server.retry_checkpoint()  # nothing due
        child = subprocess.run(
            [sys.executable, "-c", _ERASED_THEN_KILLED, str(tmp_path), str(Path(__file__).parent)], check=False
        )
        assert child.returncode == -9
        files = lambda: [p for p in tmp_path.iterdir() if p.is_file()]  # noqa: E731
        assert any(template in p.read_bytes() for p in files())  # the erased row's old page is still there

        assert server.retry_checkpoint()
        for path in files():
            assert template not in path.read_bytes(), path
        with server.transaction() as conn:  # an ordinary write after: nothing more is due
            server.insert_faces(conn, cid, [face(8)])
        assert server._checkpoint_due is False and server.retry_checkpoint()
    finally:
        server.close()


@SQLITE_FILES  # SQLite's WAL
def test_a_wal_another_process_deletes_while_the_store_opens_does_not_fail_the_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's close (SQLite's last connection) folds and deletes the WAL at any moment:
    one seen by ``is_file`` was gone when its size was read, and the open failed with
    FileNotFoundError (two CLI commands one after another: 1 open in 2,000)."""
    import sqlite3

    path = tmp_path / "facetrust.db"
    Store(path).close()
    other = sqlite3.connect(path)  # another process, its WAL not folded yet
    other.execute("INSERT INTO meta(key, value) VALUES ('other', '1')")
    other.commit()
    real = Path.is_file

    def closed_just_after(self: Path) -> bool:  # the other process closes right after the check
        found = real(self)
        if self.name.endswith("-wal") and found:
            other.close()
        return found

    monkeypatch.setattr(Path, "is_file", closed_just_after)
    try:
        Store(path).close()
    finally:
        other.close()
