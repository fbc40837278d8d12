"""The background catch-up of per-face statistics (``face_tail_stats = "background"``), run by one
replica at a time under a lease in the store.

Every replica's background step calls ``tick``. Only the replica that holds (or takes) the lease
``face-tail-stats`` works, on at most ``budget`` faces a tick, then returns; the next tick
continues. So enrolment never waits for them, a tick stays short (the lease is renewed every
tick, far more often than it lasts), and a holder that dies is replaced when its lease expires.
Until a face is caught up it is scored from the probe's side only.

The keeper follows the store's change log (``changes``: every face added or deleted, numbered):
it remembers the number up to which it has handled the log and each tick reads at most
``budget`` entries after it. An added face that still lacks statistics is computed; a deleted
face's holders were marked stale in the deleting transaction, so a deletion only names the
collection whose stale rows (an indexed lookup) to recompute. Nothing in a tick scans every face.
A full reconciliation (``tails.catch_up`` of every collection with a face lacking statistics, a
join of all faces) is the rare fallback: when a replica starts or takes the lease over (the
previous holder may have left anything), when the log no longer holds the entries after the
remembered number (the retention sweep pruned past it: store/changelog.py), and after a failure;
it repeats, a budget a tick, until nothing is left, and the keeper then follows the log from where
it stood when that reconciliation began.
Each collection's statistics use its own profile's templates (``ServiceContext.engine_for``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from facetrust.errors import ModelMismatchError
from facetrust.service import tails
from facetrust.service.tails import TailCatchUp
from facetrust.store import changelog, leases, tailstats
from facetrust.store.trouble import log_failure

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.service.context import ServiceContext
    from facetrust.store.sqlite import CollectionRow

__all__ = ["BUDGET", "LEASE", "LeasedTailKeeper"]

log = logging.getLogger(__name__)

LEASE = "face-tail-stats"
BUDGET = 2048  # faces per tick: a few seconds of kNN at 100,000 faces (bench/results/probe_cost.json)


class LeasedTailKeeper:
    """Catches up to ``budget`` faces' statistics per tick while this replica (``holder``) holds the lease."""

    def __init__(
        self,
        service: ServiceContext,
        *,
        lease_s: float,
        holder: str,
        budget: int = BUDGET,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service, self.lease_s, self.holder, self.budget = service, lease_s, holder, budget
        self.clock = clock
        self._held = False
        self._at: int | None = None  # the change log is handled up to this number; None: reconcile first
        self._stale: set[int] = set()  # ids of collections whose deletions left stale rows to recompute
        self._skipped: set[str] = set()  # collections of a model this service cannot run (logged once)

    def tick(self) -> list[TailCatchUp] | None:
        """Take or renew the lease, then catch up; None: the mode is not background or another holds it."""
        if self.service.engine.settings.face_tail_stats != "background":
            return None
        if not leases.acquire(self.service.store, LEASE, self.holder, ttl_s=self.lease_s, now=self.clock()):
            self._held = False
            return None
        if not self._held:
            log.info("replica %s now computes the per-face statistics", self.holder)
            self._held, self._at = True, None  # started or took over: the last holder may have left anything
        with self.service.store.snapshot() as conn:
            first, end = tailstats.change_log_bounds(conn)
            floor = changelog.pruned_to(conn)
        if self._at is not None and (end < self._at or first > self._at + 1 or floor > self._at):
            log.info("the change log no longer holds the entries after %d: reconciling every face", self._at)
            self._at = None
        return self._reconcile(end) if self._at is None else self._follow(self._at)

    def _reconcile(self, end: int) -> list[TailCatchUp]:
        """Catch up every collection with a face lacking statistics (a join of all faces); once none
        is left, follow the change log from ``end`` (the log's end before this pass looked)."""
        with self.service.store.snapshot() as conn:
            pending = tailstats.pending_collections(conn)
        done: list[TailCatchUp] = []
        left, quiet = self.budget, True
        for name in pending:
            row = self.service.store.get_collection(name)
            if row is None or not self._runs(row):
                continue  # deleted meanwhile, or a model this service cannot run
            if left <= 0:
                quiet = False  # out of budget: the next tick goes on
                continue
            try:
                result = tails.catch_up(self.service, name, limit=left)
            except Exception as exc:  # derived data: the next tick retries; other collections go on
                log_failure(log, exc, "per-face statistics of collection %r not caught up", name)
                quiet = False
                continue
            left -= result.computed
            quiet = quiet and result.remaining == 0
            done.append(result)
        if quiet:
            self._at = end
            self._stale.clear()
        return done

    def _follow(self, at: int) -> list[TailCatchUp]:
        """Handle at most ``budget`` change-log entries after ``at``: compute the added faces that
        lack statistics, then, with the budget left, the stale rows of collections with deletions."""
        with self.service.store.snapshot() as conn:
            entries = tailstats.changes_after(conn, at, self.budget)
            added = tailstats.lacking(conn, [key for _, _, key, op in entries if op == "add"])
            if changelog.pruned_to(conn) > at:  # pruned past it since the tick looked: reconcile next tick
                self._at = None
                return []
        self._stale.update(collection for _, collection, _, op in entries if op == "del")
        upto = self._at = entries[-1][0] if entries else at
        work = sorted(set(added) | self._stale)
        if not work:
            return []
        with self.service.store.snapshot() as conn:
            names = tailstats.collection_names(conn, work)
        done: list[TailCatchUp] = []
        spare = self.budget - sum(len(keys) for keys in added.values())  # for stale rows, after the added faces
        for collection_id in work:
            row = self.service.store.get_collection(names[collection_id]) if collection_id in names else None
            if row is None or row.id != collection_id or not self._runs(row):
                self._stale.discard(collection_id)  # deleted meanwhile, or a model this service cannot run
                continue
            new = added.get(collection_id, [])
            try:
                result = self._recompute(row, new, spare, upto)
            except Exception as exc:  # derived data: reconcile at the next tick; other collections go on
                log_failure(log, exc, "per-face statistics of collection %r not caught up", row.name)
                self._at = None
                continue
            if result is not None:
                spare -= result.computed - len(new)
                done.append(result)
        return done

    def _recompute(self, row: CollectionRow, added: list[int], spare: int, upto: int) -> TailCatchUp | None:
        """Compute ``added`` and up to ``spare`` of the collection's stale rows; None when it had
        nothing to compute. Remaining: at most that many still lack statistics (its stale rows,
        and the faces added after change ``upto``)."""
        keys = set(added)
        if row.id in self._stale and spare > 0:
            with self.service.store.snapshot() as conn:
                keys.update(tailstats.stale(conn, row.id, spare))
        if keys:
            tails.refresh(self.service, row, sorted(keys))
        with self.service.store.snapshot() as conn:
            stale_left = tailstats.count_stale(conn, row.id)  # also those of a block that raced a deletion
            ahead = tailstats.count_added_after(conn, row.id, upto) if keys else 0
        if stale_left:
            self._stale.add(row.id)
        else:
            self._stale.discard(row.id)
        return TailCatchUp(row.name, len(keys), stale_left + ahead) if keys else None

    def _runs(self, row: CollectionRow) -> bool:
        """Whether this service runs the engine of the collection's profile (loading it on first use,
        as a search of the collection would); a collection it cannot run is left, logged once."""
        try:
            self.service.engine_for(row)
        except ModelMismatchError as exc:
            if row.name not in self._skipped:
                log.warning("per-face statistics of collection %r not computed here: %s", row.name, exc.message)
                self._skipped.add(row.name)
            return False
        return True

    def stop(self) -> None:
        """Give the lease up (a replica stopping cleanly), so another takes it over at its next tick."""
        if self._held:
            leases.release(self.service.store, LEASE, self.holder)
            self._held = False
