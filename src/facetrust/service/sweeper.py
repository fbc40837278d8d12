"""The retention sweep of a server, run by one replica at a time under a lease in the store.

Every replica calls ``tick`` often (more often than the lease lasts). Only the replica that
holds (or takes) the lease ``retention-sweep`` sweeps, once per ``interval_s`` counted from when
it became the holder; the others only try to take the lease. When the holder dies its lease
expires after ``lease_s`` and the next replica to tick takes it over, sweeping ``interval_s``
later. So across replicas one sweep runs per interval, and the longest gap between sweeps is
``interval_s + lease_s + interval_s`` (a failover).

A sweep erases at most ``batch`` faces (those that expired first) in its transaction, so the
store's writer lock is held for about a second, not for as long as erasing every expired face
takes (1,000,000 faces expiring together took 40 s, most of it in one transaction, past the 30 s
every other write waits for the lock); while faces are left, the next tick sweeps again without
waiting for the interval, each batch its own audit entry and receipt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from facetrust.governance.actor import Actor
from facetrust.store import leases

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.service.faceservice import FaceService
    from facetrust.service.types import SweepResult

__all__ = ["BATCH", "LEASE", "LeasedSweeper"]

log = logging.getLogger(__name__)

LEASE = "retention-sweep"
BATCH = 20_000  # faces a sweep erases at most: about a second of the writer lock (bench/retention_sweep.py)


class LeasedSweeper:
    """Sweeps ``service`` every ``interval_s`` while this replica (``holder``) holds the sweep lease."""

    def __init__(
        self,
        service: FaceService,
        actor: Actor,
        *,
        interval_s: float,
        lease_s: float,
        holder: str,
        batch: int = BATCH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service, self.actor = service, actor
        self.interval_s, self.lease_s, self.holder, self.batch = interval_s, lease_s, holder, batch
        self.clock = clock
        self._since: float | None = None  # when this replica last swept, or became the holder
        self._more = False  # the last sweep left expired faces: sweep again at the next tick

    def tick(self) -> SweepResult | None:
        """Take or renew the lease; sweep when holding it and an interval has passed. None: no sweep ran."""
        now = self.clock()
        if not leases.acquire(self.service.store, LEASE, self.holder, ttl_s=self.lease_s, now=now):
            self._since, self._more = None, False
            return None
        if self._since is None:
            log.info("replica %s now runs the retention sweep", self.holder)
            self._since = now
        if now < self._since:  # the clock stepped back: count the interval from here (a gap under two)
            self._since = now
        if now - self._since < self.interval_s and not self._more:
            return None
        self._since = now
        self._more = False  # a sweep that fails is retried an interval later, as before
        result = self.service.sweep_retention(limit=self.batch, actor=self.actor)
        self._more = result.more
        return result

    def stop(self) -> None:
        """Give the lease up (a replica stopping cleanly), so another takes it over at its next tick."""
        if self._since is not None:
            leases.release(self.service.store, LEASE, self.holder)
            self._since, self._more = None, False
