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
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import cast

from facetrust.errors import ConfigurationError, InvalidParameterError, NotFoundError
from facetrust.governance.crypto import TemplateKey, load_server_key
from facetrust.server.roles import check_role
from facetrust.store.private import private_dir

__all__ = ["KEYS_FILE", "KeyRecord", "KeyStore", "SecretSealer", "copy_keys_into"]

logger = logging.getLogger(__name__)

KEYS_FILE = "keys.db"
SEALED_PREFIX = "FTS1:"
SCHEMA_VERSION = 1
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


def _record(row: tuple[str, str, float, float | None, str]) -> KeyRecord:
    return KeyRecord(key_id=row[0], role=row[1], created_at=row[2], revoked_at=row[3], description=row[4])


class KeyStore:
    """The keys of one data directory. Thread-safe; other processes' changes are seen at once."""

    def __init__(self, path: Path, conn: sqlite3.Connection, sealer: SecretSealer) -> None:
        self.path = path
        self._conn = conn
        self._sealer = sealer
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
            conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"Cannot open key store {path}: {exc}", setting="data_dir") from None
        try:
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
            _migrate(conn, path)
            _seal_plain_secrets(conn, sealer)
            _check_server_key(conn, sealer)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise ConfigurationError(f"Cannot open key store {path}: {exc}", setting="data_dir") from None
        except ConfigurationError:
            conn.close()
            raise
        return cls(path, conn, sealer)

    @classmethod
    def _open_postgres(cls, data_dir: Path, url: str, sealer: SecretSealer) -> KeyStore:
        from facetrust.store.pg_conn import connect
        from facetrust.store.postgres import redact_url

        try:
            conn = cast(sqlite3.Connection, connect(url))  # presents the sqlite3.Connection API (store/pg_conn.py)
            conn.executescript(_SCHEMA)  # the schema is version 1: nothing to migrate yet
            _seal_plain_secrets(conn, sealer)
            _check_server_key(conn, sealer)
        except sqlite3.Error as exc:
            raise ConfigurationError(
                f"Cannot open the key store in {redact_url(url)}: {exc}", setting="store"
            ) from None
        return cls(data_dir / KEYS_FILE, conn, sealer)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def create(self, role: str, description: str = "") -> tuple[str, str]:
        """A new active key for ``role``: ``(key_id, secret)``. The secret cannot be read back later."""
        check_role(role)
        if len(description) > MAX_DESCRIPTION or any(not ch.isprintable() for ch in description):
            raise InvalidParameterError(
                f"Key description must be at most {MAX_DESCRIPTION} printable characters; got {len(description)} "
                "characters",
                parameter="description",
            )
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        with self._lock:
            while True:
                key_id = KEY_ID_PREFIX + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(_KEY_ID_RANDOM))
                try:
                    self._conn.execute(
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
        with self._lock:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM keys ORDER BY created_at, key_id").fetchall()
        return [_record(row) for row in rows]

    def get(self, key_id: str) -> KeyRecord:
        """The record of ``key_id``; ``NotFoundError`` if there is no such key."""
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM keys WHERE key_id = ?", (key_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"Unknown key id {key_id!r}", resource=key_id)
        return _record(row)

    def revoke(self, key_id: str) -> KeyRecord:
        """Revoke ``key_id`` (from now on its requests are refused); revoking twice keeps the first time."""
        with self._lock:
            changed = self._conn.execute(
                "UPDATE keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (time.time(), key_id)
            ).rowcount
        record = self.get(key_id)
        if changed:
            logger.info("Revoked key %s (role %s)", key_id, record.role)
        return record

    def lookup(self, key_id: str) -> tuple[KeyRecord, str] | None:
        """The record and secret of ``key_id``, for signature verification; None if unknown."""
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS}, secret FROM keys WHERE key_id = ?", (key_id,)).fetchone()
        if row is None:
            return None
        return _record(row[:5]), self._sealer.open(key_id, str(row[5]))


def copy_keys_into(conn: sqlite3.Connection, keys_file: Path) -> int:
    """Copy the keys of ``keys_file`` (a data directory's keys.db), secrets still sealed with the
    same server key, into the ``keys`` table of ``conn``'s PostgreSQL store (``facetrust store
    copy``, inside its transaction); how many (0 when there is no such file)."""
    from facetrust.store.pg_dialect import ddl

    if not keys_file.is_file():
        return 0
    src = sqlite3.connect(keys_file)
    try:
        rows = src.execute("SELECT key_id, secret, role, description, created_at, revoked_at FROM keys").fetchall()
    finally:
        src.close()
    conn.execute(ddl(_SCHEMA))
    conn.executemany(
        "INSERT INTO keys(key_id, secret, role, description, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)", rows
    )
    return len(rows)


class SecretSealer:
    """Seals a secret as ``FTS1:`` + base64(key id ‖ nonce ‖ AES-256-GCM ciphertext), bound to its access key id."""

    def __init__(self, key: TemplateKey) -> None:
        self._key = key

    def __repr__(self) -> str:
        return f"SecretSealer(key_id={self._key.key_id.hex()})"

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
                f"{self._key.key_id.hex()}: restore that server.key, or create new keys"
            )
        try:
            return AESGCM(self._key.secret).decrypt(blob[8:20], blob[20:], key_id.encode()).decode()
        except InvalidTag:
            raise ConfigurationError(f"The sealed secret of key {key_id} failed authentication: altered") from None


def _check_server_key(conn: sqlite3.Connection, sealer: SecretSealer) -> None:
    """Refuse, when the store opens, secrets sealed with another server key: every signed request
    would otherwise fail on a key the server cannot read (a 500 per request instead of one clear
    error at start-up)."""
    for key_id, stored in conn.execute("SELECT key_id, secret FROM keys"):
        sealer.open(key_id, stored)


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


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise ConfigurationError(
            f"Key store {path} has schema version {version}, newer than this facetrust ({SCHEMA_VERSION}); "
            "upgrade facetrust",
            setting="data_dir",
        )
    if version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
