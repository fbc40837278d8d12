"""Each thread's connection to one database, closed when that thread ends or when all are closed.

A server answers requests on worker threads that come and go (anyio stops one idle for 10 s and
starts new ones with the next burst). A connection kept for every thread that ever ran would
stay open after its thread ended: file descriptors and page caches grow with every burst, until
the process cannot open a file ("Too many open files"). So only the thread's own local storage
holds its connection, through a ``_Held``; CPython drops a thread's local storage when the
thread ends, which drops the ``_Held``, which closes the connection. The owner keeps weak
references only, to close the connections still open when it closes.

A connection may then be closed from another thread than its own (the closer's, or the one
that ran the collection): SQLite connections are opened with ``check_same_thread=False``.
"""

from __future__ import annotations

import threading
import weakref
from typing import Generic, Protocol, TypeVar

__all__ = ["ThreadConnections"]


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


class _Held(Generic[C]):
    """One thread's connection, held only by that thread's local storage: closed when dropped."""

    def __init__(self, conn: C) -> None:
        self.conn: C | None = conn
        self._lock = threading.Lock()  # the owner's close() and this one's finaliser may race

    def close(self) -> None:
        with self._lock:
            conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # pragma: no cover - closing is best effort
                pass

    def __del__(self) -> None:
        self.close()


class ThreadConnections(Generic[C]):
    """The connections of the threads that use one database: ``get`` this thread's (None before
    ``put``), ``put`` a new one (closing the one it replaces), ``close`` every one still open."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._live: weakref.WeakSet[_Held[C]] = weakref.WeakSet()
        self._lock = threading.Lock()

    def get(self) -> C | None:
        held: _Held[C] | None = getattr(self._local, "held", None)
        return None if held is None else held.conn

    def put(self, conn: C) -> C:
        """Make ``conn`` this thread's connection (closing the one it had); ``conn``."""
        old: _Held[C] | None = getattr(self._local, "held", None)
        held = _Held(conn)
        with self._lock:
            self._live.add(held)
        self._local.held = held
        if old is not None:
            old.close()
        return conn

    def __len__(self) -> int:
        """How many are open: one per live thread that used the database."""
        with self._lock:
            return sum(1 for held in self._live if held.conn is not None)

    def close(self) -> None:
        """Close every connection still open (best effort); a thread's next ``get`` finds none."""
        with self._lock:
            live = list(self._live)
            self._live.clear()
            self._local = threading.local()
        for held in live:
            held.close()
