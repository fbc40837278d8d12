"""Background video jobs (Rekognition's StartFaceDetection/StartFaceSearch), persisted in the store.

A job is a row of ``video_jobs``: the request, the caller, the status and, once done, the
results as JSON. One worker thread per service runs jobs in order. A job found IN_PROGRESS
when a service's job manager starts (the server stopped while it ran) is run again from the
start; one that cannot run any more (its video gone, its collection deleted) is FAILED with
the reason. ``ClientRequestToken`` makes a start idempotent per key: the same token with
the same request gives the same job, with another request an ``IdempotencyError`` (decided in
the database, so two replicas given the same token at once make one job).

Several replicas over one store: a job runs on the replica holding its lease
(``video-job:<id>`` in store/leases.py), renewed while it runs. Any replica may start a job or
read it; ``adopt`` (a server's periodic step) queues every IN_PROGRESS job whose lease has
expired or was never taken, so a job whose replica died is resumed by another within the
lease time (the setting ``lease_seconds``), and a waiting job is picked up by an idle replica.

The manager serves a ``JobHost`` (the service: its ``ServiceContext``, its lease name and a close
hook), not ``FaceService`` itself: its operations run on the context like every operation module's.

Here: the manager (start, get, wait; the queue, the worker thread and the leases). What a job is
and its JSON in the store: ``video_job_types.py``; running one job to its end: ``video_job_run.py``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import threading
import uuid
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol

from facetrust.errors import InvalidParameterError, LimitExceededError, NotFoundError
from facetrust.governance.actor import LOCAL, Actor
from facetrust.service.governed import governed, usable
from facetrust.service.idempotency import mismatch
from facetrust.service.search import under_purpose
from facetrust.service.video_job_run import Interrupted, run_job
from facetrust.service.video_job_types import (
    KINDS,
    JobResult,
    VideoJob,
    VideoJobRequest,
    job_from,
    matched_ids,
    parse_result,
    resolve_video,
)
from facetrust.service.video_retention import expired
from facetrust.store import leases
from facetrust.store import video_jobs as jobs_table
from facetrust.store.trouble import log_failure

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from facetrust.service.context import ServiceContext
    from facetrust.store.sqlite import CollectionRow

# The job's request and state (video_job_types.py) are re-exported: callers import them from here.
__all__ = [
    "KINDS",
    "MAX_JOBS_PER_KEY",
    "JobHost",
    "VideoJob",
    "VideoJobRequest",
    "VideoJobs",
    "jobs_of",
    "resolve_video",
]

log = logging.getLogger(__name__)

RESULTS_KEPT = 4  # finished jobs whose parsed results are kept for their next pages
MAX_JOBS_PER_KEY = 20  # queued or running at once, as Rekognition's concurrent-job quota: one key cannot fill the queue


def _may_read(actor: Actor, owner: str) -> bool:
    """A job's results are the starting key's (and an admin's): a JobId alone opens nothing."""
    return actor.key_id == owner or actor.role == "admin"


class _Stopped(Interrupted):
    """Raised inside a running job when its service closes."""


class _LeaseLost(Interrupted):
    """Raised inside a running job when another replica has taken its lease over."""


class JobHost(Protocol):
    """What the job manager needs of the service it serves (``FaceService`` is one): its context,
    read afresh at each use (a policy replaced later applies to jobs too), its name in the store's
    leases, and a hook that its ``close`` runs first."""

    @property
    def ctx(self) -> ServiceContext: ...

    @property
    def holder(self) -> str: ...

    # the role of an access key now (None: revoked or unknown), where the host has keys; read at each run
    key_role: Callable[[str], str | None] | None

    def on_close(self, stop: Callable[[], None]) -> None: ...


class VideoJobs:
    """The video jobs of one service: start (persist + queue), get, and the worker that runs them."""

    def __init__(self, host: JobHost, *, worker: bool = True) -> None:
        """``worker=False``: jobs are persisted and queued but never run (a server that stops at once)."""
        self.host = host
        self.settings = host.ctx.engine.settings
        self.lease_s = self.settings.lease_seconds
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._queued: set[str] = set()  # queued or running here: adopt() does not queue them again
        self._queued_lock = threading.Lock()
        self._results: OrderedDict[tuple[str, float], JobResult] = OrderedDict()  # finished jobs' parsed results
        self._results_lock = threading.Lock()
        self._renewed = 0.0
        self._current: str | None = None  # the lease of the job running here
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if worker:
            self._thread = threading.Thread(target=self._work, name="facetrust-video-jobs", daemon=True)
            self._thread.start()
            host.on_close(self.close)
            self.resume()

    @property
    def ctx(self) -> ServiceContext:
        """The service's context now (the operations' store, engine, policy and clock)."""
        return self.host.ctx

    def close(self, timeout: float = 60.0) -> None:
        """Stop the worker before the service closes its store: a job still running stops at its
        next frame and stays IN_PROGRESS, so the next start resumes it."""
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def resume(self) -> list[str]:
        """Queue again every job left IN_PROGRESS (by a stopped server); returns their ids."""
        with self.ctx.store.snapshot() as conn:
            ids = jobs_table.in_progress(conn)
        for job_id in ids:
            log.info("resuming video job %s", job_id)
            self._enqueue(job_id)
        return ids

    def adopt(self) -> list[str]:
        """Queue every IN_PROGRESS job no live replica holds (its lease expired, or never taken); their ids."""
        now = self.ctx.clock()
        with self.ctx.store.snapshot() as conn:
            ids = jobs_table.unheld(conn, now)
        adopted = [job_id for job_id in ids if self._enqueue(job_id)]
        for job_id in adopted:
            log.info("taking over video job %s", job_id)
        return adopted

    def _enqueue(self, job_id: str) -> bool:
        with self._queued_lock:
            if job_id in self._queued:
                return False
            self._queued.add(job_id)
        self._queue.put(job_id)
        return True

    def start(self, request: VideoJobRequest, actor: Actor = LOCAL) -> str:
        """Check the request (video, governance), persist it and queue it; the job's id.

        On the governed path as ``Start<kind>``: the role check, and for a search the collection
        purpose's rules (refused now, audited, rather than failed later); the entry names the job.
        """
        if request.kind not in KINDS:
            raise InvalidParameterError(f"Unknown job kind {request.kind!r}", parameter="kind")
        with governed(self.ctx, actor, f"Start{request.kind}", request.collection, model_check=True) as step:
            video = f"{request.bucket}/{request.name}"  # S3 allows 63 + 1,024 characters: more is cut
            step.record.details = {"video": video if len(video) <= 1100 else video[:1100] + "…"}
            if request.kind == "FaceSearch":
                under_purpose(step, request.threshold, "FaceMatchThreshold", 1, "MaxFaces")
            resolve_video(self.settings.video_root, request.bucket, request.name)
            job_id = self._same(request, actor) or self._insert(request, actor)
            step.record.details["job_id"] = job_id
        return job_id

    def _same(self, request: VideoJobRequest, actor: Actor) -> str | None:
        """The job this key started with the same ``ClientRequestToken``, if any (another request: refused)."""
        if request.client_token is None:
            return None
        with self.ctx.store.snapshot() as conn:
            found = jobs_table.by_client_token(conn, actor.key_id, request.kind, request.client_token)
        if found is None:
            return None
        if found[1] != request.fingerprint():
            raise mismatch(request.client_token, f"Start{request.kind}")
        return found[0]

    def _insert(self, request: VideoJobRequest, actor: Actor) -> str:
        """A new job, or (the same token just used by another replica or thread) that one's, via ``_same``."""
        job_id = uuid.uuid4().hex
        now = self.ctx.clock()
        with self.ctx.store.transaction() as conn:
            if jobs_table.count_in_progress(conn, actor.key_id) >= MAX_JOBS_PER_KEY:
                raise LimitExceededError(
                    f"This key has {MAX_JOBS_PER_KEY} video jobs queued or running, the most it may; "
                    "start more when they finish",
                    limit=MAX_JOBS_PER_KEY,
                )
            job = jobs_table.NewJob(
                job_id,
                request.kind,
                request.client_token,
                request.fingerprint(),
                actor.key_id,
                json.dumps(dataclasses.asdict(request)),
                json.dumps(dataclasses.asdict(actor)),
            )
            made = jobs_table.insert(conn, job, now)
        if not made:
            return str(self._same(request, actor))
        self._enqueue(job_id)
        return job_id

    def _load(self, job_id: str) -> tuple[VideoJob, str, float] | None:
        """The job, the key that started it and when it last changed (finished, once it has),
        ungoverned (the worker's and ``wait``'s view).

        A finished job's result is parsed once and kept (the last ``RESULTS_KEPT``): each page of a
        Get* reads only the row's head and the matches, not a result of hundreds of megabytes."""
        with self.ctx.store.snapshot() as conn:
            row = jobs_table.load(conn, job_id, result=False)
            if row is None:
                return None
            key = (job_id, row[7])
            with self._results_lock:
                parsed = self._results.get(key)
            if parsed is None:
                row = jobs_table.load(conn, job_id)
                if row is None:
                    return None
                parsed = parse_result(row[5])
                if row[2] in ("SUCCEEDED", "FAILED"):  # final: the same until the job is deleted
                    with self._results_lock:
                        self._results[(job_id, row[7])] = parsed
                        while len(self._results) > RESULTS_KEPT:
                            self._results.popitem(last=False)
            stored = jobs_table.matches(conn, job_id)
        return job_from(row[:6], stored, parsed), str(row[6]), row[7]

    def _unexpired(self, job_id: str) -> tuple[VideoJob, str] | None:
        """``_load``'s job and key, or None (as for an unknown job) once it has expired
        (service/video_retention.py), even before a sweep has deleted it."""
        found = self._load(job_id)
        if found is None:
            return None
        job, key, updated_at = found
        request = dataclasses.asdict(job.request)
        if expired(self.ctx, request, job.status, updated_at, self.ctx.clock()):
            return None
        return job, key

    def get(self, job_id: str, kind: str | None = None, *, actor: Actor = LOCAL) -> VideoJob:
        """A job and its results, on the governed path as ``Get<kind>`` (audited, whatever the answer).

        Only the key that started the job, or an admin, may read it: to any other key it does
        not exist, nor once it has expired (``video_job_retention_days``). A search job's results
        are read under its collection's purpose, so a moratorium declared since the job ran closes
        them too, and without the matches whose face has expired since (those of a face deleted
        or erased are gone from the store).
        """
        found = self._unexpired(job_id)
        kind = kind or (found[0].request.kind if found is not None else "FaceDetection")
        if kind not in KINDS:
            raise InvalidParameterError(f"Unknown job kind {kind!r}", parameter="kind")
        collection = found[0].request.collection if found is not None and kind == "FaceSearch" else None
        with governed(self.ctx, actor, f"Get{kind}", collection) as step:
            step.record.details = {"job_id": job_id[:64]}
            if found is None or found[0].request.kind != kind or not _may_read(actor, found[1]):
                raise NotFoundError(f"No {kind} job {job_id[:64]!r}", resource=job_id[:64])
            job = found[0] if step.row is None else self._present(found[0], step.row)
            step.record.details.update(status=job.status, face_ids=matched_ids(job))
        return job

    def _present(self, job: VideoJob, row: CollectionRow) -> VideoJob:
        """``job`` with only the matches whose face is still stored and usable: a face deleted, erased
        or expired since the job ran is no longer among its results."""
        stored = self.ctx.store.faces_by_ids(row.id, matched_ids(job))
        now = self.ctx.clock()
        kept = {f for f, face in stored.items() if usable(face, now)}
        matches = {p: tuple(m for m in ms if m.face.face_id in kept) for p, ms in job.matches.items()}
        return dataclasses.replace(job, matches={p: ms for p, ms in matches.items() if ms})

    def wait(self, job_id: str, timeout: float = 60.0, *, actor: Actor = LOCAL) -> VideoJob:
        """The job once it is no longer IN_PROGRESS (or as it is after ``timeout`` seconds), read as ``actor``."""
        import time

        end = time.monotonic() + timeout
        found = self._load(job_id)
        while found is not None and found[0].status == "IN_PROGRESS" and time.monotonic() < end:
            time.sleep(0.05)
            found = self._load(job_id)
        return self.get(job_id, actor=actor)

    # -- the worker -------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None or self._stop.is_set():
                return
            try:
                self._leased(job_id)
            except _Stopped:  # the service is closing: the job stays IN_PROGRESS, resumed at the next start
                return
            except Interrupted:  # it cannot go on here now (its key store closed): it stays IN_PROGRESS
                log.info("video job %s left IN_PROGRESS for the next start", job_id)
            except Exception as exc:  # left IN_PROGRESS: the next start runs it again
                log_failure(log, exc, "video job %s could not be recorded", job_id)
            finally:
                with self._queued_lock:
                    self._queued.discard(job_id)

    def _leased(self, job_id: str) -> None:
        """Run the job when this replica gets its lease (another replica running it keeps it); then let go."""
        name = f"video-job:{job_id}"
        now = self.ctx.clock()
        if not leases.acquire(self.ctx.store, name, self.host.holder, ttl_s=self.lease_s, now=now):
            return
        self._current, self._renewed = name, now
        try:
            run_job(self.ctx, job_id, self._check_stop, key_role=self.host.key_role)
        except _LeaseLost:
            log.warning("video job %s: lease lost to another replica; stopped here", job_id)
        finally:
            self._current = None
            leases.release(self.ctx.store, name, self.host.holder)

    def _check_stop(self, done_ms: int, total_ms: int) -> None:
        """The jobs' progress callback: where a closing service stops a running job, and the running
        job's lease is renewed (every third of the lease time)."""
        if self._stop.is_set():
            raise _Stopped
        now = self.ctx.clock()
        if self._current is not None and now - self._renewed >= self.lease_s / 3:
            self._renewed = now
            if not leases.acquire(self.ctx.store, self._current, self.host.holder, ttl_s=self.lease_s, now=now):
                raise _LeaseLost  # it expired (this replica stalled) and another replica runs the job now


_MANAGERS: weakref.WeakKeyDictionary[JobHost, VideoJobs] = weakref.WeakKeyDictionary()
_MANAGERS_LOCK = threading.Lock()


def jobs_of(service: JobHost) -> VideoJobs:
    """The job manager of ``service`` (made on first use, when interrupted jobs are resumed)."""
    with _MANAGERS_LOCK:
        manager = _MANAGERS.get(service)
        if manager is None:
            manager = _MANAGERS[service] = VideoJobs(service)
        return manager
