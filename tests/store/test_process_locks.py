"""SQLite's locks are POSIX locks, which a process loses on a file when it closes *any* descriptor
of that file: the store must never open and close its database files beside SQLite's own."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from facetrust.store.sqlite import Store

OTHER_WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
    conn.execute("BEGIN IMMEDIATE")
except sqlite3.OperationalError as exc:
    print(exc)
else:
    print("began")
"""


def _other_process_begins(db: Path) -> str:
    out = subprocess.run([sys.executable, "-c", OTHER_WRITER, str(db)], capture_output=True, text=True, timeout=60)
    return out.stdout.strip()


def test_a_new_threads_connection_keeps_another_threads_write_lock(tmp_path: Path) -> None:
    store = Store(tmp_path / "facetrust.db")
    try:
        with store.transaction():  # this thread holds the database's one write lock
            assert _other_process_begins(store.path) == "database is locked"
            opened = threading.Thread(target=store.connection)  # a second thread opens its connection
            opened.start()
            opened.join()
            assert _other_process_begins(store.path) == "database is locked"  # still ours alone
    finally:
        store.close()
