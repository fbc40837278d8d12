"""The stores the contract runs against (every ``FaceStore``), and helpers to fill them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from facetrust.store.postgres import PostgresStore
from facetrust.store.protocol import FaceStore
from facetrust.store.sealing import Keyring, TemplateKey
from facetrust.store.sqlite import NewFace, Store

DIM = 8
KEYRING = Keyring(TemplateKey.from_bytes(bytes(range(32))))


def _sqlite(folder: Path, url: str | None) -> FaceStore:
    return Store(folder / "facetrust.db")


def _sqlite_sealed(folder: Path, url: str | None) -> FaceStore:
    return Store(folder / "facetrust.db", keyring=KEYRING)


def _postgresql(folder: Path, url: str | None) -> FaceStore:
    assert url is not None
    return PostgresStore(folder / "facetrust.db", url)


def _postgresql_sealed(folder: Path, url: str | None) -> FaceStore:
    assert url is not None
    return PostgresStore(folder / "facetrust.db", url, keyring=KEYRING)


# name -> factory(folder, PostgreSQL URL of a fresh schema, or None for a store that needs none)
STORES: dict[str, Callable[[Path, str | None], FaceStore]] = {
    "sqlite": _sqlite,
    "sqlite-sealed": _sqlite_sealed,
    "postgresql": _postgresql,
    "postgresql-sealed": _postgresql_sealed,
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FaceStore]:
    url = str(request.getfixturevalue("pg_url")) if request.param.startswith("postgresql") else None
    made = STORES[request.param](tmp_path, url)
    yield made
    made.close()


def vector(seed: int) -> bytes:
    v = np.random.default_rng(seed).standard_normal(DIM).astype("<f4")
    return (v / np.linalg.norm(v)).astype("<f4").tobytes()


def face(n: int, external: str | None = None, expires_at: float | None = None) -> NewFace:
    return NewFace(
        face_id=f"00000000-0000-4000-8000-{n:012d}",
        image_id=f"image-{n}",
        external_image_id=external,
        box=(0.1, 0.2, 0.3, 0.4),
        confidence=99.0,
        brightness=50.0,
        sharpness=60.0,
        pose=(1.0, 2.0, 3.0),
        embedding=vector(n),
        expires_at=expires_at,
    )


def collection(store: FaceStore, name: str = "staff") -> int:
    with store.transaction() as conn:
        return store.insert_collection(conn, name, "model-a", "general").id


def query_plan(store: FaceStore, sql: str, args: tuple[object, ...]) -> str:
    """The query plan of ``sql`` as text: SQLite's EXPLAIN QUERY PLAN; PostgreSQL's EXPLAIN with
    sequential scans disabled, so the planner uses an index wherever one can serve the query (on
    a table this small it would scan anyway)."""
    with store.snapshot() as conn:
        if type(store).__name__ == "Store":
            return "\n".join(str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args))
        conn.execute("SET LOCAL enable_seqscan = off")
        return "\n".join(str(row[0]) for row in conn.execute("EXPLAIN " + sql, args))


def table_scans(plan: str) -> list[str]:
    """The steps of a ``query_plan`` that read a whole table."""
    steps = [line.lstrip(" ->") for line in plan.splitlines()]
    return [s for s in steps if s.startswith(("SCAN", "Seq Scan")) and s != "SCAN CONSTANT ROW"]


@pytest.fixture(params=["sqlite", "postgresql"])
def planned(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FaceStore]:
    """A store of either kind for reading query plans: a few faces (ExternalImageIds ``Person-0`` …
    ``Person-3``), one of them deleted, and a consent, so every table a lookup reads has rows."""
    from facetrust.store import records

    url = str(request.getfixturevalue("pg_url")) if request.param == "postgresql" else None
    store = STORES[request.param](tmp_path, url)
    cid = collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [face(n, f"Person-{n % 4}") for n in range(12)])
        store.delete_faces(conn, cid, keys[:1])
        records.put_consent(conn, "Person-1", "contract", 1.0, None, "0" * 64, 1.0)
    yield store
    store.close()
