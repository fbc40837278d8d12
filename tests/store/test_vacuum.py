"""Erasure is physical on both stores: `facetrust store vacuum` and the receipt's storage statement."""

from __future__ import annotations

from pathlib import Path

import click.testing
import numpy as np
import psycopg
import pytest

from facetrust.cli import cli
from facetrust.engine import FaceEngine
from facetrust.governance.crypto import generate_key
from facetrust.models.fake import face_png
from facetrust.service import FaceService
from pg_cluster import PgServer


def _run(fake: FaceEngine, *args: str) -> click.testing.Result:
    return click.testing.CliRunner().invoke(cli, list(args), obj={"engine": fake})


def _schema_files(server: PgServer, url: str) -> list[Path]:
    """The files of every table, index and TOAST table of the URL's schema, after a checkpoint."""
    assert server.folder is not None
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")  # dirty pages reach the files
        rows = conn.execute(
            "SELECT pg_relation_filepath(c.oid), pg_relation_filepath(nullif(c.reltoastrelid, 0)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema()"
        ).fetchall()
    found = []
    for row in rows:
        for rel in row:
            if rel is not None:
                found += [p for p in (server.folder / "data").glob(f"{rel}*") if p.is_file()]
    return found


def test_erased_templates_leave_the_postgresql_files_after_store_vacuum(
    tmp_path: Path, fake: FaceEngine, pg_server: PgServer, pg_url: str
) -> None:
    if pg_server.folder is None:
        pytest.skip("the server's files are not readable here (FACETRUST_TEST_POSTGRES names a server elsewhere)")
    svc = FaceService(tmp_path / "data", fake, store=pg_url, keyring=None)  # plain templates: findable bytes
    svc.create_collection("c")
    svc.index_faces("c", face_png((20, 20, 100, 7)), external_image_id="erin")
    row = svc.store.get_collection("c")
    assert row is not None
    needle = np.frombuffer(svc.store.embedding(row.id, svc.store.face_keys(row.id)[0]) or b"", np.float32)[:8].tobytes()
    assert any(needle in p.read_bytes() for p in _schema_files(pg_server, pg_url))  # the scan sees it
    receipt = svc.erase_external_image_id("c", "erin")
    assert "facetrust store vacuum" in receipt.storage
    assert svc.verify_receipt(receipt)
    svc.close()
    done = _run(fake, "--data", str(tmp_path / "data"), "--store", pg_url, "store", "vacuum")
    assert done.exit_code == 0, done.output
    assert done.output.startswith("Vacuumed: VACUUM FULL of faces, face_crops")
    for path in _schema_files(pg_server, pg_url):
        assert needle not in path.read_bytes(), path


def test_templates_rotated_on_postgresql_leave_its_files_after_the_vacuum_their_rotation_made_due(
    tmp_path: Path, fake: FaceEngine, pg_server: PgServer, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if pg_server.folder is None:
        pytest.skip("the server's files are not readable here (FACETRUST_TEST_POSTGRES names a server elsewhere)")
    svc = FaceService(tmp_path / "data", fake, store=pg_url, keyring=None)  # a store from before encryption
    svc.create_collection("c")
    svc.index_faces("c", face_png((20, 20, 100, 7)))
    row = svc.store.get_collection("c")
    assert row is not None
    needle = np.frombuffer(svc.store.embedding(row.id, svc.store.face_keys(row.id)[0]) or b"", np.float32)[:8].tobytes()
    svc.close()
    monkeypatch.setenv("FACETRUST_TEMPLATE_KEY", generate_key())

    rotated = _run(fake, "--data", str(tmp_path / "data"), "--store", pg_url, "templates", "rotate")

    assert rotated.exit_code == 0, rotated.output
    assert "remain in dead row versions of the database's files until `facetrust store vacuum`" in rotated.output
    with psycopg.connect(pg_url) as conn:  # a server's scheduled vacuum is due, as after an erasure
        assert conn.execute("SELECT value FROM meta WHERE key = 'erasures'").fetchone() == ("1",)
    assert any(needle in p.read_bytes() for p in _schema_files(pg_server, pg_url))  # the old row version
    done = _run(fake, "--data", str(tmp_path / "data"), "--store", pg_url, "store", "vacuum")
    assert done.exit_code == 0, done.output
    for path in _schema_files(pg_server, pg_url):
        assert needle not in path.read_bytes(), path


def test_store_vacuum_on_sqlite_rewrites_the_database_and_is_logged(tmp_path: Path, fake: FaceEngine) -> None:
    svc = FaceService(tmp_path / "data", fake, store="sqlite")
    svc.create_collection("c")
    svc.index_faces("c", face_png((20, 20, 100, 7)), external_image_id="erin")
    receipt = svc.erase_external_image_id("c", "erin")
    # the rows are overwritten in the erasure, not the copies SQLite left where it moved rows from
    assert "facetrust store vacuum" in receipt.storage and "unused space" in receipt.storage
    svc.close()
    done = _run(fake, "--data", str(tmp_path / "data"), "--store", "sqlite", "store", "vacuum")
    assert (done.exit_code, done.output) == (0, "Vacuumed: VACUUM of facetrust.db and a WAL checkpoint\n")
    svc = FaceService(tmp_path / "data", fake, store="sqlite")
    try:
        last = svc.get_audit_log(disclose=True).entries[-1].data
        assert (last["operation"], last["vacuumed"]) == ("VacuumStore", "VACUUM of facetrust.db and a WAL checkpoint")
    finally:
        svc.close()


def _statistics_files(server: PgServer, url: str) -> list[Path]:
    """The files of the planner's statistics (pg_statistic and its TOAST table), after a checkpoint."""
    assert server.folder is not None
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        rows = conn.execute(
            "SELECT pg_relation_filepath(oid), pg_relation_filepath(reltoastrelid) FROM pg_class "
            "WHERE oid = 'pg_catalog.pg_statistic'::regclass"
        ).fetchall()
    return [p for rel in rows[0] for p in (server.folder / "data").glob(f"{rel}*") if p.is_file()]


def test_templates_an_older_analyze_copied_into_the_statistics_are_gone_after_store_vacuum(
    tmp_path: Path, fake: FaceEngine, pg_server: PgServer, pg_url: str
) -> None:
    if pg_server.folder is None:
        pytest.skip("the server's files are not readable here (FACETRUST_TEST_POSTGRES names a server elsewhere)")
    svc = FaceService(tmp_path / "data", fake, store=pg_url, keyring=None)
    svc.create_collection("c")
    for pattern in range(6):
        svc.index_faces("c", face_png((20, 20, 100, pattern)), external_image_id=f"p{pattern}")
    row = svc.store.get_collection("c")
    assert row is not None
    needle = np.frombuffer(svc.store.embedding(row.id, svc.store.face_keys(row.id)[0]) or b"", np.float32)[:8].tobytes()
    with psycopg.connect(pg_url, autocommit=True) as conn:  # what an older facetrust, or autovacuum, let happen
        conn.execute("ALTER TABLE faces ALTER COLUMN embedding SET STATISTICS -1")
        conn.execute("ANALYZE faces")
    assert any(needle in p.read_bytes() for p in _statistics_files(pg_server, pg_url))  # the scan sees it
    svc.erase_external_image_id("c", "p0")
    svc.close()

    done = _run(fake, "--data", str(tmp_path / "data"), "--store", pg_url, "store", "vacuum")

    assert done.exit_code == 0, done.output
    assert "pg_statistic" in done.output and "not of pg_statistic" not in done.output
    for path in _statistics_files(pg_server, pg_url):
        assert needle not in path.read_bytes(), path
    with psycopg.connect(pg_url) as conn:  # and no later ANALYZE samples the templates again
        target = conn.execute(
            "SELECT attstattarget FROM pg_attribute WHERE attrelid = 'faces'::regclass AND attname = 'embedding'"
        ).fetchone()
    assert target == (0,)


def test_a_new_postgresql_store_never_lets_analyze_sample_its_templates(
    tmp_path: Path, fake: FaceEngine, pg_url: str
) -> None:
    svc = FaceService(tmp_path / "data", fake, store=pg_url, keyring=None)
    svc.create_collection("c")
    for pattern in range(4):
        svc.index_faces("c", face_png((20, 20, 100, pattern)))
    svc.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ANALYZE")
        sampled = conn.execute(
            "SELECT tablename, attname FROM pg_stats WHERE schemaname = current_schema() "
            "AND (tablename, attname) IN (('faces', 'embedding'), ('face_crops', 'crop'), ('face_tails', 'scores'))"
        ).fetchall()
        others = conn.execute(
            "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'faces'"
        ).fetchone()
    assert sampled == []
    assert others is not None and others[0] > 0  # the other columns still have the planner's statistics
