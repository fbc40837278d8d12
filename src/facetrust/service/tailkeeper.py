"""The background catch-up of per-face statistics (``face_tail_stats = "background"``), run by one
replica at a time under a lease in the store.

Every replica's background step calls ``tick``. Only the replica that holds (or takes) the lease
``face-tail-stats`` works: it computes, with ``tails.catch_up``, the statistics of at most ``budget``
faces that lack them (new faces, and the stale rows a deletion left), collection by collection,
then returns; the next tick continues. So enrolment never waits for them, a tick stays short
(the lease is renewed every tick, far more often than it lasts), and a holder that dies is replaced
when its lease expires. Until a face is caught up it is scored from the probe's side only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from facetrust.errors import ModelMismatchError
from facetrust.service.tails import TailCatchUp, catch_up
from facetrust.store import leases, tailstats

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
        self._quiet_at: int | None = None  # the change log's end when a tick left nothing it could compute
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
            self._held = True
        with self.service.store.snapshot() as conn:
            end = tailstats.change_log_end(conn)
            if end == self._quiet_at:
                return []  # no face added or deleted since everything was caught up: skip the scan of all faces
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
                result = catch_up(self.service, name, limit=left)
            except Exception:  # derived data: the next tick retries; other collections go on
                log.exception("per-face statistics of collection %r not caught up", name)
                quiet = False
                continue
            left -= result.computed
            quiet = quiet and result.remaining == 0
            done.append(result)
        self._quiet_at = end if quiet else None
        return done

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
