"""SQL of the video job queue (``video_jobs``): a job's request, caller, status and results, as JSON text.

``service/video_jobs.py`` runs the jobs and decides what they hold; these functions only read
and write the rows, inside a connection the store opened (a transaction's to write).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

__all__ = ["JobOutcome", "NewJob", "by_client_token", "finish", "in_progress", "insert", "load", "to_run", "unheld"]


@dataclass(frozen=True)
class NewJob:
    """A job to queue: its id and kind, the idempotency token and request hash, who started it
    (key id, and the actor as JSON), and the request as JSON."""

    job_id: str
    kind: str
    client_token: str | None
    request_hash: str
    key_id: str
    request: str
    actor: str


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended: SUCCEEDED or FAILED, why (when it failed), and its video's metadata and
    results as JSON (None when it failed)."""

    status: str
    message: str | None
    metadata: str | None
    result: str | None


def in_progress(conn: sqlite3.Connection) -> list[str]:
    """The ids of the jobs left IN_PROGRESS."""
    return [r[0] for r in conn.execute("SELECT job_id FROM video_jobs WHERE status = 'IN_PROGRESS'")]


def by_client_token(conn: sqlite3.Connection, key_id: str, kind: str, token: str) -> tuple[str, str] | None:
    """(job id, request hash) of the job this key started with this token, if any."""
    found = conn.execute(
        "SELECT job_id, request_hash FROM video_jobs WHERE key_id = ? AND kind = ? AND client_token = ?",
        (key_id, kind, token),
    ).fetchone()
    return None if found is None else (str(found[0]), str(found[1]))


def insert(conn: sqlite3.Connection, job: NewJob, now: float) -> bool:
    """Queue ``job``; False (nothing written) when this key already used its ``client_token`` for this
    kind: the unique index decides, so two replicas given one token at once make one job."""
    cur = conn.execute(
        "INSERT INTO video_jobs (job_id, kind, client_token, request_hash, key_id, request, actor, status,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'IN_PROGRESS', ?, ?)"
        " ON CONFLICT (key_id, kind, client_token) DO NOTHING",
        (job.job_id, job.kind, job.client_token, job.request_hash, job.key_id, job.request, job.actor, now, now),
    )
    return bool(cur.rowcount)


def unheld(conn: sqlite3.Connection, now: float) -> list[str]:
    """The ids of the IN_PROGRESS jobs no replica holds a live lease on (``video-job:<id>``,
    store/leases.py), oldest first."""
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT j.job_id FROM video_jobs j LEFT JOIN leases l ON l.name = 'video-job:' || j.job_id "
            "WHERE j.status = 'IN_PROGRESS' AND (l.name IS NULL OR l.expires_at < ?) ORDER BY j.created_at",
            (now,),
        )
    ]


def load(conn: sqlite3.Connection, job_id: str) -> tuple[str, str, str, str | None, str | None, str | None, str] | None:
    """(job id, request, status, status message, metadata, result, key id) of the job, if it exists."""
    row = conn.execute(
        "SELECT job_id, request, status, status_message, metadata, result, key_id FROM video_jobs WHERE job_id = ?",
        (job_id,),
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2], row[3], row[4], row[5], row[6])


def to_run(conn: sqlite3.Connection, job_id: str) -> tuple[str, str, str] | None:
    """(request, actor, status) of the job, if it exists."""
    row = conn.execute("SELECT request, actor, status FROM video_jobs WHERE job_id = ?", (job_id,)).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def finish(conn: sqlite3.Connection, job_id: str, outcome: JobOutcome, now: float) -> None:
    conn.execute(
        "UPDATE video_jobs SET status = ?, status_message = ?, metadata = ?, result = ?, updated_at = ?"
        " WHERE job_id = ?",
        (outcome.status, outcome.message, outcome.metadata, outcome.result, now, job_id),
    )
