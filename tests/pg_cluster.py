"""A real, throwaway PostgreSQL for the tests: started once per session, one fresh schema per test.

``FACETRUST_TEST_POSTGRES`` (a ``postgresql://…`` URL of a database the tests may create
schemas in) uses a server that is already running. Otherwise a cluster is made with the
installed PostgreSQL's ``initdb`` in a temporary folder (owned by the ``postgres`` user when the
tests run as root, since PostgreSQL refuses to run as root), listening only on a Unix socket in
that folder, with trust authentication and fsync off, and removed at the end of the session.
When none can start, tests that need it skip, naming why, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

__all__ = [
    "SQLITE_FILES",
    "SQLITE_TYPES",
    "STORE_BACKEND",
    "PgServer",
    "StoreBackend",
    "pg_unavailable",
    "start_server",
]

STORE_BACKEND = os.environ.get("FACETRUST_TEST_STORE", "sqlite")  # "postgresql": service suites on PostgreSQL
# For tests about SQLite's own files (modes, contents): they do not apply when the suite runs on PostgreSQL.
SQLITE_FILES = pytest.mark.skipif(
    STORE_BACKEND == "postgresql", reason="about a SQLite file; the suite runs on PostgreSQL"
)
# For damage only SQLite's loose column types allow (bytes where text belongs): PostgreSQL refuses it.
SQLITE_TYPES = pytest.mark.skipif(
    STORE_BACKEND == "postgresql",
    reason="stores bytes in a text column, which PostgreSQL refuses; the suite runs on PostgreSQL",
)


@dataclass
class StoreBackend:
    """The store the service suites run on: ``url_for(data_dir)`` is the ``store`` a service over
    that data directory uses (None: SQLite in it), for child processes and explicit opens."""

    name: str
    url_for: Callable[[Path], str | None]


@dataclass
class PgServer:
    """A server the tests may use: ``url`` names its database; ``schema_url`` makes a fresh schema."""

    url: str
    folder: Path | None = None
    binaries: Path | None = None
    schemas: list[str] = field(default_factory=list)

    def schema_url(self, prefix: str = "t") -> str:
        """A new, empty schema, and the URL whose connections use it (``search_path``)."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        self.schemas.append(name)
        sep = "&" if "?" in self.url else "?"
        return f"{self.url}{sep}options={quote(f'-csearch_path={name}')}"

    def drop_schemas(self) -> None:
        """Drop the schemas made so far (on a server the session did not start)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            for name in self.schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        self.schemas.clear()

    def pause(self) -> None:
        """Stop this session's own server (fast shutdown: every connection is ended), keeping its data."""
        assert self.folder is not None and self.binaries is not None, "a server the session did not start"
        stopped = _as_owner(
            self.folder, [str(self.binaries / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "stop"]
        )
        assert stopped.returncode == 0, stopped.stderr

    def resume(self) -> None:
        """Start again a server ``pause`` stopped."""
        assert self.folder is not None and self.binaries is not None, "a server the session did not start"
        started = _pg_ctl_start(self.folder, self.binaries)
        assert started.returncode == 0, started.stderr

    def stop(self) -> None:
        if self.folder is None or self.binaries is None:
            self.drop_schemas()
            return
        _as_owner(
            self.folder, [str(self.binaries / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop"]
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _as_owner(folder: Path, command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as the folder's owner (``postgres`` when we are root)."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _pg_ctl_start(folder: Path, binaries: Path) -> subprocess.CompletedProcess[str]:
    # max_prepared_transactions: a test holds a lock across a shutdown in a prepared transaction
    options = (
        f"-c listen_addresses='' -k {folder} -c fsync=off -c full_page_writes=off -c max_connections=300 "
        "-c max_prepared_transactions=8"
    )
    data, log = folder / "data", folder / "log"
    return _as_owner(folder, [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start"])


def start_server() -> PgServer:
    """A running server; RuntimeError saying why when none can be had."""
    given = os.environ.get("FACETRUST_TEST_POSTGRES")
    if given:
        return PgServer(given)
    binaries = _binaries()
    if binaries is None:
        raise RuntimeError("no PostgreSQL installed (initdb not found; Debian: apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="facetrust-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    init = _as_owner(
        folder, [str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]
    )
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
    start = _pg_ctl_start(folder, binaries)
    if start.returncode != 0:
        log = (folder / "log").read_text(errors="replace") if (folder / "log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {start.stderr.strip()} {log[-500:]}")
    return PgServer(f"postgresql://postgres@/postgres?host={quote(str(folder))}", folder, binaries)


_STATE: dict[str, PgServer | str] = {}


def pg_unavailable(reason: str) -> None:
    """Skip (fail under CI=true) a test that needs PostgreSQL when none could start."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but PostgreSQL could not start: {reason}")
    pytest.skip(f"PostgreSQL could not start: {reason} (or set FACETRUST_TEST_POSTGRES to a postgresql:// URL)")


def session_server() -> Iterator[PgServer]:
    """The body of the session fixture: start (or reuse) the server, stop it at the end."""
    try:
        server = start_server()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        pg_unavailable(str(exc))
        raise  # pragma: no cover - pg_unavailable raises
    try:
        yield server
    finally:
        server.stop()
