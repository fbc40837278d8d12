"""Human review: a reviewer's decision on a search that awaits it (the queue itself: review_queue.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facetrust.errors import ConflictError, InvalidParameterError, NotFoundError, RoleDeniedError
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.service.governed import governed
from facetrust.service.review_queue import awaits_review
from facetrust.service.types import ReviewRecord
from facetrust.service.validate import check_limit, check_text
from facetrust.store import records

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.service.context import ServiceContext

__all__ = ["REVIEW_DECISIONS", "record_review"]

REVIEW_DECISIONS = ("confirmed", "rejected", "inconclusive")


def record_review(service: ServiceContext, search_seq: int, decision: str, note: str, actor: Actor) -> ReviewRecord:
    """A reviewer's decision on a search awaiting review; never by the key that ran the search."""
    with governed(service, actor, "RecordReview") as step:
        rec = step.record
        check_limit(search_seq, "SearchSequence", 1, 2**63 - 1)
        if decision not in REVIEW_DECISIONS:
            raise InvalidParameterError(
                f"Review decision {decision!r} is invalid; use one of {', '.join(REVIEW_DECISIONS)}",
                parameter="decision",
            )
        check_text(note, "Note", 2000, empty=True, lines=True)
        with service.store.transaction() as conn:
            entry = next(audit.entries(conn, after_seq=search_seq - 1, limit=1), None)
            if entry is None or entry.seq != search_seq or not awaits_review(entry.data):
                raise NotFoundError(
                    f"Audit entry {search_seq} is not a search that awaits review", resource=str(search_seq)
                )
            if entry.data.get("key_id") == actor.key_id:
                raise RoleDeniedError(
                    f"Key {actor.key_id} ran search {search_seq}, so it cannot review it: separation of duties "
                    "needs another key (a reviewer's)",
                    key_id=actor.key_id,
                    role=actor.role,
                    operation="RecordReview",
                )
            if records.get_review(conn, search_seq) is not None:
                raise ConflictError(f"Search {search_seq} has already been reviewed", resource=str(search_seq))
            rec.collection, rec.purpose = entry.data.get("collection"), entry.data.get("purpose")
            rec.details = {"search_seq": search_seq, "decision": decision, "note": note}
            own = rec.commit(conn)
            records.insert_review(conn, search_seq, decision, actor.key_id, note, own.seq)
    return ReviewRecord(search_seq, decision, actor.key_id, note, own.seq)
