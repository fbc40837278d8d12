"""KeyStore: keys.db with mode 0600; create, list, get, revoke, lookup; persistence; no secret in records."""

from __future__ import annotations

import dataclasses
import os
import re
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from facetrust.errors import ConfigurationError, InvalidParameterError, NotFoundError
from facetrust.server.keys import MIGRATIONS, KeyRecord, KeyStore
from pg_cluster import SQLITE_FILES


@pytest.fixture
def store(tmp_path: Path) -> Iterator[KeyStore]:
    with KeyStore.open(tmp_path) as keys:
        yield keys


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@SQLITE_FILES
def test_open_creates_keys_db_readable_by_its_owner_only(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        KeyStore.open(tmp_path / "data").close()
    finally:
        os.umask(old)
    assert mode(tmp_path / "data" / "keys.db") == 0o600


@SQLITE_FILES
def test_open_tightens_a_keys_db_that_others_can_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    KeyStore.open(tmp_path).close()
    os.chmod(tmp_path / "keys.db", 0o644)

    KeyStore.open(tmp_path).close()

    assert mode(tmp_path / "keys.db") == 0o600
    assert f"Key store {tmp_path / 'keys.db'} had mode 644; setting it to 600" in caplog.text


def test_create_returns_an_aws_shaped_key_id_and_a_40_character_secret(store: KeyStore) -> None:
    key_id, secret = store.create("searcher")
    assert re.fullmatch(r"FTK[A-Z0-9]{17}", key_id)
    assert re.fullmatch(r"[A-Za-z0-9_-]{40}", secret)


def test_created_keys_are_distinct(store: KeyStore) -> None:
    made = [store.create("admin") for _ in range(20)]
    assert len({k for k, _ in made}) == len({s for _, s in made}) == 20


def test_create_refuses_an_unknown_role_listing_the_valid_ones(store: KeyStore) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        store.create("superuser")
    assert caught.value.message == "Unknown role 'superuser'; valid roles: admin, enroller, searcher, reviewer, auditor"
    assert store.list() == []


@pytest.mark.parametrize("description", ["x" * 257, "line\nbreak"])
def test_create_refuses_a_long_or_unprintable_description(store: KeyStore, description: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        store.create("admin", description)
    assert caught.value.parameter == "description"


def test_list_shows_every_key_oldest_first_without_secrets(store: KeyStore) -> None:
    before = time.time()
    first, _ = store.create("admin", "ops laptop")
    second, _ = store.create("auditor")

    records = store.list()

    assert [(r.key_id, r.role, r.description, r.revoked_at) for r in records] == [
        (first, "admin", "ops laptop", None),
        (second, "auditor", "", None),
    ]
    assert all(before <= r.created_at <= time.time() for r in records)
    assert [f.name for f in dataclasses.fields(KeyRecord)] == [
        "key_id",
        "role",
        "created_at",
        "revoked_at",
        "description",
    ]


def test_lookup_returns_the_record_and_the_secret(store: KeyStore) -> None:
    key_id, secret = store.create("enroller", "kiosk")
    found = store.lookup(key_id)
    assert found is not None
    assert found[0] == store.get(key_id)
    assert found[1] == secret


def test_lookup_of_an_unknown_key_is_none(store: KeyStore) -> None:
    assert store.lookup("FTKAAAAAAAAAAAAAAAAA") is None


def test_revoke_marks_the_key_revoked_and_keeps_it_listed(store: KeyStore) -> None:
    key_id, _ = store.create("searcher")

    record = store.revoke(key_id)

    assert record.revoked_at is not None and not record.active
    assert store.list() == [record]
    assert store.get(key_id) == record


def test_revoking_twice_keeps_the_first_time(store: KeyStore) -> None:
    key_id, _ = store.create("searcher")
    first = store.revoke(key_id)
    assert store.revoke(key_id) == first


def test_revoke_of_an_unknown_key_is_not_found(store: KeyStore) -> None:
    with pytest.raises(NotFoundError) as caught:
        store.revoke("FTKAAAAAAAAAAAAAAAAA")
    assert caught.value.message == "Unknown key id 'FTKAAAAAAAAAAAAAAAAA'"
    assert caught.value.resource == "FTKAAAAAAAAAAAAAAAAA"


def test_keys_persist_across_reopening(tmp_path: Path) -> None:
    with KeyStore.open(tmp_path) as keys:
        kept, secret = keys.create("admin", "kept")
        revoked, _ = keys.create("auditor")
        keys.revoke(revoked)

    with KeyStore.open(tmp_path) as keys:
        assert [(r.key_id, r.active) for r in keys.list()] == [(kept, True), (revoked, False)]
        assert keys.lookup(kept) == (keys.get(kept), secret)


def test_a_revocation_by_another_connection_is_seen_at_once(tmp_path: Path, store: KeyStore) -> None:
    key_id, _ = store.create("admin")
    with KeyStore.open(tmp_path) as other:
        other.revoke(key_id)
    found = store.lookup(key_id)
    assert found is not None and found[0].revoked_at is not None


def test_concurrent_creates_from_threads_all_land(store: KeyStore) -> None:
    made: list[str] = []

    def work() -> None:
        for _ in range(10):
            made.append(store.create("searcher")[0])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(made) == sorted(r.key_id for r in store.list())
    assert len(made) == 40


def test_reprs_hold_no_secret(store: KeyStore) -> None:
    key_id, secret = store.create("admin")
    assert secret not in repr(store) + repr(store.list()) + repr(store.get(key_id)) + str(vars(store.get(key_id)))


@SQLITE_FILES
def test_a_keys_db_from_a_newer_facetrust_is_refused(tmp_path: Path) -> None:
    KeyStore.open(tmp_path).close()
    with sqlite3.connect(tmp_path / "keys.db") as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()

    with pytest.raises(ConfigurationError) as caught:
        KeyStore.open(tmp_path)

    assert (
        f"schema version 99, newer than this facetrust ({len(MIGRATIONS)}); upgrade facetrust" in caught.value.message
    )


@SQLITE_FILES
def test_a_keys_db_that_is_not_a_database_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "keys.db").write_bytes(b"not sqlite" * 100)
    os.chmod(tmp_path / "keys.db", 0o600)

    with pytest.raises(ConfigurationError) as caught:
        KeyStore.open(tmp_path)

    assert caught.value.message.startswith(f"Cannot open key store {tmp_path / 'keys.db'}: ")


@SQLITE_FILES
def test_secrets_are_sealed_in_keys_db_and_open_for_lookup(tmp_path: Path, store: KeyStore) -> None:
    key_id, secret = store.create("admin")

    raw = sqlite3.connect(tmp_path / "keys.db").execute("SELECT secret FROM keys").fetchone()[0]
    assert raw.startswith("FTS1:") and secret not in raw
    assert secret.encode() not in (tmp_path / "keys.db").read_bytes()
    found = store.lookup(key_id)
    assert found is not None and found[1] == secret


@SQLITE_FILES
def test_secrets_stored_in_the_clear_by_an_older_version_are_sealed_on_open(tmp_path: Path) -> None:
    KeyStore.open(tmp_path).close()
    with sqlite3.connect(tmp_path / "keys.db") as conn:
        conn.execute(
            "INSERT INTO keys(key_id, secret, role, description, created_at) VALUES (?, ?, ?, ?, ?)",
            ("FTKOLDPLAINKEY000001", "old-plain-secret-0123456789abcdefghijkl", "admin", "", time.time()),
        )
    conn.close()

    with KeyStore.open(tmp_path) as keys:
        found = keys.lookup("FTKOLDPLAINKEY000001")

    assert found is not None and found[1] == "old-plain-secret-0123456789abcdefghijkl"
    assert b"old-plain-secret" not in (tmp_path / "keys.db").read_bytes()


def test_the_server_key_is_kept_private_outside_the_data_directory(tmp_path: Path, private_config_dir: Path) -> None:
    KeyStore.open(tmp_path / "data").close()

    assert mode(private_config_dir / "server.key") == 0o600
    with pytest.raises(ConfigurationError, match=r"Server key file .* is inside the data directory"):
        KeyStore.open(tmp_path / "data", server_key_file=tmp_path / "data" / "server.key")


def test_secrets_sealed_with_another_server_key_are_refused_clearly(tmp_path: Path) -> None:
    with KeyStore.open(tmp_path / "data") as keys:
        key_id, _ = keys.create("admin")

    with pytest.raises(ConfigurationError, match=f"The secret of key {key_id} was sealed with server key"):
        KeyStore.open(tmp_path / "data", server_key_file=tmp_path / "other.key")  # at start-up, not per request


@SQLITE_FILES
def test_a_lost_server_key_is_refused_with_a_way_to_start_over_that_works(tmp_path: Path) -> None:
    with KeyStore.open(tmp_path / "data") as keys:
        keys.create("admin")
    path = tmp_path / "data" / "keys.db"

    with pytest.raises(ConfigurationError) as refused:
        KeyStore.open(tmp_path / "data", server_key_file=tmp_path / "new.key")  # server.key lost: a new one

    assert f"restore that server.key, or move {path} aside and create new keys" in str(refused.value)
    path.rename(tmp_path / "keys.db.lost")  # as it says
    with KeyStore.open(tmp_path / "data", server_key_file=tmp_path / "new.key") as keys:
        keys.create("admin")
        assert len(keys.list()) == 1


def test_a_lost_server_key_on_postgresql_is_refused_with_a_way_to_start_over_that_works(
    tmp_path: Path, pg_url: str
) -> None:
    with KeyStore.open(tmp_path / "data", store=pg_url) as keys:
        keys.create("admin")

    with pytest.raises(ConfigurationError) as refused:
        KeyStore.open(tmp_path / "data", server_key_file=tmp_path / "new.key", store=pg_url)

    assert "restore that server.key, or delete the rows of its keys and keys_sealer tables and create new keys" in str(
        refused.value
    )
    with psycopg.connect(pg_url, autocommit=True) as admin:  # as it says
        admin.execute("DELETE FROM keys")
        admin.execute("DELETE FROM keys_sealer")
    with KeyStore.open(tmp_path / "data", server_key_file=tmp_path / "new.key", store=pg_url) as keys:
        keys.create("admin")
        assert len(keys.list()) == 1


def test_a_store_opened_with_one_server_key_refuses_another_before_it_holds_any_key(tmp_path: Path) -> None:
    """Another user's (or HOME's) server.key must not seal keys this store's server cannot open."""
    KeyStore.open(tmp_path / "data").close()  # a server's first start: no key yet

    with pytest.raises(ConfigurationError, match=r"sealed with server key [0-9a-f]{16}, not the configured"):
        KeyStore.open(tmp_path / "data", server_key_file=tmp_path / "other.key")
    with KeyStore.open(tmp_path / "data") as keys:  # the store's own server key still opens it, still empty
        assert keys.list() == []


def test_a_postgresql_key_store_whose_connection_the_server_ended_reads_on_a_new_one(
    tmp_path: Path, pg_url: str
) -> None:
    name = f"facetrust-keys-{uuid.uuid4().hex[:8]}"
    with KeyStore.open(tmp_path, store=f"{pg_url}&application_name={name}") as keys:
        key_id, secret = keys.create("searcher")
        for read in (lambda: keys.lookup(key_id), lambda: keys.role_of(key_id), keys.list):
            with psycopg.connect(pg_url, autocommit=True) as admin:  # as a server restart ends every backend
                ended = admin.execute(
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name = %s",
                    (name,),
                ).fetchall()
            assert ended == [(True,)]

            assert read()  # a new connection, the read again: no error

        assert keys.lookup(key_id) == (keys.get(key_id), secret)
        assert keys.role_of(key_id) == "searcher"


def test_a_server_key_folder_that_cannot_be_made_is_a_configuration_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker / "config"))

    with pytest.raises(
        ConfigurationError, match=r"Cannot create the server key file .*/server\.key: .*XDG_CONFIG_HOME"
    ):
        KeyStore.open(tmp_path / "data")
    assert not (tmp_path / "data" / "keys.db").exists()


@SQLITE_FILES
def test_a_key_store_locked_by_another_process_is_store_busy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from facetrust.errors import StoreBusyError
    from facetrust.server import keys as keys_module

    KeyStore.open(tmp_path).close()
    monkeypatch.setattr(keys_module, "BUSY_TIMEOUT_S", 0.2)
    other = sqlite3.connect(tmp_path / "keys.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process creating keys, say
    try:
        with pytest.raises(StoreBusyError, match=r"^Key store .*keys\.db is locked by another process"):
            KeyStore.open(tmp_path)  # it records the server key's id on every open
        other.execute("COMMIT")
        with KeyStore.open(tmp_path) as keys:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreBusyError):
                keys.create("admin")
            other.execute("COMMIT")
            assert keys.create("admin")[0].startswith("FT")
    finally:
        other.close()
