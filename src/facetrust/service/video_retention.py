"""How long a stored video job is kept: the one rule that Get* and the retention sweep share.

A finished job (SUCCEEDED or FAILED) keeps its results ``video_job_retention_days`` (the setting;
default 7, as Rekognition keeps a video analysis's results) after it finished, and a FaceSearch
job never longer than its collection's purpose keeps faces (``retention_days``), when that is
shorter. Past that the job is gone: Get* answers as for an unknown job, and the next retention
sweep deletes it with its results. A job still IN_PROGRESS does not expire.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from facetrust.store import video_jobs as jobs_table

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    from facetrust.service.context import ServiceContext

__all__ = ["FINISHED", "expired", "expired_jobs", "expires_at"]

FINISHED = ("SUCCEEDED", "FAILED")


def _kept_s(ctx: ServiceContext, kind: str, collection: str | None, conn: sqlite3.Connection) -> float:
    """Seconds a finished job of ``kind`` (on ``collection``) is kept."""
    kept = ctx.engine.settings.video_job_retention_days * 86400.0
    if kind != "FaceSearch" or collection is None:
        return kept
    row = ctx.store.get_collection(collection, conn)
    purpose = ctx.policy.purposes.get(row.purpose) if row is not None else None
    return kept if purpose is None else min(kept, purpose.retention_seconds)


def expires_at(ctx: ServiceContext, request: dict[str, object], finished_at: float, conn: sqlite3.Connection) -> float:
    """When a finished job (its request as stored, and when it finished) expires."""
    collection = request.get("collection")
    kind = str(request.get("kind"))
    return finished_at + _kept_s(ctx, kind, collection if isinstance(collection, str) else None, conn)


def expired(ctx: ServiceContext, request: dict[str, object], status: str, updated_at: float, now: float) -> bool:
    """Whether the job (its request, status and last change) has expired at ``now``."""
    if status not in FINISHED:
        return False
    with ctx.store.snapshot() as conn:
        return expires_at(ctx, request, updated_at, conn) <= now


def expired_jobs(ctx: ServiceContext, conn: sqlite3.Connection, now: float) -> list[str]:
    """The ids of the finished jobs past their expiry at ``now``, oldest first."""
    shortest = [p.retention_seconds for p in ctx.policy.purposes.values()]
    kept = min([ctx.engine.settings.video_job_retention_days * 86400.0, *shortest])
    return [
        job_id
        for job_id, request, finished_at in jobs_table.finished(conn, now - kept)
        if expires_at(ctx, json.loads(request), finished_at, conn) <= now
    ]
