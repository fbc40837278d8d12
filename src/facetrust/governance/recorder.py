"""Audit records of service operations: built while an operation runs, appended when it ends."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from facetrust.errors import FacetrustError, StoreBusyError, StoreUnavailableError
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.store import busy
from facetrust.store.trouble import log_failure

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.store.protocol import FaceStore

__all__ = ["STARTED", "Paused", "Record", "audited", "logged_or_refused"]

T = TypeVar("T")
log = logging.getLogger(__name__)
INTERNAL_ERROR = "InternalServerError"  # the outcome of an attempt a fault of facetrust's own stopped (HTTP 500)
# The outcome of the entry an operation that commits in several transactions (a template rotation)
# appends in the transaction of its first change, so that it is in the log even if it never ends.
STARTED = "started"

# The operations whose audit record was opened in this context (None: nobody is counting).
_OPENED: ContextVar[list[str] | None] = ContextVar("facetrust_audit_opened", default=None)


class Paused(Exception):  # not an error: work stopped on purpose
    """Raised to stop an operation where it is, on purpose, so that it runs again later (a video
    job at a shutdown, or when another replica takes its lease over): not a fault, so ``audited``
    writes no entry for it; the run that finishes the operation is logged."""


@dataclass
class Record:
    """What an operation will log. Fill in results; call ``commit(conn)`` inside the operation's
    own write transaction to log atomically with it (otherwise it is logged when it ends)."""

    actor: Actor
    operation: str
    collection: str | None = None
    purpose: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    entry: audit.AuditEntry | None = None

    def data(self, outcome: str) -> dict[str, Any]:
        return {
            "key_id": self.actor.key_id,
            "role": self.actor.role,
            "case_ref": self.actor.case_ref,
            "operation": self.operation,
            "collection": self.collection,
            "purpose": self.purpose,
            "outcome": outcome,
            **self.details,
        }

    def commit(self, conn: sqlite3.Connection, outcome: str = "ok") -> audit.AuditEntry:
        self.entry = audit.append(conn, self.data(outcome))
        return self.entry


@contextmanager
def audited(store: FaceStore, actor: Actor, operation: str, collection: str | None = None) -> Iterator[Record]:
    """Log the operation run inside the block: its results, or the error that stopped it."""
    record = Record(actor, operation, collection)
    opened = _OPENED.get()
    if opened is not None:
        opened.append(operation)
    written = busy.commits()
    try:
        yield record
    except (StoreBusyError, StoreUnavailableError) as exc:
        if busy.commits() == written:  # nothing of it was written: the entry would need the lock (or the
            log.warning("could not log the refused %s: %s", operation, exc.message)  # database) it could not
            raise  # get, and trying again only doubled the wait
        _refused(store, record, exc)  # some of it was (a rotation's first batches): the attempt is logged
        raise
    except FacetrustError as exc:
        _refused(store, record, exc)
        raise
    except Paused:  # stopped on purpose (a shutdown, a lease handed over): it runs again, and is logged then
        raise
    except Exception as exc:  # a fault of facetrust's own: the attempt is logged all the same
        record.details = {**record.details, "error": f"an internal error stopped it ({type(exc).__name__})"}
        try:
            with store.transaction() as conn:
                record.commit(conn, outcome=INTERNAL_ERROR)
        except Exception as failed:  # the store itself is what failed: the first error is the one to raise
            log_failure(log, failed, "could not log the failed %s", operation)
        raise
    if record.entry is None:
        with store.transaction() as conn:
            record.commit(conn)


def _refused(store: FaceStore, record: Record, exc: FacetrustError) -> None:
    """Log the refusal of ``record``'s operation: what was asked, and why."""
    record.details = {**record.details, "error": exc.message}
    try:
        with store.transaction() as conn:
            record.commit(conn, outcome=exc.code)
    except Exception as failed:  # the store cannot be written (a database gone with a commit's answer): the
        log_failure(log, failed, "could not log the refused %s", record.operation)  # refusal is the error to raise


def logged_or_refused(run: Callable[[], T], refuse: Callable[[FacetrustError], None]) -> T:
    """``run()``; when it raises a ``FacetrustError`` before any audit record was opened (an entry
    point's own check of its parameters), ``refuse(error)`` logs the attempt, then the error goes on."""
    token = _OPENED.set([])
    try:
        return run()
    except FacetrustError as exc:
        if not _OPENED.get():
            refuse(exc)
        raise
    finally:
        _OPENED.reset(token)
