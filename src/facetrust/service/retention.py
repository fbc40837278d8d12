"""Keeping stored faces in bounds: the retention sweep, and re-sealing templates under the current key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facetrust.governance.actor import Actor
from facetrust.service.erasure import all_collections, erase_keys
from facetrust.service.governed import governed
from facetrust.service.types import SweepResult
from facetrust.service.validate import check_limit
from facetrust.service.video_retention import expired_jobs
from facetrust.store import records
from facetrust.store import video_jobs as jobs_table

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    from facetrust.service.context import ServiceContext
    from facetrust.store.sqlite import FaceRow

__all__ = ["rotate_templates", "sweep_retention"]


def sweep_retention(service: ServiceContext, dry_run: bool, actor: Actor) -> SweepResult:
    """Erase every face past its expiry (retention, or its subject's consent) and delete every video
    job past its own (service/video_retention.py), or only list them."""
    now = service.clock()
    rows = all_collections(service)
    names = {r.id: r.name for r in rows.values()}

    def listing(expired: dict[int, list[FaceRow]]) -> tuple[tuple[str, str], ...]:
        return tuple((names.get(cid, "?"), f.face_id) for cid, faces in expired.items() for f in faces)

    if dry_run:
        with governed(service, actor, "SweepRetention") as step:
            with service.store.snapshot() as conn:
                listed = listing(records.expired_faces(conn, now))
                jobs = tuple(expired_jobs(service, conn, now))
            step.record.details = {"dry_run": True, "expired": len(listed), "video_jobs_expired": len(jobs)}
        return SweepResult(True, listed, None, jobs)
    selected: dict[int, list[FaceRow]] = {}
    dropped: list[str] = []

    def select(conn: sqlite3.Connection) -> dict[int, list[FaceRow]]:
        selected.update(records.expired_faces(conn, now))  # what the erasure's own transaction saw
        return selected

    def drop_jobs(conn: sqlite3.Connection) -> dict[str, object]:
        dropped.extend(expired_jobs(service, conn, now))
        jobs_table.delete(conn, dropped)
        return {"video_jobs_expired": len(dropped)}

    target = f"expires_at <= {now:.3f}"
    receipt = erase_keys(service, "SweepRetention", "retention", target, actor, select, also=drop_jobs)
    erased = set(receipt.face_ids)
    return SweepResult(False, tuple((c, f) for c, f in listing(selected) if f in erased), receipt, tuple(dropped))


def rotate_templates(service: ServiceContext, batch_size: int, actor: Actor) -> int:
    with governed(service, actor, "RotateTemplates") as step:
        rec = step.record
        check_limit(batch_size, "batch_size", 1, 1_000_000)
        total, after = 0, 0
        while True:
            with service.store.transaction() as conn:
                changed, after = service.store.reseal_batch(conn, after, batch_size)
            total += changed
            if after == 0:
                break
        service.store.checkpoint()  # no plain or old-key copy left in the WAL
        rec.details = {"resealed": total}
    return total
