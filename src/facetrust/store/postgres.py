"""The PostgreSQL store: the same ``Store`` (every SQL text of it, and of the rest of the project),
over a shared PostgreSQL database instead of a SQLite file in the data directory.

Each thread gets its own connection (store/pg_conn.py), which translates SQLite's dialect; it is
closed when the thread ends (a server's worker threads come and go) or when the store closes.
Write transactions (``BEGIN IMMEDIATE``) take a transaction-scoped advisory lock, so writers in
every process sharing the database run one at a time, as on SQLite: the audit chain's append
(read the last entry, insert the next) is therefore serialised in the database, and N replicas
produce one valid chain. The data directory stays local to each process: index snapshots and
the audit head file (``audit.heads``, this process's anchors of the shared chain).

Erasure: a DELETE leaves dead row versions in the table files until VACUUM; ``vacuum()`` runs
``VACUUM FULL`` on the tables that hold templates, crops and identities, which rewrites them so
no erased row's bytes remain in any table file (docs/store.md says what else may keep a copy).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

from facetrust.errors import CommitUnknownError, ConfigurationError, StoreUnavailableError
from facetrust.store import busy
from facetrust.store.anchor import DDL as AUDIT_DDL
from facetrust.store.pg_conn import PgConnection, connect, first_line, is_postgres_url
from facetrust.store.private import private_dir
from facetrust.store.schema import DDL
from facetrust.store.signatures import DDL as SIGNATURES_DDL
from facetrust.store.sqlite import SERVER_VACUUMS, Store

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.store.sealing import Keyring

__all__ = ["PostgresStore", "open_store", "reach", "redact_error", "redact_url"]

log = logging.getLogger(__name__)

COMMIT_STATUS_WAIT_S = 5.0  # how long a lost COMMIT's transaction may stay "in progress" before it is called unknown

# Tables whose rows carry templates, crops or identities: rewritten by vacuum().
ERASABLE_TABLES = (
    "faces",
    "face_crops",
    "face_tails",
    "face_tail_refs",
    "users",
    "consents",
    "ingested_images",
    "people_members",
    "people_links",
    "video_jobs",
    "video_job_matches",
    "client_tokens",
)


# Columns ANALYZE (vacuum()'s, and autovacuum's) must never sample: PostgreSQL copies sampled
# values into the planner's statistics (pg_statistic), where an erased face's template would
# outlive VACUUM FULL of its own table.
UNSAMPLED = (
    ("faces", "embedding"),
    ("face_crops", "crop"),
    ("face_tails", "scores"),
    ("face_tails", "neighbours"),
    ("pseudonym_key", "key"),
)


def unsample(conn: sqlite3.Connection) -> int:
    """Stop ANALYZE sampling the ``UNSAMPLED`` columns and drop the statistics it took of them
    before (re-declaring a column's type is what drops them); how many columns changed."""
    changed = 0
    for table, column in UNSAMPLED:
        target = conn.execute(
            "SELECT attstattarget FROM pg_attribute WHERE attrelid = to_regclass(?) AND attname = ?", (table, column)
        ).fetchone()
        if target is None:  # pragma: no cover - every store has these tables
            continue
        sampled = conn.execute(
            "SELECT 1 FROM pg_stats WHERE schemaname = current_schema() AND tablename = ? AND attname = ?",
            (table, column),
        ).fetchone()
        if target[0] == 0 and sampled is None:
            continue
        if target[0] != 0:
            conn.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS 0")
        if sampled is not None:
            conn.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE BYTEA")
        changed += 1
    return changed


_PARAMETER = re.compile(r"([?&])([^=&#]*)=([^&#]*)")  # a query parameter, wherever it is
_SECRET_KEYS = frozenset({"password", "sslpassword"})  # libpq's parameters that hold a secret


def _is_secret(key: str) -> bool:
    from urllib.parse import unquote

    return unquote(key).strip().lower() in _SECRET_KEYS


def _userinfo(url: str) -> tuple[int, int] | None:
    """Where the ``user:password`` before the ``@`` of ``url`` lies. libpq reads it to the first
    ``@`` before the path; a password holding ``@`` reads to the last one (so both are covered),
    unless a ``?`` comes first there: then the later ``@`` is a query's (``?user=admin@server``)."""
    scheme = url.find("://")
    if scheme < 0:
        return None
    start = scheme + 3
    slash = url.find("/", start)
    stop = len(url) if slash < 0 else slash
    first = url.find("@", start, stop)
    if first < 0:
        return None
    last = url.rfind("@", start, stop)
    return (start, first if "?" in url[first:last] else last)


def _secrets(url: str) -> list[str]:
    """Every secret ``url`` holds (its password before the ``@``, a ``password`` or ``sslpassword``
    parameter), as written and percent-decoded: what a message must not show. Shorter than four
    characters they are left: taking ``1`` out of a message would garble every address in it."""
    from urllib.parse import unquote

    found = [match.group(3) for match in _PARAMETER.finditer(url) if _is_secret(match.group(2))]
    where = _userinfo(url)
    if where is not None:
        found.append(url[where[0] : where[1]].partition(":")[2])
    found += [unquote(value) for value in found]
    return sorted({value for value in found if len(value) >= 4}, key=len, reverse=True)


def redact_url(url: str) -> str:
    """``url`` without its password, for messages and logs: the one before ``@`` and the ones
    libpq also takes as parameters (``password=``, ``sslpassword=``, wherever they are). The rest
    is shown as given."""
    where = _userinfo(url)
    if where is not None:
        user, colon, _ = url[where[0] : where[1]].partition(":")
        if colon:
            url = f"{url[: where[0]]}{user}:***{url[where[1] :]}"
    return _PARAMETER.sub(lambda m: f"{m.group(1)}{m.group(2)}=***" if _is_secret(m.group(2)) else m.group(0), url)


def reach(url: str, what: str) -> sqlite3.Connection:
    """A new connection to the database at ``url``. One that cannot be reached (a restart, an
    outage) is ``StoreUnavailableError``: "Cannot open ``what`` <url without password>: why"; so is
    the connection lost later, in the middle of a statement ("The connection to ``what`` <url> was
    lost …", store/pg_conn.py)."""
    try:
        return cast(sqlite3.Connection, connect(url, where=f"{what} {redact_url(url)}"))
    except sqlite3.OperationalError as exc:
        raise StoreUnavailableError(
            f"Cannot open {what} {redact_url(url)}: {redact_error(str(exc), url)}", setting="store"
        ) from None


def redact_error(text: str, url: str) -> str:
    """``text`` (a driver's error about ``url``: libpq may quote the part of the URL it could not
    read, password and all) with every secret of ``url`` replaced by ``***``."""
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


class PostgresStore(Store):
    """``Store`` over PostgreSQL at ``url``; ``path`` (in the data directory) only places the head file."""

    postgres = True

    def __init__(self, path: Path, url: str, *, keyring: Keyring | None = None, check_anchors: bool = True) -> None:
        self.url = url
        super().__init__(path, keyring=keyring, check_anchors=check_anchors)

    reclaimed = (
        "after `facetrust store vacuum` (VACUUM FULL, and of pg_statistic where the store's user owns the "
        f"database; {SERVER_VACUUMS}); until then the erased rows' bytes remain in dead row versions of the "
        "database's files"
    )

    resealed = (
        "The templates it replaced (in the clear, or sealed with an older key) remain in dead row versions of "
        f"the database's files until `facetrust store vacuum` ({SERVER_VACUUMS}): run it before you destroy an "
        "older key"
    )

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self.url)!r})"

    def where(self) -> str:
        """Where this store's rows live, for messages: the database, without its password."""
        return f"PostgreSQL store {redact_url(self.url)}"

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        with busy.store_busy(self.where()):  # the writer lock, waited for as a write waits (store/pg_conn.py)
            conn.executescript(DDL + AUDIT_DDL + SIGNATURES_DDL)  # the signatures seen: shared by every replica
        with self.transaction():
            unsample(conn)  # before any ANALYZE (autovacuum's too) can copy a template into pg_statistic

    def _conn(self) -> sqlite3.Connection:
        conn = cast("PgConnection | None", self._conns.get())  # each thread's, till it ends (as on SQLite)
        if conn is None or conn.ended_while_idle:  # a lost connection is replaced on next use, before it is used
            self._check_open()
            private_dir(self.path.parent)  # index snapshots and the head file stay here, 0700
            conn = cast("PgConnection", reach(self.url, "the PostgreSQL store"))
            self._conns.put(cast(sqlite3.Connection, conn))  # closes the lost one
        # The wrapper answers every sqlite3.Connection method the store and its callers use.
        return cast(sqlite3.Connection, conn)

    def _begin(self, sql: str) -> sqlite3.Connection:
        """This thread's connection with ``sql`` begun on it. A connection found lost at BEGIN (the
        server restarted, or ended its backend, while it sat idle) is replaced and BEGIN tried once
        more: nothing of the transaction was sent yet, so the retry cannot repeat a write. The writer
        lock waited for longer than the busy timeout is ``StoreBusyError``, as on SQLite. A
        connection lost later, inside the transaction, is ``StoreUnavailableError`` from the
        statement that found it lost (store/pg_conn.py): the server rolled the transaction back, and
        ``transaction()`` and ``snapshot()`` leave it at that (no ROLLBACK on a lost connection)."""
        conn = self._conn()
        with busy.store_busy(self.where()):
            try:
                conn.execute(sql)
            except StoreUnavailableError as exc:  # the connection was lost (pg_conn raises nothing else so)
                log.info("Replacing a lost connection to %s found at BEGIN: %s", redact_url(self.url), exc.message)
                conn = self._conn()
                conn.execute(sql)
        return conn

    def _commit(self, conn: sqlite3.Connection) -> None:
        """Commit, and when the connection is lost before COMMIT is acknowledged, find out from a new
        connection whether the transaction committed: it may well have (only the answer was lost), and
        a request answered as failed would be retried by its client, and written twice. Committed: the
        commit succeeded (what follows it, the head's anchoring, runs). Rolled back:
        ``StoreUnavailableError`` saying so. Not found out: ``CommitUnknownError``."""
        xid = conn.execute("SELECT txid_current_if_assigned()").fetchone()[0]  # None: nothing written
        try:
            conn.execute("COMMIT")
        except StoreUnavailableError as exc:  # the connection was lost (pg_conn raises nothing else so)
            status = "committed" if xid is None else self._commit_status(int(xid))
            log.warning(
                "Connection to %s lost at COMMIT of transaction %s (%s): %s",
                redact_url(self.url),
                xid,
                exc.message,
                status,
            )
            if status == "aborted":
                raise StoreUnavailableError(
                    f"The connection to the {self.where()} was lost while it committed a transaction "
                    f"({first_line(exc.__cause__ or exc)}), and the database rolled the transaction back, so none "
                    "of its changes were written; retry once the database can be reached again",
                    setting="store",
                    connection_lost=True,
                ) from exc
            if status != "committed":
                raise CommitUnknownError(
                    "The connection to the database was lost while it committed this request's changes, and "
                    "whether they were committed could not be found out (the server's log says why); check "
                    "whether the request took effect before sending it again",
                    transaction_id=int(xid),
                ) from exc

    def _commit_status(self, xid: int) -> str:
        """``txid_status`` of ``xid`` asked on a new connection ("committed", "aborted"), waiting a
        moment while the old backend still holds it "in progress"; why it is unknown otherwise."""
        deadline = time.monotonic() + COMMIT_STATUS_WAIT_S
        while True:
            try:
                row = self._conn().execute("SELECT txid_status(?)", (xid,)).fetchone()
            except (sqlite3.Error, ConfigurationError) as exc:
                return f"the database could not be asked: {exc}"
            status = "not recorded" if row is None or row[0] is None else str(row[0])
            if status != "in progress" or time.monotonic() >= deadline:
                return status
            time.sleep(0.05)

    def signatures_connection(self) -> sqlite3.Connection:
        """The signatures seen live in the shared database: every replica refuses a replay."""
        return self._conn()

    def _new_face_keys(self, conn: sqlite3.Connection, count: int) -> list[int]:
        """``count`` keys from the faces' identity sequence (ascending: writers hold the store's lock)."""
        rows = conn.execute(
            "SELECT nextval(pg_get_serial_sequence('faces', 'id')) FROM generate_series(1, ?)", (count,)
        ).fetchall()
        return sorted(int(r[0]) for r in rows)

    def _bulk_writer(self, conn: sqlite3.Connection) -> None:
        """Nothing: PostgreSQL's cache is the server's (shared_buffers), not a connection's."""

    def checkpoint(self) -> bool:
        """Nothing to fold: PostgreSQL's WAL is the server's (``vacuum`` reclaims erased rows)."""
        return True

    def retry_checkpoint(self) -> bool:
        return True

    def vacuum(self) -> str:
        """``VACUUM FULL`` the tables that hold templates, crops and identities (each rewritten
        into new files, without the erased rows' dead versions), then the planner's statistics
        (``pg_statistic``, where an older facetrust let ANALYZE copy templates) when this user may:
        a superuser, or the database's owner. What ran."""
        with self.transaction() as conn:  # its BEGIN may replace a lost connection: use the one it began on
            unsample(conn)
        for table in ERASABLE_TABLES:
            conn.execute(f"VACUUM (FULL, ANALYZE) {table}")
        done = "VACUUM FULL of " + ", ".join(ERASABLE_TABLES)
        owner = conn.execute(
            "SELECT r.rolsuper OR pg_has_role(current_user, d.datdba, 'MEMBER') FROM pg_roles r, pg_database d "
            "WHERE r.rolname = current_user AND d.datname = current_database()"
        ).fetchone()
        if not (owner and owner[0]):  # PostgreSQL would skip it with only a warning
            return done + "; not of pg_statistic: run `VACUUM FULL pg_statistic` as the database's owner"
        conn.execute("VACUUM FULL pg_statistic")
        return done + ", pg_statistic"


def open_store(path: Path, url: str | None = None, *, keyring: Keyring | None = None) -> Store:
    """The store the ``store`` setting names: None or "sqlite" → SQLite at ``path`` (in the data
    directory); ``postgresql://…`` → that database (the data directory keeps the head file)."""
    if url is None or url == "sqlite":
        return Store(path, keyring=keyring)
    if is_postgres_url(url):
        return PostgresStore(path, url, keyring=keyring)
    raise ConfigurationError(
        f"Setting store={redact_url(url)!r} is invalid: must be 'sqlite' or a postgresql://… URL", setting="store"
    )
