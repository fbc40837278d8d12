"""A SQLite store's connections (facetrust.db, replays.db): one per thread that uses them, closed when it ends.

A server answers requests on worker threads that come and go (an idle one exits after 10 s, a
new one starts with the next burst); a connection left open for every thread that ever ran kept
its file descriptors and page cache until the process could open no more files.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from facetrust.store.sqlite import Store

BURSTS = 3
THREADS = 8


def _request(store: Store) -> None:
    """What a signed request does to the store: its signature recorded, a read."""
    signature = hashlib.sha256(os.urandom(16)).hexdigest()
    assert store.admit_signature(signature, 1000.0, 1000.0, repeat_s=10.0, window_s=300.0) is None
    store.count_collections()


def _bursts(store: Store) -> None:
    for _ in range(BURSTS):  # bursts of short-lived worker threads, as a server's pool makes
        threads = [threading.Thread(target=_request, args=(store,)) for _ in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def _open_files(folder: Path) -> dict[str, int]:
    """How many of this process's file descriptors are open on each file of ``folder``."""
    found: dict[str, int] = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = Path(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # closed meanwhile
            continue
        if target.parent == folder:
            found[target.name] = found.get(target.name, 0) + 1
    return found


def test_a_threads_connections_are_closed_when_the_thread_ends(tmp_path: Path) -> None:
    store = Store(tmp_path / "facetrust.db")
    try:
        _request(store)  # this thread's connections, which stay
        _bursts(store)  # 24 threads came and went

        assert store.open_connections() == 1
        assert store.replays.open_connections() == 1
        assert store.count_collections() == 0  # the store still works in a thread that stayed
        store.close()
        assert store.open_connections() == 0  # close() closed the ones left, this thread's
        assert store.replays.open_connections() == 0
    finally:
        store.close()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts file descriptors through /proc")
def test_threads_that_came_and_went_leave_no_file_open(tmp_path: Path) -> None:
    store = Store(tmp_path / "facetrust.db")
    try:
        _request(store)
        before = _open_files(tmp_path)
        _bursts(store)

        after = _open_files(tmp_path)
        assert after["facetrust.db-wal"] == before["facetrust.db-wal"] == 1
        assert after["replays.db-wal"] == before["replays.db-wal"] == 1
        # SQLite keeps a closed connection's database descriptor for the next one to reuse (its
        # POSIX locks belong to the process), so these stay at the most threads at once.
        assert after["facetrust.db"] <= 1 + THREADS
        assert after["replays.db"] <= 1 + THREADS
    finally:
        store.close()
    assert not _open_files(tmp_path)  # closing the store closed every file
