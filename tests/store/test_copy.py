"""`facetrust store copy` in every direction: SQLite ⇄ PostgreSQL, PostgreSQL → PostgreSQL, SQLite → SQLite."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import click.testing
import pytest

from facetrust.cli import cli
from facetrust.engine import FaceEngine
from facetrust.governance.crypto import Keyring, load_keyring
from facetrust.models.fake import face_png
from facetrust.server.keys import KeyStore
from facetrust.service import FaceService
from facetrust.store import changelog
from facetrust.store.copy import catalog_of
from facetrust.store.postgres import open_store
from pg_cluster import PgServer

KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def keyring(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Keyring:
    """The template key of the stores, configured for the CLI as for the services."""
    monkeypatch.setenv("FACETRUST_TEMPLATE_KEY", KEY)
    found = load_keyring(key_file=None, env_value=KEY, data_dir=tmp_path)
    assert found is not None
    return found


def _run(fake: FaceEngine, *args: str) -> click.testing.Result:
    return click.testing.CliRunner().invoke(cli, list(args), obj={"engine": fake})


def _source(folder: Path, fake: FaceEngine, keyring: Keyring) -> tuple[list[str], tuple[str, str]]:
    """A SQLite data directory with faces (sealed), a user (made and given faces under client
    tokens), a consent, an erasure of the newest face (so its sequence is ahead of its largest id)
    and an API key."""
    svc = FaceService(folder, fake, keyring=keyring, store="sqlite")
    svc.create_collection("c")
    ids = [
        svc.index_faces("c", face_png((20, 20, 100, n)), external_image_id=f"p{n}").indexed[0].stored.face_id
        for n in range(4)
    ]
    svc.create_user("c", "u1", client_token="make-u1")
    svc.associate_faces("c", "u1", ids[:2], client_token="give-u1")
    svc.record_consent("p1", basis="consent", evidence="signed")
    svc.erase_external_image_id("c", "p3")
    svc.close()
    with KeyStore.open(folder, store="sqlite") as keys:
        key = keys.create("searcher", "copied")
    return ids[:3], key


def _tables(data_dir: Path, store: str) -> dict[str, Any]:
    """Every table's rows, as stored (audit_log by sequence number), and the API keys."""
    found = open_store(data_dir / "facetrust.db", store)
    try:
        conn = found.connection()
        rows = {
            t: sorted(
                (
                    tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                    for r in conn.execute(f"SELECT * FROM {t}")
                ),
                key=repr,
            )
            for t in catalog_of(found).tables(conn)
            if t not in ("keys", "keys_sealer")  # the key store's, compared through KeyStore below
        }
    finally:
        found.close()
    rows["audit_log"] = sorted(rows["audit_log"])
    with KeyStore.open(data_dir, store=store) as keys:
        rows["keys"] = keys.sealed_rows()
    return rows


def _copy(fake: FaceEngine, data: Path, source: str, target: str) -> click.testing.Result:
    return _run(fake, "--data", str(data), "store", "copy", "--from", source, "--to", target)


def _copied(fake: FaceEngine, data: Path, source: str, target: str) -> None:
    done = _copy(fake, data, source, target)
    assert done.exit_code == 0, done.output
    assert done.output.startswith("Copied ") and "1 API keys" in done.output


def _check(
    fake: FaceEngine,
    keyring: Keyring,
    before: dict[str, Any],
    data: Path,
    store: str,
    key: tuple[str, str],
    face_ids: list[str],
) -> dict[str, Any]:
    """The copy at (data, store) holds the source's rows, two CopyStore entries more (the source's own
    record of the export, then the copy's), a verifying chain, the same search results and a working key."""
    after = _tables(data, store)
    assert {t: r for t, r in after.items() if t != "audit_log"} == {t: r for t, r in before.items() if t != "audit_log"}
    count = len(before["audit_log"])
    assert after["audit_log"][:count] == before["audit_log"] and len(after["audit_log"]) == count + 2
    exported, logged = (json.loads(str(row[2])) for row in after["audit_log"][-2:])
    assert (exported["operation"], logged["operation"]) == ("CopyStore", "CopyStore")
    assert "copy_to" in exported and "rows" in logged
    verified = _run(fake, "--data", str(data), "--store", store, "audit-log", "verify")
    assert verified.exit_code == 0, verified.output
    svc = FaceService(data, fake, keyring=keyring, store=store)
    try:
        assert [f.face_id for f in svc.list_faces("c").faces] == face_ids
        assert svc.search_faces_by_image("c", face_png((20, 20, 100, 1))).matches[0].face.face_id == face_ids[1]
    finally:
        svc.close()
    with KeyStore.open(data, store=store) as keys:
        found = keys.lookup(key[0])
    assert found is not None and found[1] == key[1]
    return _tables(data, store)  # with the entries of the checks: the next copy's source


def test_a_round_trip_through_every_direction_keeps_every_row_the_chain_search_and_keys(
    tmp_path: Path, fake: FaceEngine, pg_server: PgServer, keyring: Keyring
) -> None:
    face_ids, key = _source(tmp_path / "a", fake, keyring)
    pg1, pg2, pg3 = (pg_server.schema_url() for _ in range(3))
    state = _tables(tmp_path / "a", "sqlite")

    steps = [  # (data dir, from, to, the copy's data dir and store)
        (tmp_path / "r1", f"sqlite:{tmp_path / 'a'}", pg1, tmp_path / "r1", pg1),
        (tmp_path / "r1", pg1, f"sqlite:{tmp_path / 'b'}", tmp_path / "b", "sqlite"),
        (tmp_path / "r2", f"sqlite:{tmp_path / 'b'}", pg2, tmp_path / "r2", pg2),
        (tmp_path / "r3", pg2, pg3, tmp_path / "r3", pg3),
        (tmp_path / "r3", pg3, f"sqlite:{tmp_path / 'c'}", tmp_path / "c", "sqlite"),
        (tmp_path / "r4", f"sqlite:{tmp_path / 'c'}", f"sqlite:{tmp_path / 'd'}", tmp_path / "d", "sqlite"),
    ]
    for data, source, target, copy_dir, copy_store in steps:
        _copied(fake, data, source, target)
        state = _check(fake, keyring, state, copy_dir, copy_store, key, face_ids)

    svc = FaceService(tmp_path / "d", fake, keyring=keyring, store="sqlite")
    try:
        svc.create_user("c", "u1", client_token="make-u1")  # the kept answers came along: a retry, no conflict
        assert svc.associate_faces("c", "u1", face_ids[:2], client_token="give-u1").associated == tuple(face_ids[:2])
        new = svc.index_faces("c", face_png((20, 20, 100, 9))).indexed[0].stored.face_id
        row = svc.store.get_collection("c")
        assert row is not None
        keys = sorted(f.key for f in svc.store.faces_by_ids(row.id, [new, *face_ids]).values())
    finally:
        svc.close()
    assert keys == [1, 2, 3, 5]  # the fourth face was erased in the source: its id is never handed out again


def test_the_replay_record_is_not_copied_and_a_postgresql_source_with_one_copies_to_sqlite(
    tmp_path: Path, fake: FaceEngine, pg_url: str, keyring: Keyring
) -> None:
    _source(tmp_path / "a", fake, keyring)
    _copied(fake, tmp_path / "r", f"sqlite:{tmp_path / 'a'}", pg_url)
    source = open_store(tmp_path / "r" / "facetrust.db", pg_url)
    try:
        assert source.admit_signature("ab" * 32, 1000.0, 1000.0, repeat_s=10, window_s=300) is None
    finally:
        source.close()

    _copied(fake, tmp_path / "r", pg_url, f"sqlite:{tmp_path / 'b'}")

    copy = open_store(tmp_path / "b" / "facetrust.db", "sqlite")
    try:  # the copy's record starts empty: the signature counts as first seen there
        assert copy.admit_signature("ab" * 32, 1000.0, 1001.0, repeat_s=0, window_s=300) is None
        assert "seen_signatures" not in catalog_of(copy).tables(copy.connection())
    finally:
        copy.close()


def test_how_far_the_change_log_was_pruned_travels_with_the_copy(
    tmp_path: Path, fake: FaceEngine, pg_url: str, keyring: Keyring
) -> None:
    """An index snapshot from before the pruned part is rebuilt on the copy as on the source: the copy
    knows how far the log was pruned (the rest of ``meta`` is each store's own)."""
    _source(tmp_path / "a", fake, keyring)
    source = open_store(tmp_path / "a" / "facetrust.db", "sqlite")
    try:
        with source.transaction() as conn:
            changelog.prune(conn, 1000.0, 86400.0)  # marks the log's newest change
            changelog.prune(conn, 1000.0 + 86400.0, 86400.0)  # a day later: prunes up to it
            floor = changelog.pruned_to(conn)
            assert floor > 0 and conn.execute("SELECT count(*) FROM changes").fetchone() == (1,)
    finally:
        source.close()

    _copied(fake, tmp_path / "r", f"sqlite:{tmp_path / 'a'}", pg_url)
    _copied(fake, tmp_path / "r", pg_url, f"sqlite:{tmp_path / 'b'}")

    for data, store in ((tmp_path / "r", pg_url), (tmp_path / "b", "sqlite")):
        copy = open_store(data / "facetrust.db", store)
        try:
            assert changelog.pruned_to(copy.connection()) == floor
            assert not copy.change_log_reaches(1, 0)
        finally:
            copy.close()


def test_the_source_head_file_anchors_the_copy_and_a_new_sqlite_directory_gets_it(
    tmp_path: Path, fake: FaceEngine, pg_url: str, keyring: Keyring
) -> None:
    _source(tmp_path / "a", fake, keyring)
    _copied(fake, tmp_path / "r", f"sqlite:{tmp_path / 'a'}", pg_url)
    _copied(fake, tmp_path / "r", pg_url, f"sqlite:{tmp_path / 'new' / 'dir'}")

    source_heads = (tmp_path / "a" / "audit.heads").read_text().split()
    copy_heads = (tmp_path / "new" / "dir" / "audit.heads").read_text().split()
    assert set(source_heads) <= set((tmp_path / "r" / "audit.heads").read_text().split())
    assert set(source_heads) <= set(copy_heads) and len(copy_heads) > len(source_heads)


def _refused(fake: FaceEngine, *args: str) -> str:
    done = _run(fake, *args)
    assert done.exit_code == 1, done.output
    assert done.output.startswith("Error: ")
    return done.output


def test_a_target_with_rows_is_refused_and_left_as_it_was(
    tmp_path: Path, fake: FaceEngine, pg_url: str, keyring: Keyring
) -> None:
    _source(tmp_path / "a", fake, keyring)
    _source(tmp_path / "b", fake, keyring)
    _copied(fake, tmp_path / "r", f"sqlite:{tmp_path / 'a'}", pg_url)
    before_pg, before_b = _tables(tmp_path / "r", pg_url), _tables(tmp_path / "b", "sqlite")

    into_pg = _refused(
        fake, "--data", str(tmp_path / "r"), "store", "copy", "--from", f"sqlite:{tmp_path / 'b'}", "--to", pg_url
    )
    into_sqlite = _refused(
        fake, "store", "copy", "--from", f"sqlite:{tmp_path / 'a'}", "--to", f"sqlite:{tmp_path / 'b'}"
    )

    assert "The target store is not empty (its table " in into_pg and "nothing was written" in into_pg
    assert "The target store is not empty (its table facetrust.db: " in into_sqlite
    assert _tables(tmp_path / "r", pg_url) == before_pg and _tables(tmp_path / "b", "sqlite") == before_b


def test_a_filled_target_given_as_a_relative_directory_is_refused_as_not_empty(
    tmp_path: Path, fake: FaceEngine, keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    _source(tmp_path / "a", fake, keyring)
    _source(tmp_path / "b", fake, keyring)
    monkeypatch.chdir(tmp_path)

    out = _refused(fake, "store", "copy", "--from", "sqlite:a", "--to", "sqlite:b")

    assert "The target store is not empty (its table facetrust.db: " in out  # was a ValueError's traceback


def test_a_target_whose_only_rows_are_api_keys_is_refused(tmp_path: Path, fake: FaceEngine, keyring: Keyring) -> None:
    _source(tmp_path / "a", fake, keyring)
    with KeyStore.open(tmp_path / "b", store="sqlite") as keys:
        keys.create("admin")

    out = _refused(fake, "store", "copy", "--from", f"sqlite:{tmp_path / 'a'}", "--to", f"sqlite:{tmp_path / 'b'}")

    assert "not empty (its table keys.db: keys has rows)" in out
    assert not (tmp_path / "b" / "facetrust.db").exists()


def test_bad_sides_are_refused_naming_the_option(tmp_path: Path, fake: FaceEngine, pg_url: str) -> None:
    FaceService(tmp_path / "d", fake, store="sqlite").close()
    d = f"sqlite:{tmp_path / 'd'}"

    missing = _refused(fake, "store", "copy", "--from", f"sqlite:{tmp_path / 'none'}", "--to", pg_url)
    scheme = _refused(fake, "store", "copy", "--from", d, "--to", "mysql://x")
    bare = _refused(fake, "store", "copy", "--from", str(tmp_path / "d"), "--to", pg_url)
    same = _refused(fake, "store", "copy", "--from", d, "--to", f"sqlite:{tmp_path / 'd' / '.'}")
    down = _refused(fake, "store", "copy", "--from", d, "--to", f"postgresql://nobody@/db?host={tmp_path / 'nosocket'}")
    not_a_store = _refused(
        fake, "--data", str(tmp_path / "r"), "store", "copy", "--from", pg_url, "--to", f"sqlite:{tmp_path / 'e'}"
    )

    assert f"{tmp_path / 'none'} holds no facetrust database (facetrust.db)" in missing
    assert "--to must be sqlite:DIR (a data directory) or a postgresql:// URL; got 'mysql://x'" in scheme
    assert "--from must be sqlite:DIR (a data directory) or a postgresql:// URL" in bare
    assert "--from and --to name the same store" in same
    assert "Cannot open the PostgreSQL store postgresql://nobody@/db" in down
    assert "the database holds no facetrust store (no audit_log table)" in not_a_store
    assert not (tmp_path / "e").exists()


def test_a_source_sealed_with_another_template_key_is_refused_before_anything_is_written(
    tmp_path: Path, fake: FaceEngine, keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    _source(tmp_path / "a", fake, keyring)
    monkeypatch.setenv("FACETRUST_TEMPLATE_KEY", base64.b64encode(os.urandom(32)).decode())

    out = _refused(fake, "store", "copy", "--from", f"sqlite:{tmp_path / 'a'}", "--to", f"sqlite:{tmp_path / 'b'}")

    assert f"sealed with template key {keyring.current.key_id.hex()}, which is not configured here" in out
    assert not (tmp_path / "b").exists()


def test_api_keys_sealed_with_another_server_key_are_refused_before_anything_is_written(
    tmp_path: Path, fake: FaceEngine, keyring: Keyring
) -> None:
    _source(tmp_path / "a", fake, keyring)
    (tmp_path / "a" / "keys.db").unlink()
    with KeyStore.open(tmp_path / "a", store="sqlite", server_key_file=tmp_path / "other.key") as keys:
        key_id, _ = keys.create("admin")

    out = _refused(fake, "store", "copy", "--from", f"sqlite:{tmp_path / 'a'}", "--to", f"sqlite:{tmp_path / 'b'}")

    assert f"The secret of key {key_id} was sealed with server key" in out
    assert not (tmp_path / "b" / "facetrust.db").exists() and not (tmp_path / "b" / "keys.db").exists()


def test_a_source_whose_chain_does_not_verify_or_a_target_head_file_of_another_chain_is_refused(
    tmp_path: Path, fake: FaceEngine, keyring: Keyring
) -> None:
    _source(tmp_path / "a", fake, keyring)
    _source(tmp_path / "other", fake, keyring)
    (tmp_path / "b").mkdir(mode=0o700)
    os.link(tmp_path / "other" / "audit.heads", tmp_path / "b" / "audit.heads")

    foreign = _refused(fake, "store", "copy", "--from", f"sqlite:{tmp_path / 'a'}", "--to", f"sqlite:{tmp_path / 'b'}")
    with sqlite3.connect(tmp_path / "a" / "facetrust.db") as conn:
        conn.execute("UPDATE audit_log SET entry = entry || ' ' WHERE seq = 2")
    conn.close()
    altered = _refused(fake, "store", "copy", "--from", f"sqlite:{tmp_path / 'a'}", "--to", f"sqlite:{tmp_path / 'c'}")

    assert "Copy refused: the source's audit log does not verify against the head files" in foreign
    assert "rewritten" in foreign
    assert "entry 2 was altered" in altered
    assert not (tmp_path / "b" / "facetrust.db").exists() and not (tmp_path / "c").exists()


def test_a_copy_that_fails_in_its_transaction_leaves_no_store_in_a_new_directory(
    tmp_path: Path, fake: FaceEngine, keyring: Keyring
) -> None:
    _source(tmp_path / "a", fake, keyring)
    with sqlite3.connect(tmp_path / "a" / "facetrust.db") as conn:  # a table this facetrust does not know
        conn.execute("CREATE TABLE later_feature (x INTEGER)")
        conn.execute("INSERT INTO later_feature VALUES (1)")
    conn.close()

    out = _refused(fake, "store", "copy", "--from", f"sqlite:{tmp_path / 'a'}", "--to", f"sqlite:{tmp_path / 'b'}")

    assert "Table later_feature of the source has no counterpart in the target's schema" in out
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == []


CHILD = Path(__file__).resolve().parent / "copy_child.py"


def _killed_copy(source: Path, target: Path, at: str = "", kill: tuple[str, ...] = ()) -> None:
    """``store copy`` from ``source`` into ``target`` in a child process killed with SIGKILL: where the
    line of store/copy.py holding ``at`` is about to run, or by ``kill`` (a command it runs under)."""
    command = [*kill, sys.executable, str(CHILD), at, "store", "copy"]
    done = subprocess.run([*command, "--from", f"sqlite:{source}", "--to", f"sqlite:{target}"], capture_output=True)
    assert done.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), done.stderr.decode()


def test_a_copy_killed_before_its_commit_leaves_a_target_that_a_rerun_copies_into(
    tmp_path: Path, fake: FaceEngine, keyring: Keyring
) -> None:
    face_ids, key = _source(tmp_path / "a", fake, keyring)
    _killed_copy(tmp_path / "a", tmp_path / "b", at='conn.execute("COMMIT")')
    assert (tmp_path / "b" / "facetrust.db-journal").is_file()  # its writes reached the file: SQLite rolls them back
    before = _tables(tmp_path / "a", "sqlite")  # with the source's record of the killed export

    _copied(fake, tmp_path / "b", f"sqlite:{tmp_path / 'a'}", f"sqlite:{tmp_path / 'b'}")  # was "readonly database"

    _check(fake, keyring, before, tmp_path / "b", "sqlite", key, face_ids)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace kills the copy inside SQLite's commit")
def test_a_copy_killed_right_after_its_commit_is_refused_as_not_empty_and_keeps_the_copy(
    tmp_path: Path, fake: FaceEngine, keyring: Keyring
) -> None:
    _source(tmp_path / "a", fake, keyring)
    journal = tmp_path / "b" / "facetrust.db-journal"
    journal.parent.mkdir()
    # the journal's third deletion is the copy's, after its commit point (the first two: the target's schema)
    kill = ("strace", "-f", "-o", os.devnull, "-P", str(journal), "-e", "trace=unlink")
    _killed_copy(tmp_path / "a", tmp_path / "b", kill=(*kill, "-e", "inject=unlink:signal=KILL:when=3"))
    assert journal.is_file()
    source = _tables(tmp_path / "a", "sqlite")

    out = _refused(fake, "store", "copy", "--from", f"sqlite:{tmp_path / 'a'}", "--to", f"sqlite:{tmp_path / 'b'}")

    assert (
        "The target store is not empty (its table facetrust.db: " in out
    )  # was "attempt to write a readonly database"
    copied = _tables(tmp_path / "b", "sqlite")
    assert {t: r for t, r in copied.items() if t != "audit_log"} == {
        t: r for t, r in source.items() if t != "audit_log"
    }
    assert copied["audit_log"][:-1] == source["audit_log"]  # and its own CopyStore entry: committed whole


@pytest.mark.parametrize(
    ("source_engine", "target_engine"), [("sqlite", "sqlite"), ("postgresql", "sqlite"), ("sqlite", "postgresql")]
)
def test_a_source_written_to_during_the_copy_leaves_a_snapshot_copy_that_verifies_and_a_warning(
    tmp_path: Path,
    fake: FaceEngine,
    keyring: Keyring,
    monkeypatch: pytest.MonkeyPatch,
    pg_server: PgServer,
    source_engine: str,
    target_engine: str,
) -> None:
    """Each side is named (``--store`` too), so the test is the same whatever store the suite runs on."""
    from facetrust.store import busy
    from facetrust.store import copy as copier

    ids, _ = _source(tmp_path / "a", fake, keyring)
    source_dir, source, store = tmp_path / "a", f"sqlite:{tmp_path / 'a'}", "sqlite"
    if source_engine == "postgresql":
        source_dir, store = tmp_path / "s", pg_server.schema_url()
        _copied(fake, source_dir, source, store)
        source = store
    copy_dir, target, copy_store = tmp_path / "b", f"sqlite:{tmp_path / 'b'}", "sqlite"
    if target_engine == "postgresql":
        target = copy_store = pg_server.schema_url()
    data = copy_dir if target_engine == "postgresql" else source_dir  # --data: a PostgreSQL side's head file
    # The erasure's WAL checkpoint waits out the copy's read snapshot for the busy timeout, then leaves
    # the checkpoint due (store/sqlite.py): a short one keeps the test from waiting 30 s for that.
    monkeypatch.setattr(busy, "BUSY_TIMEOUT_S", 1.0)
    real = copier._insert

    def insert(conn: sqlite3.Connection, table: str, columns: Any, rows: Any) -> None:
        real(conn, table, columns, rows)
        if table == "audit_log":  # another writer, after the copy read the log and before it reads the faces
            with FaceService(source_dir, fake, keyring=keyring, store=store) as other:
                other.delete_faces("c", [ids[0]])

    monkeypatch.setattr(copier, "_insert", insert)
    done = _copy(fake, data, source, target)
    assert done.exit_code == 0, done.output
    assert "Warning: the source was written to while it was copied: its 1 audit entries after" in done.output
    verified = _run(fake, "--data", str(copy_dir), "--store", copy_store, "audit-log", "verify")
    assert verified.exit_code == 0, verified.output
    with FaceService(copy_dir, fake, keyring=keyring, store=copy_store) as copy:  # the source as the copy began
        assert [f.face_id for f in copy.list_faces("c").faces] == ids


def test_a_copy_refused_by_its_target_logs_no_export_in_the_source(
    tmp_path: Path, fake: FaceEngine, keyring: Keyring
) -> None:
    _source(tmp_path / "a", fake, keyring)
    target = tmp_path / "b"
    target.mkdir()
    conn = sqlite3.connect(target / "facetrust.db")  # a store of a newer facetrust: refused when opened
    conn.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    conn.commit()
    conn.close()
    done = _copy(fake, tmp_path / "a", f"sqlite:{tmp_path / 'a'}", f"sqlite:{target}")
    assert done.exit_code != 0
    with FaceService(tmp_path / "a", fake, keyring=keyring, store="sqlite") as source:
        operations = [e.data["operation"] for e in source.get_audit_log(disclose=True).entries]
    assert "CopyStore" not in operations


def test_a_copy_in_place_to_postgresql_anchors_its_own_entry_and_finds_no_break(
    tmp_path: Path, fake: FaceEngine, pg_url: str, keyring: Keyring, caplog: pytest.LogCaptureFixture
) -> None:
    _source(tmp_path / "a", fake, keyring)
    with caplog.at_level("CRITICAL"):
        _copied(fake, tmp_path / "a", f"sqlite:{tmp_path / 'a'}", pg_url)  # the data directory's own head file
    assert not [r for r in caplog.records if r.levelname == "CRITICAL"]
    store = open_store(tmp_path / "a" / "facetrust.db", pg_url)
    try:
        tip = store.connection().execute("SELECT max(seq) FROM audit_log").fetchone()[0]
    finally:
        store.close()
    last = (tmp_path / "a" / "audit.heads").read_text().split()[-1]
    assert int(last.split(":")[0]) == tip
