"""A PostgreSQL connection (psycopg 3) that presents the part of ``sqlite3.Connection`` facetrust uses.

``execute``/``executemany``/``executescript`` take SQLite's dialect (translated by
store/pg_dialect.py), ``in_transaction`` and ``close`` behave as sqlite3's, cursors give
``fetchone``/``fetchall``/iteration over tuples, ``rowcount`` and ``lastrowid`` (the identity
column of the row an INSERT made). Transactions are explicit, as facetrust runs SQLite
(autocommit, then ``BEGIN``/``COMMIT``/``ROLLBACK`` statements). psycopg's errors are raised as
sqlite3's (``IntegrityError``, ``OperationalError``, ``DatabaseError``), with the original
chained, so every ``except sqlite3.…`` in the project applies unchanged; except an error that
lost the connection (the server stopped, or ended the backend, in the middle of a statement):
that is ``StoreUnavailableError`` naming the database and what became of the statement, since
no ``except sqlite3.…`` can do better with it than to answer "retry when the database is back".
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from facetrust.errors import StoreUnavailableError
from facetrust.store.pg_dialect import WRITER_LOCK, Translated, ddl, statement

if TYPE_CHECKING:  # pragma: no cover
    import psycopg

__all__ = ["PgConnection", "PgCursor", "connect", "first_line", "is_postgres_url"]

_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(value: str | None) -> bool:
    return value is not None and value.startswith(_SCHEMES)


class PgCursor:
    """The rows of one statement, read as sqlite3's cursor reads them."""

    def __init__(self, rows: list[tuple[Any, ...]] | None, rowcount: int, lastrowid: int | None) -> None:
        self._rows = rows or []
        self._next = 0
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[tuple[Any, ...]]:
        rest, self._next = self._rows[self._next :], len(self._rows)
        return rest

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row


class _Catalog:
    """Primary keys and identity columns of the tables, read from PostgreSQL once per process."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], list[str]] = {}
        self._identity: dict[tuple[str, str], str | None] = {}
        self._lock = threading.Lock()

    def primary_key(self, conn: psycopg.Connection[Any], schema: str, table: str) -> list[str]:
        with self._lock:
            if (schema, table) not in self._keys:
                rows = conn.execute(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                    "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(%s) AND i.indisprimary "
                    "ORDER BY array_position(i.indkey, a.attnum)",
                    (table,),
                ).fetchall()
                self._keys[(schema, table)] = [str(r[0]) for r in rows]
            return self._keys[(schema, table)]

    def identity(self, conn: psycopg.Connection[Any], schema: str, table: str) -> str | None:
        with self._lock:
            if (schema, table) not in self._identity:
                row = conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attidentity <> ''",
                    (table,),
                ).fetchone()
                self._identity[(schema, table)] = str(row[0]) if row else None
            return self._identity[(schema, table)]


_CATALOG = _Catalog()


class PgConnection:
    """One psycopg connection, used the way facetrust uses a ``sqlite3.Connection``; ``where``
    names its database in the error of a lost connection ("the PostgreSQL store postgresql://…")."""

    takes_arrays = True  # a list binds as one array parameter (store/inlist.py: ``ARRAYS``)

    def __init__(self, raw: psycopg.Connection[Any], where: str = "the PostgreSQL database") -> None:
        self._raw = raw
        self.where = where
        self._schema = str(raw.execute("SELECT current_schema()").fetchone()[0])  # type: ignore[index]

    @property
    def raw(self) -> psycopg.Connection[Any]:
        return self._raw

    @property
    def lost(self) -> bool:
        """The connection is closed, or broken (the server restarted, or ended its backend): it
        must be replaced; whatever transaction it had open was rolled back by the server."""
        return self._raw.closed or self._raw.broken

    @property
    def ended_while_idle(self) -> bool:
        """Lost, or the server ended it while it sat idle outside a transaction (a restart, a
        ``pg_terminate_backend``): the server then sends its farewell and closes, so the socket
        has something to read although nothing was asked. Found before anything is sent on it,
        the statement the caller is about to run can go to a new connection instead and run
        once: a single statement outside a transaction would otherwise fail on it. Anything else
        unasked on an idle connection (a notice) also replaces it, which is always safe."""
        import select

        import psycopg
        from psycopg.pq import TransactionStatus

        if self.lost:
            return True
        if self._raw.info.transaction_status != TransactionStatus.IDLE:
            return False  # a transaction's own error is the one its caller must see
        try:
            fd = self._raw.fileno()
        except (OSError, psycopg.Error):  # no socket any more
            return True
        probe = select.poll()  # not select.select: a busy server's descriptors pass FD_SETSIZE (1024)
        probe.register(fd, select.POLLIN | select.POLLPRI)
        return bool(probe.poll(0))

    @property
    def in_transaction(self) -> bool:
        """A transaction is open; false on a lost connection (the server ended it), so a ROLLBACK
        after an error is not tried there, and the error that lost it is the one raised."""
        from psycopg.pq import TransactionStatus

        return not self.lost and self._raw.info.transaction_status != TransactionStatus.IDLE

    def _translate(self, sql: str) -> Translated:
        try:
            return statement(sql, lambda table: _CATALOG.primary_key(self._raw, self._schema, table))
        except ValueError as exc:
            raise sqlite3.OperationalError(str(exc)) from None

    def execute(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> PgCursor:
        todo = self._translate(sql)
        if todo.kind == "noop":
            return PgCursor(None, -1, None)
        query = todo.sql
        identity = None
        if todo.table is not None and "RETURNING" not in query.upper():
            identity = _CATALOG.identity(self._raw, self._schema, todo.table)
            if identity is not None:
                query += f" RETURNING {identity}"
        with _errors(self, query):
            cur = self._raw.execute(query, _params(args))  # always bound: "%%" (a literal %) then reads as "%"
            if todo.kind == "begin_write":
                self._writer_lock()
            rows = cur.fetchall() if cur.description is not None else None
        lastrowid = int(rows[0][0]) if identity is not None and rows else None
        return PgCursor(None if identity is not None else rows, cur.rowcount, lastrowid)

    def _writer_lock(self) -> None:
        """Take the writer lock for the transaction just begun, waiting for it at most the store's
        busy timeout (``busy.BUSY_TIMEOUT_S``), as SQLite's ``BEGIN IMMEDIATE`` waits: past it the
        transaction is rolled back and the error is SQLite's "database is locked", which
        ``busy.store_busy`` answers as ``StoreBusyError``. Without the bound, a process that stalled
        inside a write transaction (a replica frozen, a long import) held every other replica's
        writes, and so its searches (each appends an audit entry), waiting for as long as it lasted.
        The transaction's later statements wait as the server's settings say."""
        import psycopg

        try:
            self._raw.execute(_bounded_writer_lock())
        except psycopg.errors.LockNotAvailable:
            self._raw.execute("ROLLBACK")  # no transaction left open, as after SQLite's failed BEGIN IMMEDIATE
            raise _locked() from None

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> PgCursor:
        todo = self._translate(sql)
        with _errors(self, todo.sql), self._raw.cursor() as cur:
            cur.executemany(todo.sql, [_params(r) for r in rows])
            return PgCursor(None, cur.rowcount, None)

    def executescript(self, script: str) -> None:
        """Run a schema script (SQLite DDL) under the writer lock, so replicas starting together
        do not race on ``CREATE … IF NOT EXISTS``; the lock is waited for as ``BEGIN IMMEDIATE``
        waits (``_writer_lock``), so a store opened beside a stalled writer is busy, not stuck."""
        import psycopg

        try:
            with _errors(self, "BEGIN"), self._raw.transaction():  # the script's own transaction
                self._raw.execute(_bounded_writer_lock())
                self._raw.execute(ddl(script).encode())
        except sqlite3.OperationalError as exc:
            if not isinstance(exc.__cause__, psycopg.errors.LockNotAvailable):
                raise
            raise _locked() from None

    def commit(self) -> None:
        if self.in_transaction:
            self.execute("COMMIT")

    def close(self) -> None:
        self._raw.close()


def _params(args: Sequence[Any] | dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
    """Arguments as PostgreSQL takes them: booleans as integers (SQLite has no boolean type),
    memoryviews as bytes."""
    if isinstance(args, dict):
        return args
    return [int(a) if isinstance(a, bool) else bytes(a) if isinstance(a, memoryview) else a for a in args]


def _bounded_writer_lock() -> str:
    """``WRITER_LOCK`` waited for at most the busy timeout (read when taken: tests shorten it)."""
    from facetrust.store import busy

    wait_ms = max(1, int(busy.BUSY_TIMEOUT_S * 1000))
    return f"SET LOCAL lock_timeout = {wait_ms}; {WRITER_LOCK}; SET LOCAL lock_timeout TO DEFAULT"


def _locked() -> sqlite3.OperationalError:
    """SQLite's error for a write lock waited for past the busy timeout (``busy.store_busy`` reads it)."""
    from facetrust.store import busy

    return sqlite3.OperationalError(
        f"database is locked: another process held the writer lock for {busy.BUSY_TIMEOUT_S:g} s"
    )


class _errors:
    """Re-raise psycopg's errors as sqlite3's (the exception classes the project handles); one
    that lost the connection, while ``conn`` ran ``sql``, as ``StoreUnavailableError``."""

    def __init__(self, conn: PgConnection, sql: str) -> None:
        self._conn = conn
        self._sql = sql
        self._in_transaction = conn.in_transaction  # before the statement: what a loss in it rolls back

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        import psycopg

        if exc is None or not isinstance(exc, psycopg.Error):
            return
        if self._conn.lost:
            raise self._lost(exc) from exc
        mapped: type[sqlite3.Error]
        if isinstance(exc, psycopg.IntegrityError):
            mapped = sqlite3.IntegrityError
        elif isinstance(exc, psycopg.OperationalError):
            mapped = sqlite3.OperationalError
        else:
            mapped = sqlite3.DatabaseError
        raise mapped(f"PostgreSQL: {str(exc).strip()}") from exc

    def _lost(self, exc: BaseException) -> StoreUnavailableError:
        """The error of a connection lost running the statement: what became of it, told from the
        transaction open before it (the server rolls back whatever transaction a lost connection had:
        it can never commit) and the statement's first word."""
        words = self._sql.split(None, 1)
        first = words[0].upper() if words else ""
        if first == "COMMIT":
            became = "while it committed a transaction, which may or may not have committed"
        elif self._in_transaction or first in ("BEGIN", "ROLLBACK"):
            became = (
                "in the middle of a transaction, which the database rolled back, so none of its changes were written"
            )
        elif first in ("SELECT", "SHOW", "VALUES"):
            became = "outside a transaction: it was reading, so nothing was written"
        else:
            became = "outside a transaction, running a single statement that may or may not have taken effect"
        return StoreUnavailableError(
            f"The connection to {self._conn.where} was lost ({first_line(exc)}) {became}; "
            "retry once the database can be reached again",
            setting="store",
            connection_lost=True,
        )


def first_line(exc: BaseException) -> str:
    """The first line of a driver's error (PostgreSQL adds the statement's text and a caret below)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@functools.cache
def _connection_class() -> type[psycopg.Connection[Any]]:
    import psycopg

    class QuietConnection(psycopg.Connection[Any]):
        """Closed when collected while open, quietly, as a sqlite3 connection is (psycopg warns)."""

        def __del__(self, *_: Any) -> None:
            if hasattr(self, "pgconn") and not self.closed:  # pgconn: absent when connecting failed
                self.close()

    return QuietConnection


# TCP settings a URL that names none of them gets: a connection whose peer went silent (a network
# cut that drops packets, a host gone) is found lost in about half a minute, where the kernel's
# defaults leave a COMMIT waiting for its answer for minutes, past a client's read timeout (boto3
# retries then, and the lost-commit check in store/postgres.py never runs). Keepalives probe an
# idle connection; tcp_user_timeout bounds how long sent data may go unacknowledged.
TCP_DEFAULTS = {
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}


def connect(url: str, where: str = "the PostgreSQL database") -> PgConnection:
    """A connection to ``url`` (``postgresql://…``, libpq's URI syntax), in autocommit mode, with
    ``TCP_DEFAULTS`` for the settings the URL leaves out; ``sqlite3.OperationalError`` when the
    server cannot be reached. ``where``: what its errors call the database (no password in it)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        given = conninfo_to_dict(url)
        conninfo = make_conninfo(url, **{key: value for key, value in TCP_DEFAULTS.items() if key not in given})
        raw = _connection_class().connect(conninfo, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise sqlite3.OperationalError(f"PostgreSQL: {str(exc).strip()}") from exc
    return PgConnection(raw, where)
