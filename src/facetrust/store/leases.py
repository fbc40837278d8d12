"""Leases: a named piece of work (the retention sweep, one video job) held by one replica at a time.

A row of ``leases`` names the work, its holder and until when it holds it. ``acquire`` takes a
free or expired lease, or renews one already held, in one statement (an upsert that only
overwrites an expired row or the holder's own), so of several replicas asking at once exactly
one gets it. A holder that stops renewing (killed, hung) loses the lease when it expires and
another replica takes it over. Times are the replicas' own clocks: keep them in step (NTP) and
the lease far longer than the clock skew. A lease that ends more than ``FURTHEST_S`` (two days)
after ``now`` is free: no lease is that long (``lease_seconds`` is at most a day), so it was written
by a replica whose clock ran days ahead, and would otherwise hold its work until that time came.
Portable SQL (SQLite ≥ 3.24 and PostgreSQL share the
``ON CONFLICT … DO UPDATE … WHERE`` form), through the store's connection methods only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.store.protocol import FaceStore

__all__ = ["FURTHEST_S", "Lease", "acquire", "holder", "release"]

# the table is made with the others (store/schema.py: ``leases``)

FURTHEST_S = 2 * 86400.0  # a lease ending further ahead than this is free (twice the longest lease_seconds)


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    expires_at: float


def acquire(store: FaceStore, name: str, me: str, *, ttl_s: float, now: float) -> bool:
    """Take (or renew) lease ``name`` for ``me`` until ``now + ttl_s``; False when another holds it
    unexpired (and ending at most ``FURTHEST_S`` after ``now``). ``ttl_s`` is at most ``FURTHEST_S``."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO leases(name, holder, expires_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "holder = excluded.holder, expires_at = excluded.expires_at "
            "WHERE leases.holder = excluded.holder OR leases.expires_at < ? OR leases.expires_at > ?",
            (name, me, now + ttl_s, now, now + FURTHEST_S),
        )
        row = conn.execute("SELECT holder FROM leases WHERE name = ?", (name,)).fetchone()
    return row is not None and str(row[0]) == me


def release(store: FaceStore, name: str, me: str) -> None:
    """Give lease ``name`` up (only when ``me`` holds it), so another replica need not wait for it to expire."""
    with store.transaction() as conn:
        conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, me))


def holder(store: FaceStore, name: str) -> Lease | None:
    """Who holds lease ``name`` and until when (an expired row included); None when nobody took it."""
    row = store.connection().execute("SELECT name, holder, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
    return None if row is None else Lease(str(row[0]), str(row[1]), float(row[2]))
