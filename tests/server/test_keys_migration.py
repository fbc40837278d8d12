"""The keys table's schema versions: the same migrations on SQLite (keys.db) and PostgreSQL (table ``keys``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import cast

import psycopg
import pytest

from facetrust.errors import ConfigurationError
from facetrust.governance.crypto import load_server_key
from facetrust.server.keys import KEYS_FILE, MIGRATIONS, KeyStore, SecretSealer, migrate
from facetrust.store.pg_conn import connect

# The keys table as facetrust created it on PostgreSQL before the table's version was recorded.
OLD_PG_DDL = (
    'CREATE TABLE keys (key_id TEXT COLLATE "C" PRIMARY KEY, secret TEXT COLLATE "C" NOT NULL, '
    'role TEXT COLLATE "C" NOT NULL, description TEXT COLLATE "C" NOT NULL DEFAULT \'\', '
    "created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION)"
)
PLAIN = ("FTKOLDPLAINKEY000001", "old-plain-secret-0123456789abcdefghijkl", "admin", "", 1000.0, None)


def _pg_version(url: str) -> str | None:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT value FROM meta WHERE key = 'keys_schema_version'").fetchone()
    return None if found is None else str(found[0])


def test_a_postgresql_keys_table_made_before_versions_is_migrated_with_its_rows_intact(
    tmp_path: Path, pg_url: str
) -> None:
    sealer = SecretSealer(load_server_key(tmp_path))
    sealed = ("FTKSEALEDKEY00000001", sealer.seal("FTKSEALEDKEY00000001", "s" * 40), "searcher", "old", 999.0, 1001.0)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(OLD_PG_DDL)
        for row in (sealed, PLAIN):
            conn.execute("INSERT INTO keys VALUES (%s, %s, %s, %s, %s, %s)", row)

    with KeyStore.open(tmp_path, store=pg_url) as keys:
        records = [(r.key_id, r.role, r.description, r.created_at, r.revoked_at) for r in keys.list()]
        found_sealed, found_plain = keys.lookup(sealed[0]), keys.lookup(PLAIN[0])

    assert _pg_version(pg_url) == str(len(MIGRATIONS))
    assert records == [(sealed[0], "searcher", "old", 999.0, 1001.0), (PLAIN[0], "admin", "", 1000.0, None)]
    assert found_sealed is not None and found_sealed[1] == "s" * 40
    assert found_plain is not None and found_plain[1] == PLAIN[1]  # sealed on open, as keys.db's are
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT secret FROM keys WHERE key_id = %s", (PLAIN[0],)).fetchone()[0].startswith("FTS1:")


def test_a_postgresql_keys_table_of_a_newer_facetrust_is_refused(tmp_path: Path, pg_url: str) -> None:
    KeyStore.open(tmp_path, store=pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'keys_schema_version'")

    with pytest.raises(ConfigurationError) as caught:
        KeyStore.open(tmp_path, store=pg_url)

    assert (
        f"has schema version 99, newer than this facetrust ({len(MIGRATIONS)}); upgrade facetrust"
        in caught.value.message
    )
    assert caught.value.message.startswith("Key store in postgresql://")


def _connection(kind: str, tmp_path: Path, pg_url: str) -> sqlite3.Connection:
    if kind == "sqlite":
        return sqlite3.connect(tmp_path / KEYS_FILE, isolation_level=None)
    return cast(sqlite3.Connection, connect(pg_url))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_later_schema_step_runs_once_on_both_stores_and_keeps_the_rows(
    kind: str, tmp_path: Path, pg_url: str
) -> None:
    postgres = kind == "postgresql"
    with KeyStore.open(tmp_path, store=pg_url if postgres else "sqlite") as keys:
        key_id, _ = keys.create("admin", "before")
    later = (*MIGRATIONS, "ALTER TABLE keys ADD COLUMN note TEXT NOT NULL DEFAULT 'migrated'")
    conn = _connection(kind, tmp_path, pg_url)
    try:
        migrate(conn, "Key store", postgres=postgres, steps=later)
        migrate(conn, "Key store", postgres=postgres, steps=later)  # at its version: nothing to do
        rows = conn.execute("SELECT key_id, role, description, note FROM keys").fetchall()
        newer = rf"schema version {len(later)}, newer than this facetrust \({len(MIGRATIONS)}\)"
        with pytest.raises(ConfigurationError, match=newer):
            migrate(conn, "Key store", postgres=postgres)
    finally:
        conn.close()

    assert [tuple(r) for r in rows] == [(key_id, "admin", "before", "migrated")]
