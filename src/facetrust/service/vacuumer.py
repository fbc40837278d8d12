"""The vacuum of the store (``vacuum_store``: ``facetrust store vacuum``'s, and a server's), and a
server's schedule of it, run by one replica at a time under a lease in the store.

An erasure deletes rows, but their bytes can stay in the database's files until a vacuum (SQLite:
copies in pages' unused space; PostgreSQL: dead row versions; docs/store.md). Every replica calls
``LeasedVacuumer.tick`` often. A tick reads the store's backlog (store/vacuums.py: the erasures
counted since the last vacuum began, and when it ran, whoever ran it); when something was erased
and the last vacuum is ``interval_s`` old, it takes the lease ``store-vacuum`` and vacuums. The
schedule is the store's, not a replica's: a restart, or the lease moving, does not reset it, and
a vacuum run by hand counts. Where none is recorded (a new store, or one from before this
schedule) the first tick that finds erasures starts it, so a server never vacuums as it starts.
So an erasure's storage is reclaimed within ``interval_s`` and a tick (plus ``lease_s`` when the
replica that took the lease died before it vacuumed). A store that is busy (another process
holds its write lock) is tried again at the next tick; any other failure is logged and tried
again after ``RETRY_S``, as each attempt is an audit entry. A vacuum that outlasts ``lease_s``
lets another replica take the lease: on PostgreSQL it then vacuums again after the first
(harmless, but it locks the tables again); on SQLite it waits for the first's write lock and
then finds nothing due.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from facetrust.errors import FacetrustError, StoreBusyError
from facetrust.governance.actor import Actor
from facetrust.service.governed import attempt
from facetrust.store import leases, vacuums

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.store.sqlite import Store

__all__ = ["LEASE", "RETRY_S", "LeasedVacuumer", "vacuum_store"]

log = logging.getLogger(__name__)

LEASE = "store-vacuum"
RETRY_S = 600.0  # after a failure other than a busy store, the next attempt (at most the interval)


def vacuum_store(store: Store, actor: Actor, *, at: float | None = None) -> str:
    """Vacuum ``store`` (``Store.vacuum``), logged in the audit log as ``VacuumStore`` with what
    ran, and recorded as the last vacuum, run at ``at`` (default: now); what ran."""
    with attempt(store, actor, "VacuumStore") as rec:
        covered = vacuums.erasures(store.connection())  # before it begins: what it surely reclaims
        done = store.vacuum()
        rec.details = {"vacuumed": done}
        with store.transaction() as conn:
            vacuums.record(conn, covered, time.time() if at is None else at)
            rec.commit(conn)
    return done


class LeasedVacuumer:
    """Vacuums ``store`` when something was erased and the last vacuum is ``interval_s`` old,
    holding the vacuum lease (as ``holder``) to do so."""

    def __init__(
        self,
        store: Store,
        actor: Actor,
        *,
        interval_s: float,
        lease_s: float,
        holder: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.actor = store, actor
        self.interval_s, self.lease_s, self.holder = interval_s, lease_s, holder
        self.clock = clock
        self._held = False
        self._retry_at: float | None = None  # after a failure: not before then

    def tick(self) -> str | None:
        """Vacuum when due and the lease is this replica's; what ran, or None (nothing ran). A failure
        is logged, not raised: the server goes on."""
        now = self.clock()
        if self._retry_at is not None and 0 <= self._retry_at - now <= min(RETRY_S, self.interval_s):
            return None
        self._retry_at = None
        try:
            return self._vacuum_if_due(now)
        except StoreBusyError as exc:  # a long write elsewhere: nothing ran, and the next tick tries again
            log.info("store vacuum put off to the next step: %s", exc.message)
        except FacetrustError as exc:  # the store unreachable, say: its message says why
            log.warning("store vacuum failed: %s", exc.message)
            self._retry_at = now + min(RETRY_S, self.interval_s)
        except Exception:
            log.exception("store vacuum failed")
            self._retry_at = now + min(RETRY_S, self.interval_s)
        return None

    def _vacuum_if_due(self, now: float) -> str | None:
        with self.store.snapshot() as conn:
            due = vacuums.backlog(conn)
        if due.erasures <= 0:
            return None
        if due.vacuumed_at is None:
            with self.store.transaction() as conn:
                vacuums.start(conn, now)
            return None
        # a clock behind the recorded vacuum's (set back, or another replica's ahead) waits as well,
        # unless by more than an interval: then the record is no guide
        if abs(now - due.vacuumed_at) < self.interval_s:
            return None
        if not leases.acquire(self.store, LEASE, self.holder, ttl_s=self.lease_s, now=now):
            self._held = False
            return None
        self._held = True
        return vacuum_store(self.store, self.actor, at=now)

    def stop(self) -> None:
        """Give the lease up (a replica stopping cleanly), so another need not wait for it to expire."""
        if self._held:
            leases.release(self.store, LEASE, self.holder)
            self._held = False
