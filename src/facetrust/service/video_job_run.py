"""Running one queued video job to its end: detection or search over its video, and its outcome stored."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import TYPE_CHECKING, Any

from facetrust.errors import FacetrustError, RoleDeniedError, StoreBusyError, StoreUnavailableError
from facetrust.governance.actor import LOCAL, Actor
from facetrust.governance.recorder import Paused
from facetrust.service.governed import record_refusal
from facetrust.service.video_job_types import VideoJobRequest, job_estimates, job_matches, resolve_video
from facetrust.store import video_jobs as jobs_table
from facetrust.video.pipeline import VideoOptions, detect_video
from facetrust.video.source import VideoInfo

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from facetrust.service.context import ServiceContext
    from facetrust.video.pipeline import Progress

__all__ = ["Done", "Interrupted", "execute", "finish", "run_job"]

log = logging.getLogger(__name__)

# What a job that ran leaves: its video's metadata, its result (as JSON data) and a search's matches.
Done = tuple[VideoInfo, dict[str, Any], list[jobs_table.JobMatch]]


class Interrupted(Paused):
    """Raised by a job's progress callback to stop it where it is: the job stays IN_PROGRESS (and
    no audit entry is written for the part that ran: the run that finishes it is logged)."""


def run_job(
    ctx: ServiceContext, job_id: str, progress: Progress, *, key_role: Callable[[str], str | None] | None = None
) -> None:
    """Run the job if it is still IN_PROGRESS and record how it ended: SUCCEEDED with its results, or
    FAILED with the reason. ``progress`` is called as it goes; an ``Interrupted`` it raises passes
    through, and the job is left as it was. ``key_role`` (a server's key store): the role of the
    starting key now; a key revoked since the start fails the job instead (audited for a search)."""
    with ctx.store.snapshot() as conn:
        row = jobs_table.to_run(conn, job_id)
    if row is None or row[2] != "IN_PROGRESS":
        return
    request, actor = VideoJobRequest(**json.loads(row[0])), Actor(**json.loads(row[1]))
    try:
        actor = _still_held(ctx, job_id, request, actor, key_role)
        done = execute(ctx, request, actor, progress)
    except Interrupted:
        raise
    except (StoreUnavailableError, StoreBusyError) as exc:  # the log names the store, the job's clients do not
        log.warning("video job %s failed: %s", job_id, exc.message)
        finish(ctx, job_id, "FAILED", _store_trouble(exc))
    except FacetrustError as exc:
        finish(ctx, job_id, "FAILED", exc.message)
    except Exception:
        log.exception("video job %s failed", job_id)
        finish(ctx, job_id, "FAILED", f"internal error; quote job id {job_id} to the operator")
    else:
        finish(ctx, job_id, "SUCCEEDED", None, done)


def _store_trouble(exc: StoreUnavailableError | StoreBusyError) -> str:
    """A job's status message for the store out of reach, locked too long, or its connection lost,
    while the job ran."""
    if isinstance(exc, StoreBusyError):
        return (
            f"The server's store was locked by another process for longer than {exc.waited_s:g} s while the job "
            "ran, so the job was not completed; start the job again"
        )
    if exc.connection_lost:
        return (
            "The server's connection to its database was lost while the job ran, so the job was not completed "
            "and the database rolled back its unfinished changes; start the job again"
        )
    return (
        "The server's store could not be reached while the job ran, so the job was not completed; start the job again"
    )


def _still_held(
    ctx: ServiceContext,
    job_id: str,
    request: VideoJobRequest,
    actor: Actor,
    key_role: Callable[[str], str | None] | None,
) -> Actor:
    """The job's actor with its key's role now; ``RoleDeniedError`` (recorded in the audit log for a
    search, as a refused ``FaceSearchJob``) when the key has been revoked since the job started."""
    if key_role is None or actor.key_id == LOCAL.key_id:
        return actor
    try:
        role = key_role(actor.key_id)
    except Exception:  # the key store is closing (the server stops): the job waits for the next start
        log.info("video job %s: the key store cannot be read; left for the next start", job_id)
        raise Interrupted from None
    if role is not None:
        return dataclasses.replace(actor, role=role)
    operation = "FaceSearchJob" if request.kind == "FaceSearch" else f"Start{request.kind}"
    error = RoleDeniedError(
        f"Key {actor.key_id} that started job {job_id} has been revoked since: the job does not run",
        key_id=actor.key_id,
        role=actor.role,
        operation=operation,
    )
    if request.kind == "FaceSearch":
        record_refusal(ctx.store, actor, operation, error)
    raise error


def execute(ctx: ServiceContext, request: VideoJobRequest, actor: Actor, progress: Progress) -> Done:
    """Run ``request`` as ``actor`` (a search on the governed path, as ``FaceSearchJob``); what it found."""
    from facetrust.service.video import governed_video_search

    settings = ctx.engine.settings
    path = resolve_video(settings.video_root, request.bucket, request.name)
    options = VideoOptions.from_settings(settings)
    matches: list[jobs_table.JobMatch] = []
    governed: dict[str, Any] = {}
    if request.kind == "FaceSearch":
        found = governed_video_search(
            ctx,
            str(request.collection),
            path,
            actor=actor,
            operation="FaceSearchJob",
            threshold=request.threshold,
            options=options,
            progress=progress,
        )
        video = found.video
        matches = job_matches(found.persons)
        governed = {
            "review_required": found.review_required,
            "audit_seq": found.audit_seq,
            "gallery_size": found.gallery_size,
            "estimates": job_estimates(found.persons),
        }
    else:
        video = detect_video(path, ctx.engine, options, progress=progress)
    faces = [(f.timestamp_ms, f.person, dataclasses.asdict(f.face)) for f in video.faces]
    return video.info, {"faces": faces, **governed}, matches


def finish(ctx: ServiceContext, job_id: str, status: str, message: str | None, done: Done | None = None) -> None:
    """Record the job's end: with ``done`` (metadata, result, matches) its results; the store keeps
    only the matches whose face is still stored (store/video_jobs.py)."""
    metadata, result, found = done if done is not None else (None, None, [])
    with ctx.store.transaction() as conn:
        outcome = jobs_table.JobOutcome(
            status,
            message,
            json.dumps(dataclasses.asdict(metadata)) if metadata else None,
            json.dumps(result) if result is not None else None,
        )
        if not jobs_table.finish(conn, job_id, outcome, ctx.clock(), found):
            log.info("video job %s was finished elsewhere meanwhile; this run's end is not recorded", job_id)
