"""The background statistics keeper's lookups (store.tailstats) are indexed on both stores: none
scans a table, so a tick costs the same at any gallery size (docs/fairness.md)."""

from __future__ import annotations

import pytest

from facetrust.store import tailstats
from facetrust.store.protocol import FaceStore

from .conftest import query_plan, table_scans

# Each lookup of a tick that follows the change log, with arguments as the keeper passes them.
LOOKUPS = {
    "bounds": (tailstats.BOUNDS_SQL, ()),
    "changes": (tailstats.CHANGES_SQL, (5, 100)),
    "lacking": (tailstats.LACKING_SQL.format(marks="?,?,?"), (3, 4, 9)),
    "stale": (tailstats.STALE_SQL, (1, 0, 100)),
    "count_stale": (tailstats.COUNT_STALE_SQL, (1,)),
    "count_added": (tailstats.COUNT_ADDED_SQL, (1, 5)),
}


@pytest.mark.parametrize("lookup", sorted(LOOKUPS))
def test_each_lookup_of_a_keeper_tick_uses_an_index_and_scans_no_table(planned: FaceStore, lookup: str) -> None:
    sql, args = LOOKUPS[lookup]
    plan = query_plan(planned, sql, args)
    assert table_scans(plan) == [], plan
    assert "INDEX" in plan.upper() or "PRIMARY KEY" in plan or "SEARCH" in plan, plan
