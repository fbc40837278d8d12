"""Keeping stored faces in bounds: the retention sweep, and re-sealing templates under the current key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facetrust.governance.actor import Actor
from facetrust.governance.policy import MAX_RETENTION_DAYS
from facetrust.governance.recorder import STARTED, Record
from facetrust.service.erasure import all_collections, erase_keys
from facetrust.service.governed import governed
from facetrust.service.types import SweepResult
from facetrust.service.validate import check_limit
from facetrust.service.video_retention import expired_jobs
from facetrust.store import changelog, records
from facetrust.store import video_jobs as jobs_table

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    from facetrust.service.context import ServiceContext

__all__ = ["JOB_AHEAD_S", "rotate_templates", "sweep_retention"]

# A finished video job's finish time more than this after now was written by a clock far ahead (no
# replicas' clocks differ by a day): the sweep brings it back to now, so the job is kept from then.
JOB_AHEAD_S = 86400.0


def sweep_retention(service: ServiceContext, dry_run: bool, actor: Actor, limit: int | None = None) -> SweepResult:
    """Erase every face past its expiry (retention, or its subject's consent) and delete every video
    job past its own (service/video_retention.py), or only list them. A face whose expiry or end of
    retention lies more than ``MAX_RETENTION_DAYS`` (the longest a policy may set) after now was
    enrolled by a clock far ahead: both are brought back to now + ``MAX_RETENTION_DAYS`` and counted
    (``expiries_capped``; a dry run counts only). So is a finished video job whose finish time lies
    more than a day ahead (``JOB_AHEAD_S``): it is kept from now (``video_jobs_capped``). The change
    log's rows older than ``change_log_days`` are deleted in the same transaction (store/changelog.py;
    ``changes_pruned`` in the audit entry; a dry run leaves the log as it is). With ``limit``, at
    most that many faces (those that expired first), so one transaction stays short; ``more`` says
    others expired too (the audit entry's ``more_expired``), for the next sweep."""
    now = service.clock()
    latest = now + MAX_RETENTION_DAYS * 86400.0
    rows = all_collections(service)
    names = {r.id: r.name for r in rows.values()}

    def listing(expired: dict[int, list[records.FaceKey]]) -> tuple[tuple[str, str], ...]:
        return tuple((names.get(cid, "?"), f.face_id) for cid, faces in expired.items() for f in faces)

    if dry_run:
        with governed(service, actor, "SweepRetention") as step:
            with service.store.snapshot() as conn:
                found, beyond = _expired(conn, now, limit)
                listed = listing(found)
                jobs = tuple(expired_jobs(service, conn, now))
                far = records.cap_expiries(conn, latest, write=False)
                far_jobs = jobs_table.cap_finish_times(conn, now + JOB_AHEAD_S, now, write=False)
            step.record.details = {
                "dry_run": True,
                "expired": len(listed),
                "video_jobs_expired": len(jobs),
                "expiries_capped": far,
                "video_jobs_capped": far_jobs,
            }
            if beyond:
                step.record.details["more_expired"] = True
        return SweepResult(True, listed, None, jobs, far, far_jobs, beyond)
    selected: dict[int, list[records.FaceKey]] = {}
    dropped: list[str] = []
    capped: list[int] = []
    more = [False]  # whether faces past the limit stayed (as the erasure's transaction saw them)

    def select(conn: sqlite3.Connection) -> dict[int, list[records.FaceKey]]:
        found, beyond = _expired(conn, now, limit)  # what the erasure's own transaction sees
        selected.update(found)
        more[0] = beyond
        return selected

    def also(conn: sqlite3.Connection) -> dict[str, object]:
        dropped.extend(expired_jobs(service, conn, now))
        jobs_table.delete(conn, dropped)
        capped.append(records.cap_expiries(conn, latest))
        capped.append(jobs_table.cap_finish_times(conn, now + JOB_AHEAD_S, now))
        details: dict[str, object] = {
            "video_jobs_expired": len(dropped),
            "expiries_capped": capped[0],
            "video_jobs_capped": capped[1],
        }
        if more[0]:
            details["more_expired"] = True
        keep_days = service.engine.settings.change_log_days
        if keep_days > 0:  # the change log's rows older than that (store/changelog.py)
            details["changes_pruned"] = changelog.prune(conn, now, keep_days * 86400.0)
        return details

    target = f"expires_at <= {now:.3f}"
    receipt = erase_keys(service, "SweepRetention", "retention", target, actor, select, also=also)
    erased = set(receipt.face_ids)
    expired = tuple((c, f) for c, f in listing(selected) if f in erased)
    return SweepResult(False, expired, receipt, tuple(dropped), capped[0], capped[1], more[0])


def _expired(conn: sqlite3.Connection, now: float, limit: int | None) -> tuple[dict[int, list[records.FaceKey]], bool]:
    """The faces expired by ``now`` (the ``limit`` that expired first, if given), by collection id;
    whether others expired too. Called on the governed path, so a bad ``limit`` is audited."""
    if limit is not None:
        check_limit(limit, "limit", 1, 10_000_000)
    ordered = records.expired_in_order(conn, now, None if limit is None else limit + 1)  # one past it: more?
    found: dict[int, list[records.FaceKey]] = {}
    for cid, face in ordered[:limit]:
        found.setdefault(cid, []).append(face)
    return found, limit is not None and len(ordered) > limit


def rotate_templates(service: ServiceContext, batch_size: int, actor: Actor) -> int:
    """Re-seal every template, and every kept face crop, with the current key, a batch per transaction.

    The transaction of the first batch that changes anything also appends an entry saying that a
    rotation started (outcome ``started``), so a rotation killed after it is in the log; the entry
    at the end says how many templates were re-sealed and names that one (``started_seq``). A rerun
    re-seals what is left, logged the same way."""
    with governed(service, actor, "RotateTemplates") as step:
        rec = step.record
        check_limit(batch_size, "batch_size", 1, 1_000_000)
        total, after, started = 0, 0, 0
        while True:
            with service.store.transaction() as conn:
                batch = service.store.reseal_batch(conn, after, batch_size)
                changed = batch.templates > 0 or batch.crops > 0
                first = _log_start(service, conn, actor, batch_size) if changed and not started else 0
            started = started or first  # only once its transaction committed
            total, after = total + batch.templates, batch.last_key
            rec.details = {"resealed": total}  # so far: an error's entry says it too
            if started:
                rec.details["started_seq"] = started
            if after == 0:
                break
        service.store.checkpoint()  # no plain or old-key copy left in the WAL
    return total


def _log_start(service: ServiceContext, conn: sqlite3.Connection, actor: Actor, batch_size: int) -> int:
    """Append, in the first changing batch's transaction, the entry saying a rotation started: by
    whom, in batches of how many, to which key. Its sequence number."""
    keyring = service.store.keyring
    start = Record(actor, "RotateTemplates")
    start.details = {"batch_size": batch_size, "template_key": keyring.current.key_id.hex() if keyring else None}
    return start.commit(conn, outcome=STARTED).seq
