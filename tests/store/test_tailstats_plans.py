"""The background statistics keeper's lookups (store.tailstats) are indexed on both stores: none
scans a table, so a tick costs the same at any gallery size (docs/fairness.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.store import tailstats
from facetrust.store.protocol import FaceStore

from .conftest import STORES, collection, face

# Each lookup of a tick that follows the change log, with arguments as the keeper passes them.
LOOKUPS = {
    "bounds": (tailstats.BOUNDS_SQL, ()),
    "changes": (tailstats.CHANGES_SQL, (5, 100)),
    "lacking": (tailstats.LACKING_SQL.format(marks="?,?,?"), (3, 4, 9)),
    "stale": (tailstats.STALE_SQL, (1, 0, 100)),
    "count_stale": (tailstats.COUNT_STALE_SQL, (1,)),
    "count_added": (tailstats.COUNT_ADDED_SQL, (1, 5)),
}


@pytest.fixture(params=["sqlite", "postgresql"])
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FaceStore]:
    """A store of either kind holding a few faces, one of them deleted (so every table has rows)."""
    url = str(request.getfixturevalue("pg_url")) if request.param == "postgresql" else None
    store = STORES[request.param](tmp_path, url)
    cid = collection(store)
    with store.transaction() as conn:
        keys = store.insert_faces(conn, cid, [face(n) for n in range(12)])
        store.delete_faces(conn, cid, keys[:1])
    yield store
    store.close()


def _plan(store: FaceStore, sql: str, args: tuple[object, ...]) -> str:
    """The query plan of ``sql`` as text: SQLite's EXPLAIN QUERY PLAN; PostgreSQL's EXPLAIN with
    sequential scans disabled, so the planner uses an index wherever one can serve the query (on
    a table this small it would scan anyway)."""
    with store.snapshot() as conn:
        if type(store).__name__ == "Store":
            return "\n".join(str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args))
        conn.execute("SET LOCAL enable_seqscan = off")
        return "\n".join(str(row[0]) for row in conn.execute("EXPLAIN " + sql, args))


@pytest.mark.parametrize("lookup", sorted(LOOKUPS))
def test_each_lookup_of_a_keeper_tick_uses_an_index_and_scans_no_table(filled: FaceStore, lookup: str) -> None:
    sql, args = LOOKUPS[lookup]
    plan = _plan(filled, sql, args)
    steps = [line.lstrip(" ->") for line in plan.splitlines()]
    scans = [s for s in steps if s.startswith(("SCAN", "Seq Scan")) and s != "SCAN CONSTANT ROW"]  # no table
    assert scans == [], plan
    assert "INDEX" in plan.upper() or "PRIMARY KEY" in plan or "SEARCH" in plan, plan
