"""Replicas as real processes: ``facetrust serve`` (replica_child.py) over one shared store.

The ``store`` fixture names the store the replicas share; each kind is one parameter: ``sqlite``
(several server processes over one data directory on this machine) and ``postgresql`` (one
fresh schema of the session's throwaway PostgreSQL, tests/pg_cluster.py; each replica its own
data directory, as on separate machines). A store kind gives each replica its data directory
and environment; the tests only go through HTTP (boto3) and the library's public functions.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from facetrust.server.keys import KeyStore
from facetrust.store.postgres import open_store
from facetrust.store.sqlite import Store
from pg_cluster import STORE_BACKEND
from server.live import rekognition

CHILD = Path(__file__).resolve().parent / "replica_child.py"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class SharedStore:
    """Where replicas of one deployment keep their data: one data directory for SQLite; one
    database (``url``, the ``store`` setting) and a data directory per replica for PostgreSQL."""

    kind: str
    root: Path
    url: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def data_dir(self, replica: str) -> Path:
        if self.url is None:
            return self.root / "data"  # SQLite: every replica opens the same data directory
        return self.root / f"data-{replica}"  # PostgreSQL: each replica its own, as on its own machine

    def open_store(self) -> Store:
        """A connection to the shared store from the test itself (close it after use)."""
        return open_store(self.data_dir("test") / "facetrust.db", self.url)

    def cli(self, replica: str) -> list[str]:
        """The global options of a ``facetrust`` command run beside ``replica``."""
        return ["--data", str(self.data_dir(replica)), *(["--store", self.url] if self.url else [])]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SharedStore:
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_server").schema_url("r")
        return SharedStore("postgresql", tmp_path, url, {"FACETRUST_STORE": url})
    if STORE_BACKEND == "postgresql":  # the test's own opens go to PostgreSQL
        pytest.skip("[sqlite] replicas share SQLite files; under FACETRUST_TEST_STORE=postgresql [postgresql] runs")
    return SharedStore(str(request.param), tmp_path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Replica:
    """One ``facetrust serve`` process; ``client`` signs with the admin key."""

    def __init__(self, store: SharedStore, name: str, keys: tuple[str, str], **settings: Any) -> None:
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # src first: the replicas run this checkout's code, not the one the environment installed
        path = os.pathsep.join([str(REPO / "src"), str(REPO)])
        env = {**os.environ, **store.env, "FACETRUST_REPLICA_ID": name, "PYTHONPATH": path}
        env.update({f"FACETRUST_{k.upper()}": str(v) for k, v in settings.items()})
        self.log = store.root / f"replica-{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(CHILD), str(store.data_dir(name)), str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self._wait_healthy()
        self.client = rekognition(self.url, *keys)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"replica {self.name} exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"replica {self.name} did not answer /health: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """kill -9: no shutdown, no flush; what the store committed is all that survives."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def admin_key(store: SharedStore) -> tuple[str, str]:
    with KeyStore.open(store.data_dir("keys"), store=store.url) as keys:
        return keys.create("admin", "replica tests")


@pytest.fixture
def replicas(store: SharedStore, admin_key: tuple[str, str]) -> Iterator[Any]:
    """``start(name, **settings)`` → a running Replica; all are stopped after the test."""
    started: list[Replica] = []

    def start(name: str, **settings: Any) -> Replica:
        replica = Replica(store, name, admin_key, **settings)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        replica.stop()
