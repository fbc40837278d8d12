"""Every replica anchors the whole shared audit chain: its head file follows the chain's tip, verified.

The store appends a head to the head file after each commit of this process that appended to
the chain; over a shared store that anchors only this replica's own writes. So each replica's
background step (every replica, under no lease) also calls ``ChainAnchorer.tick``: it verifies
the entries appended since the last head it verified (only those, at most ``budget`` a tick:
each one's hash, and that it links to the one before), checks that the entry it verified last
is still there unchanged, and appends the verified tip to its own head file. So every replica's
``audit.heads`` anchors the chain up to a few seconds ago, whoever wrote it, and ``facetrust
audit-log verify`` against any one of them catches a truncated tail. A break is logged at
CRITICAL and stops the anchoring for good (until the process restarts): the head file is halted
(``HeadFile.halt``), so no tip of a tampered chain is anchored, by this step or by this
process's own commits.

Where it starts: at the start of the chain, walked a budget a tick, so each replica verifies the
whole chain once after it starts (it trusts no head it did not verify itself; 50,000 entries a
tick, one tick every few seconds), then only what is appended. A store that found, when it
opened, that its log does not hold the newest heads of its head file (a log restored from an
older copy, which would bring erased faces back and hide the erasures: ``Store``'s own check)
halted the head file; the anchoring stops with it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from facetrust.governance import audit

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.store.protocol import FaceStore

__all__ = ["BUDGET", "ChainAnchorer"]

log = logging.getLogger(__name__)

BUDGET = 50_000  # entries verified a tick at most (about half a second)


class ChainAnchorer:
    """Verifies the chain after the last head anchored and anchors the verified tip, a budget a tick."""

    def __init__(self, store: FaceStore, *, budget: int = BUDGET) -> None:
        if budget < 1:
            raise ValueError(f"budget must be at least 1, not {budget}")
        self.store, self.budget = store, budget
        self._at = audit.AuditHead(0, audit.GENESIS)  # verified (and anchored) up to here
        self.stopped: str | None = None  # why anchoring stopped (a break in the chain), or None

    def __repr__(self) -> str:
        return f"ChainAnchorer({self.store.heads!r}, at={self._at}, stopped={self.stopped is not None})"

    def tick(self) -> audit.AuditHead | None:
        """Verify up to ``budget`` new entries and anchor the last one; the head anchored, or None
        (nothing new, or stopped: ``stopped`` says why)."""
        if self.stopped is not None:
            return None
        if self.store.heads.halted is not None:  # the store found a break when it opened (logged there)
            self.stopped = self.store.heads.halted
            return None
        with self.store.snapshot() as conn:
            report = audit.verify_after(conn, self._at, self.budget)
        if not report.ok:
            self._stop(report.problem or "the chain does not verify")
            return None
        if report.head == self._at:
            return None
        self.store.heads.record(report.head)
        self._at = report.head
        return report.head

    def _stop(self, problem: str) -> None:
        log.critical(
            "AUDIT CHAIN BROKEN: %s. This replica no longer anchors the chain in %s; run `facetrust audit-log "
            "verify` and investigate before restarting it",
            problem,
            self.store.heads.path,
        )
        self.store.heads.halt(problem)
        self.stopped = problem
