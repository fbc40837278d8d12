"""The review queue: searches whose purpose requires human review and that nobody has reviewed yet.

Read from the audit log (each search records its candidates and their Similarity), so the queue
shows exactly what the search returned; ``record_review`` takes an item off it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facetrust.calibration import fmr_from_similarity
from facetrust.governance import audit
from facetrust.governance.actor import LOCAL, Actor
from facetrust.service.governed import governed, usable
from facetrust.service.validate import check_collection_id, check_limit, decode_position, encode_token
from facetrust.store import crops

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.service.context import ServiceContext

__all__ = ["ReviewCandidate", "ReviewItem", "ReviewPage", "awaits_review", "review_queue"]

# every 1:N search whose entry records its candidates: in images, and in stored video (a library or
# CLI search, and a StartFaceSearch job's run)
_SEARCHES = {"SearchFaces", "SearchFacesByImage", "SearchUsers", "SearchUsersByImage", "VideoSearch", "FaceSearchJob"}


def awaits_review(data: dict[str, object]) -> bool:
    """Whether an audit entry (its ``data``) is a search that needs a person's review: one of
    ``_SEARCHES`` that answered, under a purpose that requires review. What the queue offers, and
    all that ``record_review`` takes (an AssociateFaces or a redaction records ``review_required``
    too, but is no candidate list)."""
    return data.get("operation") in _SEARCHES and data.get("outcome") == "ok" and bool(data.get("review_required"))


@dataclass(frozen=True)
class ReviewCandidate:
    """One candidate of a search: its face (a user's best face for user searches), Similarity,
    estimated false-match rate, and whether a review crop of it is kept."""

    face_id: str
    similarity: float
    fmr: float
    has_crop: bool
    fmr_is_bound: bool = False  # the FMR is only an upper bound (as the search's answer said)


@dataclass(frozen=True)
class ReviewItem:
    search_seq: int
    at: float
    operation: str
    collection: str
    threshold: float
    gallery_size: int
    searched_face_id: str | None
    candidates: tuple[ReviewCandidate, ...]


@dataclass(frozen=True)
class ReviewPage:
    """A page of the queue, oldest first; ``next_token`` while more searches await review after it."""

    items: tuple[ReviewItem, ...]
    next_token: str | None


def review_queue(
    service: ServiceContext,
    *,
    collection: str | None = None,
    limit: int = 50,
    next_token: str | None = None,
    actor: Actor = LOCAL,
) -> ReviewPage:
    """The oldest ``limit`` searches awaiting review (in ``collection``, or in all) after the
    page ``next_token`` ended."""
    with governed(service, actor, "ListReviewQueue", collection) as step:
        rec = step.record
        if collection is not None:
            check_collection_id(collection)
        check_limit(limit, "MaxResults", 1, 1000)
        scope = _scope(collection)
        after = decode_position(next_token, "review", scope) if next_token is not None else 0
        conn = service.store.connection()
        found = []
        for entry in audit.entries(conn, after_seq=after, awaiting_review=True, unreviewed=True):
            d = entry.data
            if not awaits_review(d) or (collection is not None and d.get("collection") != collection):
                continue
            found.append(entry)
            if len(found) > limit:
                break
        more = len(found) > limit
        found = found[:limit]
        cropped = crops.face_ids_with_crops(conn, [f for e in found for f in e.data.get("face_ids", [])])
        kept = _still_stored(service, conn, found)
        rec.details = {"search_seqs": [e.seq for e in found]}
    token = encode_token("review", scope, found[-1].seq) if more else None
    return ReviewPage(tuple(_item(e, cropped, kept) for e in found), token)


def _scope(collection: str | None) -> str:
    """What a token holds to: the collection asked for, by a digest of its name (a token is at most
    255 characters, a CollectionId up to 255; the queue keeps searches of collections since
    deleted, so there is no row id to name), or "" for the whole queue. Its position is the last
    search's audit entry."""
    return "" if collection is None else hashlib.sha256(collection.encode()).hexdigest()[:16]


def _still_stored(service: ServiceContext, conn: sqlite3.Connection, found: list[audit.AuditEntry]) -> set[str]:
    """The candidates' and searched faces that are still stored and usable: one deleted, erased or
    expired since the search is not offered to a reviewer, nor named (the search itself still awaits
    its decision)."""
    wanted: dict[str, set[str]] = {}
    for entry in found:
        ids = wanted.setdefault(str(entry.data.get("collection")), set())
        ids.update(entry.data.get("face_ids", []))
        if isinstance(entry.data.get("searched_face_id"), str):
            ids.add(entry.data["searched_face_id"])
    now, kept = service.clock(), set()
    for name, ids in wanted.items():
        row = service.store.get_collection(name, conn) if ids else None
        if row is not None:
            kept |= {
                f for f, face in service.store.faces_by_ids(row.id, sorted(ids), conn).items() if usable(face, now)
            }
    return kept


def _item(entry: audit.AuditEntry, cropped: set[str], kept: set[str]) -> ReviewItem:
    d = entry.data
    sims = [float(s) for s in d.get("similarities", [])]
    if isinstance(d.get("fmrs"), list) and isinstance(d.get("fmr_bounds"), list):
        fmrs, bounds = [float(f) for f in d["fmrs"]], [bool(b) for b in d["fmr_bounds"]]
    else:  # an entry from before they were recorded: read off the Similarity, at most at its top
        fmrs = [fmr_from_similarity(min(max(s, 0.0), 100.0)) for s in sims]
        bounds = [s >= 100.0 for s in sims]
    candidates = tuple(
        ReviewCandidate(f, s, fmr, f in cropped, bound)
        for f, s, fmr, bound in zip(d.get("face_ids", []), sims, fmrs, bounds)
        if f in kept
    )
    return ReviewItem(
        entry.seq,
        entry.at,
        str(d["operation"]),
        str(d.get("collection")),
        float(d.get("threshold", 0.0)),
        int(d.get("gallery_size", 0)),
        d.get("searched_face_id") if d.get("searched_face_id") in kept else None,
        candidates,
    )
