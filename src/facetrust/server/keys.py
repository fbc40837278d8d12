"""KeyStore: API keys (access key id + secret, with a role) in ``<data dir>/keys.db``, mode 0600.

Verifying an AWS Signature Version 4 needs the secret itself (the signing key is derived from
it per day, region and service), so a hash would not do: each secret is sealed with AES-256-GCM
under the server key (``server.key`` in the per-user config directory, outside the data
directory, made on first use), bound to its key id. Secrets stored in the clear by an older
facetrust are sealed when the store is opened. See docs/auth.md.
"""

from __future__ import annotations

import base64
import builtins
import logging
import os
import secrets
import sqlite3
import stat
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from facetrust.errors import (
    ConfigurationError,
    FacetrustError,
    InvalidParameterError,
    NotFoundError,
    StoreUnavailableError,
)
from facetrust.governance.crypto import TemplateKey, load_server_key
from facetrust.server.roles import check_role
from facetrust.store.busy import BUSY_TIMEOUT_S, store_busy
from facetrust.store.pg_conn import PgConnection
from facetrust.store.pg_dialect import ddl
from facetrust.store.private import private_dir

__all__ = ["KEYS_FILE", "KEY_COLUMNS", "MIGRATIONS", "KeyRecord", "KeyStore", "SecretSealer", "migrate"]

logger = logging.getLogger(__name__)

KEYS_FILE = "keys.db"
SEALED_PREFIX = "FTS1:"
KEY_ID_PREFIX = "FTK"
_KEY_ID_ALPHABET = string.ascii_uppercase + string.digits
_KEY_ID_RANDOM = 17  # "FTK" + 17 = 20 characters, the length of an AWS access key id
_SECRET_BYTES = 30  # token_urlsafe(30): 40 characters, as long as an AWS secret access key
MAX_DESCRIPTION = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    key_id      TEXT PRIMARY KEY,
    secret      TEXT NOT NULL,
    role        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL,
    revoked_at  REAL
)
"""
# MIGRATIONS[n] takes the keys table from schema version n to n + 1, one statement each, the same
# on both stores (SQLite's dialect; translated on PostgreSQL). Version 0 is no table, or a table
# made before versions were recorded: CREATE … IF NOT EXISTS keeps its rows.
# Version 2: the id of the server key the store's secrets are sealed with, recorded at the first
# open, so a process with another server.key (another user, another HOME) is refused at once
# instead of sealing keys this server cannot read.
_SEALER = "CREATE TABLE IF NOT EXISTS keys_sealer (id INTEGER PRIMARY KEY CHECK (id = 1), server_key TEXT NOT NULL)"
MIGRATIONS: tuple[str, ...] = (_SCHEMA, _SEALER)
SCHEMA_VERSION = len(MIGRATIONS)
_PG_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"  # as store/schema.py
_PG_VERSION_KEY = "keys_schema_version"


@dataclass(frozen=True)
class KeyRecord:
    """What is known about a key, never its secret. Times are seconds since the epoch."""

    key_id: str
    role: str
    created_at: float
    revoked_at: float | None
    description: str

    @property
    def active(self) -> bool:
        return self.revoked_at is None


_COLUMNS = "key_id, role, created_at, revoked_at, description"
KEY_COLUMNS = ("key_id", "secret", "role", "description", "created_at", "revoked_at")  # a row as stored


def _record(row: tuple[str, str, float, float | None, str]) -> KeyRecord:
    return KeyRecord(key_id=row[0], role=row[1], created_at=row[2], revoked_at=row[3], description=row[4])


class KeyStore:
    """The keys of one data directory. Thread-safe; other processes' changes are seen at once.

    On PostgreSQL its one connection is replaced when the server has ended it (a restart,
    ``pg_terminate_backend``): a read that finds it lost is tried once more on a new one."""

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        sealer: SecretSealer,
        reopen: Callable[[], sqlite3.Connection] | None = None,
    ) -> None:
        """``reopen``: a new connection to the same database, for one that was lost (PostgreSQL's)."""
        self.path = path
        self._conn = conn
        self._sealer = sealer
        self._reopen = reopen
        self._closed = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyStore({str(self.path)!r})"

    @classmethod
    def open(cls, data_dir: Path, *, server_key_file: Path | None = None, store: str | None = None) -> KeyStore:
        """Open (creating if needed, mode 0600) ``<data_dir>/keys.db``; its secrets are sealed with
        the server key (``server_key_file``, default ``server.key`` in the per-user config directory).
        ``store``: a ``postgresql://…`` URL keeps the keys in that database instead (table ``keys``),
        so every replica sharing it sees the same keys."""
        sealer = SecretSealer(load_server_key(Path(data_dir), server_key_file))
        if store not in (None, "sqlite"):
            return cls._open_postgres(Path(data_dir), str(store), sealer)
        path = Path(data_dir) / KEYS_FILE
        try:
            private_dir(path.parent)
            _create_private(path)
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"Cannot open key store {path}: {exc}", setting="data_dir") from None
        try:
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            with store_busy(f"Key store {path}"):  # another process writing it (migrating, creating keys)
                migrate(conn, f"Key store {path}", postgres=False)
                _seal_plain_secrets(conn, sealer)
                _check_server_key(conn, sealer, f"move {path} aside")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise ConfigurationError(f"Cannot open key store {path}: {exc}", setting="data_dir") from None
        except FacetrustError:  # refused (a newer version, another server key) or busy
            conn.close()
            raise
        return cls(path, conn, sealer)

    @classmethod
    def _open_postgres(cls, data_dir: Path, url: str, sealer: SecretSealer) -> KeyStore:
        from facetrust.store.pg_conn import connect
        from facetrust.store.postgres import reach, redact_error, redact_url

        try:
            # presents the sqlite3.Connection API (store/pg_conn.py); a connection lost later names the key store
            conn = cast(sqlite3.Connection, connect(url, where=f"the key store in {redact_url(url)}"))
            with store_busy(f"Key store in {redact_url(url)}"):  # the writer lock held past the busy timeout
                migrate(conn, f"Key store in {redact_url(url)}", postgres=True)
            _seal_plain_secrets(conn, sealer)
            _check_server_key(conn, sealer, "delete the rows of its keys and keys_sealer tables")
        except sqlite3.Error as exc:
            raise ConfigurationError(
                f"Cannot open the key store in {redact_url(url)}: {redact_error(str(exc), url)}", setting="store"
            ) from None
        except FacetrustError:  # refused (a newer version, another server key) or busy
            conn.close()
            raise
        # a lost connection replaced; the database out of reach is StoreUnavailableError: a 503, retried
        return cls(data_dir / KEYS_FILE, conn, sealer, reopen=lambda: reach(url, "the key store in"))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._conn.close()

    def _lost(self) -> bool:
        return isinstance(self._conn, PgConnection) and self._conn.ended_while_idle

    def _connection(self) -> sqlite3.Connection:
        """The connection (the caller holds the lock), replaced first when the server has ended it."""
        if self._reopen is not None and not self._closed and self._lost():
            self._conn.close()
            self._conn = self._reopen()
        return self._conn

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> builtins.list[Any]:
        """The rows of one read. A read that fails because the connection was lost (found out only
        by using it: ``StoreUnavailableError`` from store/pg_conn.py) is tried once more, on a new
        connection: reading twice changes nothing."""
        with self._lock:
            try:
                return self._connection().execute(sql, args).fetchall()
            except StoreUnavailableError as exc:
                if self._reopen is None or not self._lost():
                    raise
                logger.info("Key store: replacing a lost connection to the database: %s", exc.message)
                return self._connection().execute(sql, args).fetchall()

    def _row(self, sql: str, args: tuple[Any, ...]) -> Any | None:
        rows = self._rows(sql, args)
        return rows[0] if rows else None

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def create(self, role: str, description: str = "") -> tuple[str, str]:
        """A new active key for ``role``: ``(key_id, secret)``. The secret cannot be read back later."""
        check_role(role)
        if len(description) > MAX_DESCRIPTION:
            raise InvalidParameterError(
                f"Key description must be at most {MAX_DESCRIPTION} characters; got {len(description)}",
                parameter="description",
            )
        bad = next((ch for ch in description if not ch.isprintable()), None)
        if bad is not None:
            raise InvalidParameterError(
                f"Key description must be printable; it holds {bad!r} at position {description.index(bad) + 1}",
                parameter="description",
            )
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        with self._lock:
            while True:
                key_id = KEY_ID_PREFIX + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(_KEY_ID_RANDOM))
                try:
                    with store_busy(f"Key store {self.path}"):
                        self._connection().execute(
                            "INSERT INTO keys(key_id, secret, role, description, created_at) VALUES (?, ?, ?, ?, ?)",
                            (key_id, self._sealer.seal(key_id, secret), role, description, time.time()),
                        )
                except sqlite3.IntegrityError:  # pragma: no cover - a 1 in 36**17 collision
                    continue
                break
        logger.info("Created key %s (role %s)", key_id, role)
        return key_id, secret

    def list(self) -> builtins.list[KeyRecord]:
        """Every key, active and revoked, oldest first."""
        rows = self._rows(f"SELECT {_COLUMNS} FROM keys ORDER BY created_at, key_id")
        return [_record(row) for row in rows]

    def get(self, key_id: str) -> KeyRecord:
        """The record of ``key_id``; ``NotFoundError`` if there is no such key."""
        # key ids are ASCII: other text names none (and argv bytes that are not UTF-8 SQLite cannot take)
        row = self._row(f"SELECT {_COLUMNS} FROM keys WHERE key_id = ?", (key_id,)) if key_id.isascii() else None
        if row is None:
            raise NotFoundError(f"Unknown key id {key_id!r}", resource=key_id)
        return _record(row)

    def role_of(self, key_id: str) -> str | None:
        """The role of ``key_id`` now, or None when it is unknown or revoked: what a video job started
        with the key checks before it runs (``FaceService.key_role``)."""
        row = self._row("SELECT role, revoked_at FROM keys WHERE key_id = ?", (key_id,))
        return None if row is None or row[1] is not None else str(row[0])

    def revoke(self, key_id: str) -> KeyRecord:
        """Revoke ``key_id`` (from now on its requests are refused); revoking twice keeps the first time."""
        with self._lock, store_busy(f"Key store {self.path}"):
            conn = self._connection()
            changed = conn.execute(
                "UPDATE keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (time.time(), key_id)
            ).rowcount
        record = self.get(key_id)
        if changed:
            logger.info("Revoked key %s (role %s)", key_id, record.role)
        return record

    def sealed_rows(self) -> builtins.list[tuple[object, ...]]:
        """Every key as stored (``KEY_COLUMNS``), its secret still sealed: what ``facetrust store
        copy`` carries to another store, which opens them only with the same server key."""
        return [tuple(r) for r in self._rows(f"SELECT {', '.join(KEY_COLUMNS)} FROM keys ORDER BY key_id")]

    def lookup(self, key_id: str) -> tuple[KeyRecord, str] | None:
        """The record and secret of ``key_id``, for signature verification; None if unknown."""
        row = self._row(f"SELECT {_COLUMNS}, secret FROM keys WHERE key_id = ?", (key_id,))
        if row is None:
            return None
        return _record(row[:5]), self._sealer.open(key_id, str(row[5]))


class SecretSealer:
    """Seals a secret as ``FTS1:`` + base64(key id ‖ nonce ‖ AES-256-GCM ciphertext), bound to its access key id."""

    def __init__(self, key: TemplateKey) -> None:
        self._key = key

    def __repr__(self) -> str:
        return f"SecretSealer(key_id={self.key_id})"

    @property
    def key_id(self) -> str:
        """The server key's id (hex), as sealed secrets name it."""
        return self._key.key_id.hex()

    def seal(self, key_id: str, secret: str) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(12)
        sealed = AESGCM(self._key.secret).encrypt(nonce, secret.encode(), key_id.encode())
        return SEALED_PREFIX + base64.b64encode(self._key.key_id + nonce + sealed).decode()

    def open(self, key_id: str, stored: str) -> str:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not stored.startswith(SEALED_PREFIX):
            raise ConfigurationError(f"The secret of key {key_id} is not sealed; reopen the key store to seal it")
        blob = base64.b64decode(stored[len(SEALED_PREFIX) :])
        if blob[:8] != self._key.key_id:
            raise ConfigurationError(
                f"The secret of key {key_id} was sealed with server key {blob[:8].hex()}, not the configured "
                f"{self._key.key_id.hex()}: restore that server.key"
            )
        try:
            return AESGCM(self._key.secret).decrypt(blob[8:20], blob[20:], key_id.encode()).decode()
        except InvalidTag:
            raise ConfigurationError(f"The sealed secret of key {key_id} failed authentication: altered") from None


def _check_server_key(conn: sqlite3.Connection, sealer: SecretSealer, start_over: str) -> None:
    """Refuse, when the store opens, secrets sealed with another server key: every signed request
    would otherwise fail on a key the server cannot read (a refusal per request instead of one
    clear error at start-up). The first open records the server key's id; a later open with
    another server key is refused even while the store holds no key yet. ``start_over``: how to
    set the store's keys aside, so that new ones can be created where that server key is lost."""
    for key_id, stored in conn.execute("SELECT key_id, secret FROM keys"):
        try:
            sealer.open(key_id, stored)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{exc}, or {start_over} and create new keys", setting="data_dir") from None
    conn.execute("INSERT OR IGNORE INTO keys_sealer(id, server_key) VALUES (1, ?)", (sealer.key_id,))
    recorded = str(conn.execute("SELECT server_key FROM keys_sealer WHERE id = 1").fetchone()[0])
    if recorded != sealer.key_id:
        raise ConfigurationError(
            f"This key store's secrets are sealed with server key {recorded}, not the configured {sealer.key_id} "
            f"(a server.key of another user or HOME?): use the server.key this store was opened with, or "
            f"{start_over} and create new keys",
            setting="data_dir",
        )


def _seal_plain_secrets(conn: sqlite3.Connection, sealer: SecretSealer) -> None:
    """Seal secrets stored in the clear (by facetrust before sealing), in one transaction."""
    plain = conn.execute("SELECT key_id, secret FROM keys WHERE secret NOT LIKE ?", (SEALED_PREFIX + "%",)).fetchall()
    if not plain:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for key_id, secret in plain:
            conn.execute(
                "UPDATE keys SET secret = ? WHERE key_id = ? AND secret = ?",
                (sealer.seal(key_id, secret), key_id, secret),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("VACUUM")  # no plain copy left in free pages
    logger.info("Sealed %d access-key secrets stored in the clear", len(plain))


def _create_private(path: Path) -> None:
    """Create ``path`` with mode 0600 if missing; tighten an existing file readable by others."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            logger.warning("Key store %s had mode %o; setting it to 600", path, mode)
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def migrate(conn: sqlite3.Connection, where: str, *, postgres: bool, steps: tuple[str, ...] = MIGRATIONS) -> None:
    """Bring the ``keys`` table of ``conn`` to schema version ``len(steps)``, in one write
    transaction (on PostgreSQL, under the writer lock: replicas starting together migrate once);
    a store of a newer version is refused, naming ``where``. The version is ``keys.db``'s
    ``user_version`` on SQLite, and the row ``keys_schema_version`` of the ``meta`` table on
    PostgreSQL, where ``keys`` shares the database with the store."""
    if postgres:
        conn.executescript(_PG_META)
    if _version(conn, postgres) == len(steps):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version(conn, postgres)  # again, under the lock: another process may have migrated
        if version > len(steps):
            raise ConfigurationError(
                f"{where} has schema version {version}, newer than this facetrust ({len(steps)}); upgrade facetrust",
                setting="store" if postgres else "data_dir",
            )
        for step in steps[version:]:
            conn.execute(ddl(step) if postgres else step)
        if postgres:
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (_PG_VERSION_KEY, str(len(steps))))
        else:
            conn.execute(f"PRAGMA user_version = {len(steps)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _version(conn: sqlite3.Connection, postgres: bool) -> int:
    if not postgres:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    found = conn.execute("SELECT value FROM meta WHERE key = ?", (_PG_VERSION_KEY,)).fetchone()
    return 0 if found is None else int(found[0])
