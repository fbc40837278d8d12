"""Every foreign key's referencing column leads an index, on both stores.

Deleting a parent row makes the database find its children (to cascade, set null or refuse); with
no index on the child's column that is a scan of the whole child table per deleted row. Before
``people_clusters(representative)`` was indexed, deleting a collection of 20,000 faces, 5,000 of
them people's representatives, took 13 s (0.46 s with the index), and the cost grows with the
product of the two counts.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .conftest import STORES


def _sqlite_unindexed(conn: sqlite3.Connection) -> list[str]:
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    missing = []
    for table in tables:
        leading = {
            str(info[2])
            for idx in conn.execute(f"PRAGMA index_list('{table}')")
            for info in conn.execute(f"PRAGMA index_info('{idx[1]}')")
            if info[0] == 0
        }
        pk = [r for r in conn.execute(f"PRAGMA table_info('{table}')") if r[5] == 1]
        leading |= {str(r[1]) for r in pk}  # an INTEGER PRIMARY KEY is the rowid; any other leads its autoindex
        for fk in conn.execute(f"PRAGMA foreign_key_list('{table}')"):
            if fk[3] not in leading:
                missing.append(f"{table}.{fk[3]} -> {fk[2]}")
    return sorted(missing)


def test_every_foreign_key_is_indexed_on_sqlite(tmp_path: Path) -> None:
    store = STORES["sqlite"](tmp_path, None)
    try:
        with store.transaction() as conn:
            assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
            fks = sum(
                1
                for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                for _ in conn.execute(f"PRAGMA foreign_key_list('{t}')")
            )
            assert fks >= 10  # the check reads the schema: it found the store's foreign keys
            assert _sqlite_unindexed(conn) == []
    finally:
        store.close()


def test_the_check_finds_an_unindexed_foreign_key() -> None:
    conn = sqlite3.connect(":memory:")
    conn.executescript(
        "CREATE TABLE p (id INTEGER PRIMARY KEY);"
        "CREATE TABLE c (k INTEGER PRIMARY KEY REFERENCES p(id),"
        " r INTEGER REFERENCES p(id), s INTEGER REFERENCES p(id));"
        "CREATE INDEX c_by_s ON c(s, r);"
    )
    assert _sqlite_unindexed(conn) == ["c.r -> p"]


def test_every_foreign_key_is_indexed_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    store = STORES["postgresql"](tmp_path, pg_url)
    store.close()  # the schema is made on open
    sql = """
        SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text,
               EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1])
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace
    """
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(sql).fetchall()
    assert len(rows) >= 10
    assert sorted(f"{t}.{col} -> {parent}" for t, col, parent, indexed in rows if not indexed) == []
