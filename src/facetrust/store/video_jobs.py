"""SQL of the video job queue (``video_jobs``): a job's request, caller, status and results, as JSON text.

``service/video_jobs.py`` runs the jobs and decides what they hold; these functions only read
and write the rows, inside a connection the store opened (a transaction's to write).

A FaceSearch job's matches are rows of ``video_job_matches``, one per (person, matched face),
each referencing its face: erasing, deleting or expiring a face deletes its matches in the same
statement (the foreign key's cascade), so no stored result names a face that is gone.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from facetrust.store import vacuums
from facetrust.store.inlist import in_chunks, select_in
from facetrust.store.leases import FURTHEST_S

__all__ = [
    "JobMatch",
    "JobOutcome",
    "NewJob",
    "by_client_token",
    "cap_finish_times",
    "delete",
    "finish",
    "finished",
    "in_progress",
    "insert",
    "load",
    "matches",
    "move_legacy_matches",
    "naming",
    "to_run",
    "unheld",
]


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


@dataclass(frozen=True)
class JobMatch:
    """One match of a FaceSearch job: the tracked person, its rank among the person's matches, the
    matched face's id and the match as JSON."""

    person: int
    ordinal: int
    face_id: str
    match: str


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


def count_in_progress(conn: sqlite3.Connection, key_id: str) -> int:
    """How many of this key's jobs are queued or running."""
    sql = "SELECT count(*) FROM video_jobs WHERE key_id = ? AND status = 'IN_PROGRESS'"
    return int(conn.execute(sql, (key_id,)).fetchone()[0])


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
    store/leases.py: expired, or ending more than ``FURTHEST_S`` after ``now``), oldest first."""
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT j.job_id FROM video_jobs j LEFT JOIN leases l ON l.name = 'video-job:' || j.job_id "
            "WHERE j.status = 'IN_PROGRESS' AND (l.name IS NULL OR l.expires_at < ? OR l.expires_at > ?) "
            "ORDER BY j.created_at",
            (now, now + FURTHEST_S),
        )
    ]


def load(
    conn: sqlite3.Connection, job_id: str, *, result: bool = True
) -> tuple[str, str, str, str | None, str | None, str | None, str, float] | None:
    """(job id, request, status, status message, metadata, result, key id, updated at) of the job,
    if it exists; a finished job was last updated when it finished. ``result`` false: the result
    (a long video's can be hundreds of megabytes) is not read, and is None."""
    column = "result" if result else "NULL"
    row = conn.execute(
        f"SELECT job_id, request, status, status_message, metadata, {column}, key_id, updated_at FROM video_jobs"
        " WHERE job_id = ?",
        (job_id,),
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2], row[3], row[4], row[5], row[6], float(row[7]))


def matches(conn: sqlite3.Connection, job_id: str) -> list[tuple[int, str]]:
    """(person, match as JSON) of the job's stored matches, by person and rank."""
    rows = conn.execute(
        "SELECT person, match FROM video_job_matches WHERE job_id = ? ORDER BY person, ordinal", (job_id,)
    )
    return [(int(r[0]), str(r[1])) for r in rows]


def naming(conn: sqlite3.Connection, face_ids: Sequence[str]) -> set[str]:
    """The jobs whose stored matches name any of ``face_ids``."""
    sql = "SELECT DISTINCT job_id FROM video_job_matches WHERE face_id IN ({marks})"
    return {str(r[0]) for r in select_in(conn, sql, (), face_ids)}


def finished(conn: sqlite3.Connection, before: float) -> list[tuple[str, str, float]]:
    """(job id, request, finished at) of the SUCCEEDED or FAILED jobs that finished at or before ``before``."""
    rows = conn.execute(
        "SELECT job_id, request, updated_at FROM video_jobs WHERE status IN ('SUCCEEDED', 'FAILED')"
        " AND updated_at <= ? ORDER BY updated_at",
        (before,),
    )
    return [(str(r[0]), str(r[1]), float(r[2])) for r in rows]


def cap_finish_times(conn: sqlite3.Connection, latest: float, to: float, *, write: bool = True) -> int:
    """Bring the finish time of every SUCCEEDED or FAILED job that finished after ``latest`` (a clock
    ran ahead) back to ``to`` (``write`` false: only count them); how many."""
    where = "status IN ('SUCCEEDED', 'FAILED') AND updated_at > ?"
    found = int(conn.execute(f"SELECT count(*) FROM video_jobs WHERE {where}", (latest,)).fetchone()[0])
    if found and write:
        conn.execute(f"UPDATE video_jobs SET updated_at = ? WHERE {where}", (to, latest))
    return found


def delete(conn: sqlite3.Connection, job_ids: Sequence[str]) -> int:
    """Delete the jobs with their results and matches, counted as an erasure (their results name
    faces and people: a vacuum is due for them, store/vacuums.py); how many were deleted."""
    deleted = 0
    for marks, chunk in in_chunks(job_ids, conn):
        conn.execute(f"DELETE FROM video_job_matches WHERE job_id IN ({marks})", chunk)
        deleted += conn.execute(f"DELETE FROM video_jobs WHERE job_id IN ({marks})", chunk).rowcount
    if deleted:
        vacuums.count_erasure(conn)
    return deleted


def to_run(conn: sqlite3.Connection, job_id: str) -> tuple[str, str, str] | None:
    """(request, actor, status) of the job, if it exists."""
    row = conn.execute("SELECT request, actor, status FROM video_jobs WHERE job_id = ?", (job_id,)).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def finish(
    conn: sqlite3.Connection, job_id: str, outcome: JobOutcome, now: float, found: Sequence[JobMatch] = ()
) -> bool:
    """Record how the job ended, with its matches: only those whose face is still stored when the
    job finishes (a face erased while the job ran is not written back). Only a job still in
    progress is finished: a run that lost its lease while another replica finished the job changes
    nothing (False)."""
    cur = conn.execute(
        "UPDATE video_jobs SET status = ?, status_message = ?, metadata = ?, result = ?, updated_at = ?"
        " WHERE job_id = ? AND status = 'IN_PROGRESS'",
        (outcome.status, outcome.message, outcome.metadata, outcome.result, now, job_id),
    )
    if cur.rowcount == 0:
        return False
    _insert_matches(conn, job_id, found)
    return True


def _insert_matches(conn: sqlite3.Connection, job_id: str, found: Sequence[JobMatch]) -> None:
    """Store the job's matches whose face is still stored (the others name a face that is gone)."""
    for m in found:
        conn.execute(
            "INSERT INTO video_job_matches (job_id, person, ordinal, face_id, match)"
            " SELECT ?, ?, ?, face_id, ? FROM faces WHERE face_id = ?",
            (job_id, m.person, m.ordinal, m.match, m.face_id),
        )


_MOVED = "video_job_matches_moved"


def move_legacy_matches(conn: sqlite3.Connection) -> int:
    """Once per store (a mark in ``meta``), inside a write transaction: move the matches that jobs
    finished before ``video_job_matches`` existed kept in their result JSON into that table (those
    whose face is still stored), and rewrite each result without them. How many jobs were rewritten."""
    if conn.execute("SELECT 1 FROM meta WHERE key = ?", (_MOVED,)).fetchone() is not None:
        return 0
    rows = conn.execute("SELECT job_id, result FROM video_jobs WHERE result IS NOT NULL").fetchall()
    moved = 0
    for job_id, result in rows:
        data = json.loads(result)
        legacy = data.pop("matches", None)
        if legacy is None:
            continue
        found = [
            JobMatch(int(person), i, str(m["face"]["face_id"]), json.dumps(m))
            for person, ms in legacy.items()
            for i, m in enumerate(ms)
        ]
        conn.execute("UPDATE video_jobs SET result = ? WHERE job_id = ?", (json.dumps(data), job_id))
        _insert_matches(conn, job_id, found)
        moved += 1
    conn.execute("INSERT INTO meta(key, value) VALUES (?, '1')", (_MOVED,))
    return moved
