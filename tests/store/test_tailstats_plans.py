"""The background statistics keeper's lookups (store.tailstats) are indexed on both stores: none
scans a table, so a tick costs the same at any gallery size (docs/fairness.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.store import tailstats
from facetrust.store.protocol import FaceStore

from .conftest import STORES, collection, face, query_plan, table_scans

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


@pytest.mark.parametrize("lookup", sorted(LOOKUPS))
def test_each_lookup_of_a_keeper_tick_uses_an_index_and_scans_no_table(filled: FaceStore, lookup: str) -> None:
    sql, args = LOOKUPS[lookup]
    plan = query_plan(filled, sql, args)
    assert table_scans(plan) == [], plan
    assert "INDEX" in plan.upper() or "PRIMARY KEY" in plan or "SEARCH" in plan, plan
