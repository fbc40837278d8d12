"""Every store records its schema version and refuses one from a newer facetrust, SQLite and PostgreSQL alike."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from facetrust.errors import ConfigurationError
from facetrust.store.postgres import open_store, redact_url
from facetrust.store.schema import SCHEMA_VERSION


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_store_of_a_newer_schema_version_is_refused_on_both_stores(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = str(request.getfixturevalue("pg_url")) if kind == "postgresql" else "sqlite"
    store = open_store(tmp_path / "facetrust.db", url)
    try:
        assert store.connection().execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        with store.transaction() as conn:
            conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    finally:
        store.close()

    with pytest.raises(
        ConfigurationError, match=rf"has schema version 7, newer than this facetrust \({SCHEMA_VERSION}\)"
    ) as caught:
        open_store(tmp_path / "facetrust.db", url)
    # The message names the store refused: the data directory, or the database (never its password).
    if kind == "sqlite":
        assert caught.value.message.startswith(f"Data directory {tmp_path} has schema version 7")
    else:
        assert caught.value.message.startswith(f"PostgreSQL store {redact_url(url)} has schema version 7")
        assert "Data directory" not in caught.value.message


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_version_2_store_gets_each_faces_expiry_as_its_retention_end(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from .conftest import collection, face

    url = str(request.getfixturevalue("pg_url")) if kind == "postgresql" else "sqlite"
    store = open_store(tmp_path / "facetrust.db", url)
    try:
        cid = collection(store)
        with store.transaction() as conn:
            store.insert_faces(conn, cid, [face(1, expires_at=100.0), face(2)])
            conn.execute("ALTER TABLE faces DROP COLUMN retained_until")  # as version 2 made it
            conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    finally:
        store.close()

    store = open_store(tmp_path / "facetrust.db", url)
    try:
        conn = store.connection()
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        faces = store.faces_by_keys(cid, store.face_keys(cid))
        assert sorted((f.expires_at, f.retained_until) for f in faces.values() if f.expires_at) == [(100.0, 100.0)]
        assert [f.retained_until for f in faces.values() if f.expires_at is None] == [None]
        with store.transaction() as c:  # and new faces record their own, to the fraction of a second
            (key,) = store.insert_faces(c, cid, [replace(face(3, expires_at=50.0), retained_until=1_767_225_599.5)])
        assert store.faces_by_keys(cid, [key])[key].retained_until == 1_767_225_599.5
    finally:
        store.close()


OLD_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS ingested_erased AFTER DELETE ON faces BEGIN
    DELETE FROM ingested_images WHERE image_id = OLD.image_id;
END;
"""


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_version_3_store_keeps_an_images_resume_record_until_its_last_face_goes(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from .conftest import collection, face

    url = str(request.getfixturevalue("pg_url")) if kind == "postgresql" else "sqlite"
    postgres = kind == "postgresql"
    store = open_store(tmp_path / "facetrust.db", url)
    try:
        cid = collection(store)
        both = [replace(face(n), image_id="group-photo") for n in (1, 2)]
        with store.transaction() as conn:
            keys = store.insert_faces(conn, cid, both)
            store.record_ingested(conn, cid, "a" * 64, "group-photo", 1.0)
            conn.execute("DROP TRIGGER ingested_erased_last" + (" ON faces" if postgres else ""))
            # as version 3 made it: the record went with the first face
            if postgres:
                conn.executescript(OLD_TRIGGER)  # translated into PostgreSQL's function and trigger
            else:
                conn.execute(OLD_TRIGGER)
            conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    finally:
        store.close()

    store = open_store(tmp_path / "facetrust.db", url)
    try:
        with store.transaction() as conn:
            store.delete_faces(conn, cid, keys[:1])
        assert store.ingested(cid, ["a" * 64]) == {"a" * 64}  # one face of the photo remains
        with store.transaction() as conn:
            store.delete_faces(conn, cid, keys[1:])
        assert store.ingested(cid, ["a" * 64]) == set()  # no trace of the erased photo
    finally:
        store.close()


def test_the_version_4_upgrade_puts_the_new_trigger_in_place_in_its_own_transaction(tmp_path: Path) -> None:
    """No moment without a trigger: the upgrade itself makes it, not the schema script run after."""
    import sqlite3

    from facetrust.store.upgrade import upgrade

    store = open_store(tmp_path / "facetrust.db", "sqlite")
    with store.transaction() as conn:
        conn.execute("DROP TRIGGER ingested_erased_last")
        conn.execute("DROP INDEX faces_by_image")
        conn.execute(OLD_TRIGGER)
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    store.close()

    conn = sqlite3.connect(tmp_path / "facetrust.db", isolation_level=None)
    try:
        upgrade(conn, "test store", postgres=False)
        found = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('trigger', 'index')")}
    finally:
        conn.close()
    assert {"ingested_erased_last", "faces_by_image"} <= found and "ingested_erased" not in found


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_version_4_store_gets_the_client_token_tables_in_the_upgrade_itself(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Version 4 stores had no ClientRequestToken answers; a version-4 facetrust deleting users
    beside them would not forget theirs, so from 5 on it refuses the store."""
    from facetrust.store.upgrade import upgrade

    url = str(request.getfixturevalue("pg_url")) if kind == "postgresql" else "sqlite"
    store = open_store(tmp_path / "facetrust.db", url)
    try:
        with store.transaction() as conn:
            conn.execute("DROP TABLE client_token_faces")
            conn.execute("DROP TABLE client_tokens")
            if kind == "postgresql":
                conn.execute("DROP TRIGGER IF EXISTS client_tokens_face_gone ON faces")
            conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
        conn = store.connection()
        upgrade(conn, "test store", postgres=kind == "postgresql")  # as opening it runs, before the schema script
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        assert conn.execute("SELECT count(*) FROM client_tokens").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM client_token_faces").fetchone() == (0,)
    finally:
        store.close()
    assert SCHEMA_VERSION == 6  # 6: the change log pruned (store/changelog.py); a facetrust of 5 refuses it
