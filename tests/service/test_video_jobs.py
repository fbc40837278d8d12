"""Governance of stored video jobs: erasure purges their results, and finished jobs expire.

Every test reads the store's raw rows (on SQLite, or on PostgreSQL with
FACETRUST_TEST_STORE=postgresql), not only what Get* returns.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from facetrust.config import Settings
from facetrust.errors import NotFoundError
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.governance.policy import Policy, Purpose
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.service.sweeper import LeasedSweeper
from facetrust.service.types import ErasureReceipt
from facetrust.service.video_job_run import execute, finish
from facetrust.service.video_jobs import VideoJobRequest, VideoJobs, jobs_of
from pg_cluster import StoreBackend

from .test_governance import Clock

DAY = 86400.0
POLICY = Policy(
    {
        "general": Purpose("general", min_threshold=0.0, max_candidates=4096),
        "consented": Purpose("consented", min_threshold=0.0, consent_required=True),
        "brief": Purpose("brief", min_threshold=0.0, retention_days=1),
    },
    "general",
)
PERSON_1 = (40, 40, 100, 1)  # the fake engine's face of person 0 in the story clip


@dataclass
class Videos:
    root: Path
    data: Path
    clock: Clock
    open: Callable[..., FaceService]


@pytest.fixture
def videos(tmp_path: Path, story_clip: Path) -> Iterator[Videos]:
    root = tmp_path / "videos"
    (root / "lobby").mkdir(parents=True)
    os.link(story_clip, root / "lobby" / "story.mp4")
    clock = Clock()
    opened: list[FaceService] = []

    def open_service(**settings: Any) -> FaceService:
        engine = fake_engine(Settings(flip_augment=False, video_root=root, video_sample_fps=5.0, **settings))
        service = FaceService(tmp_path / "data", engine, policy=POLICY, clock=clock)
        opened.append(service)
        return service

    yield Videos(root, tmp_path / "data", clock, open_service)
    for service in opened:
        service.close()


def enrol_person_1(service: FaceService) -> str:
    """Collection ``staff`` holding the face of the clip's person 0; its face id."""
    service.create_collection("staff")
    return service.index_faces("staff", face_png(PERSON_1)).indexed[0].stored.face_id


def search_job(service: FaceService, collection: str = "staff") -> str:
    jobs = jobs_of(service)
    job = jobs.start(VideoJobRequest("FaceSearch", "lobby", "story.mp4", collection))
    assert jobs.wait(job).status == "SUCCEEDED"
    return job


def _tables(service: FaceService, backend: StoreBackend) -> list[str]:
    conn = service.store.connection()
    if backend.name == "postgresql":
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    return sorted(str(r[0]) for r in conn.execute(sql))


def tables_naming(service: FaceService, backend: StoreBackend, text: str) -> list[str]:
    """The tables (but the audit log, which records what was done to whom) with a cell that holds ``text``."""
    found = []
    conn = service.store.connection()
    for table in _tables(service, backend):
        if table == "audit_log":
            continue
        for row in conn.execute(f"SELECT * FROM {table}"):
            cells = (bytes(c).decode("latin-1") if isinstance(c, (bytes, memoryview)) else str(c) for c in row)
            if any(text in cell for cell in cells):
                found.append(table)
                break
    return found


def matched(service: FaceService, job: str) -> set[str]:
    return {m.face.face_id for ms in jobs_of(service).get(job, "FaceSearch").matches.values() for m in ms}


def raw_job(service: FaceService, job: str) -> tuple[Any, ...] | None:
    row = service.store.connection().execute("SELECT status, result FROM video_jobs WHERE job_id = ?", (job,))
    found = row.fetchone()
    return None if found is None else tuple(found)


# -- 1. erasure and deletion purge stored job results ----------------------------------------------


def _delete_faces(s: FaceService, face_id: str) -> ErasureReceipt:
    receipt = s.delete_faces("staff", [face_id]).receipt
    assert receipt is not None
    return receipt


def _erase_user(s: FaceService, face_id: str) -> ErasureReceipt:
    s.create_user("staff", "alice-user")
    s.associate_faces("staff", "alice-user", [face_id])
    return s.erase_user("staff", "alice-user")


ERASURES: dict[str, Callable[[FaceService, str], ErasureReceipt]] = {
    "DeleteFaces": _delete_faces,
    "EraseSubject": lambda s, _: s.erase_subject("ALICE"),
    "EraseExternalImageId": lambda s, _: s.erase_external_image_id("staff", "alice"),
    "EraseUser": _erase_user,
    "RevokeConsent": lambda s, _: s.revoke_consent("alice"),
    "DeleteCollection": lambda s, _: s.delete_collection("staff"),
}


@pytest.mark.parametrize("erasure", sorted(ERASURES))
def test_an_erased_face_is_gone_from_the_stored_results_of_the_jobs_that_matched_it(
    videos: Videos, store_backend: StoreBackend, erasure: str
) -> None:
    service = videos.open()
    purpose = "consented" if erasure == "RevokeConsent" else "general"
    if erasure == "RevokeConsent":
        service.record_consent("alice", basis="written release", evidence="form-1")
    service.create_collection("staff", purpose=purpose)
    face_id = service.index_faces("staff", face_png(PERSON_1), external_image_id="alice").indexed[0].stored.face_id
    job = search_job(service)
    assert matched(service, job) == {face_id}
    assert set(tables_naming(service, store_backend, face_id)) - {"faces"}  # the job's stored results name it

    receipt = ERASURES[erasure](service, face_id)

    assert tables_naming(service, store_backend, face_id) == []  # they name it no more
    assert receipt.face_ids == (face_id,) and receipt.video_jobs_rewritten == 1
    assert raw_job(service, job) is not None  # the job itself stays, with its sightings
    assert service.verify_receipt(receipt)
    assert service.verify_audit_log().ok
    entry = next(e for e in audit.entries(service.store.connection()) if e.seq == receipt.audit_seq)
    assert entry.data["video_jobs_rewritten"] == 1


def test_a_face_erased_while_its_job_ran_is_not_written_back_with_the_results(
    videos: Videos, store_backend: StoreBackend
) -> None:
    service = videos.open()
    face_id = enrol_person_1(service)
    jobs = VideoJobs(service, worker=False)
    job = jobs.start(VideoJobRequest("FaceSearch", "lobby", "story.mp4", "staff"))
    request = jobs.get(job, "FaceSearch").request
    admin, no_progress = Actor("local", "admin"), lambda done_ms, total_ms: None
    done = execute(service.ctx, request, admin, no_progress)  # the search ran and matched the face...
    assert [m.face_id for m in done[2]] == [face_id]
    service.delete_faces("staff", [face_id])  # ...which is erased before the job records its results
    finish(service.ctx, job, "SUCCEEDED", None, done)

    assert jobs.get(job, "FaceSearch").status == "SUCCEEDED"
    assert tables_naming(service, store_backend, face_id) == []


def test_matches_kept_in_a_result_by_an_older_version_move_out_once_and_follow_erasure(
    videos: Videos, store_backend: StoreBackend
) -> None:
    service = videos.open()
    face_id = enrol_person_1(service)
    job = search_job(service)
    stored = next(iter(jobs_of(service).get(job, "FaceSearch").matches[0]))
    legacy = json.loads(str(service.store.connection().execute("SELECT result FROM video_jobs").fetchone()[0]))
    gone = dataclasses.asdict(stored) | {"face": dataclasses.asdict(stored.face) | {"face_id": "gone-face"}}
    legacy["matches"] = {"0": [dataclasses.asdict(stored)], "1": [gone]}
    with service.store.transaction() as conn:  # the row as facetrust wrote it before video_job_matches
        conn.execute("DELETE FROM video_job_matches")
        conn.execute("UPDATE video_jobs SET result = ?", (json.dumps(legacy),))
        conn.execute("DELETE FROM meta WHERE key = 'video_job_matches_moved'")
    service.close()

    again = videos.open()
    assert matched(again, job) == {face_id}
    row = raw_job(again, job)
    assert row is not None and "matches" not in json.loads(str(row[1]))
    assert tables_naming(again, store_backend, "gone-face") == []
    assert _delete_faces(again, face_id).video_jobs_rewritten == 1
    assert tables_naming(again, store_backend, face_id) == []


# -- 2. finished jobs expire -------------------------------------------------------------------------


def test_a_finished_job_expires_after_the_retention_setting_and_the_sweep_deletes_it(
    videos: Videos, store_backend: StoreBackend
) -> None:
    service = videos.open(video_job_retention_days=7.0)
    face_id = enrol_person_1(service)
    job = search_job(service)
    jobs = jobs_of(service)
    videos.clock.now += 7 * DAY - 1
    assert jobs.get(job, "FaceSearch").status == "SUCCEEDED"
    assert service.sweep_retention().video_jobs == ()

    videos.clock.now += 1
    with pytest.raises(NotFoundError) as expired:
        jobs.get(job, "FaceSearch")
    with pytest.raises(NotFoundError) as unknown:
        jobs.get("0" * 32, "FaceSearch")
    assert str(expired.value) == str(unknown.value).replace("0" * 32, job)  # the same answer as an unknown job
    assert raw_job(service, job) is not None  # unreadable at once; deleted by the next sweep
    assert service.sweep_retention(dry_run=True).video_jobs == (job,)
    assert raw_job(service, job) is not None

    swept = service.sweep_retention()
    assert swept.video_jobs == (job,)
    assert raw_job(service, job) is None
    assert tables_naming(service, store_backend, job) == []
    assert tables_naming(service, store_backend, face_id) == ["faces"]  # the face itself is kept
    entries = [e.data for e in audit.entries(service.store.connection()) if e.data["operation"] == "SweepRetention"]
    assert [(e.get("dry_run", False), e["video_jobs_expired"]) for e in entries] == [(False, 0), (True, 1), (False, 1)]
    assert service.verify_audit_log().ok


def test_a_job_finished_by_a_clock_far_ahead_is_brought_back_by_the_sweep_and_then_expires(videos: Videos) -> None:
    service = videos.open(video_job_retention_days=7.0)
    enrol_person_1(service)
    now = videos.clock.now
    videos.clock.now = now + 300 * 365 * DAY  # a replica whose clock ran three centuries ahead runs the job
    job = search_job(service)
    videos.clock.now = now + DAY  # the clocks in step again
    jobs = jobs_of(service)

    dry = service.sweep_retention(dry_run=True)
    assert jobs.get(job, "FaceSearch").status == "SUCCEEDED"  # a dry run counts, and changes nothing
    swept = service.sweep_retention()

    assert (dry.video_jobs_capped, swept.video_jobs_capped, swept.video_jobs) == (1, 1, ())
    videos.clock.now += 7 * DAY - 1
    assert jobs.get(job, "FaceSearch").status == "SUCCEEDED"  # kept its retention, from the sweep on
    assert service.sweep_retention().video_jobs_capped == 0
    videos.clock.now += 1
    assert service.sweep_retention().video_jobs == (job,)
    entries = [e.data for e in audit.entries(service.store.connection()) if e.data["operation"] == "SweepRetention"]
    assert [e["video_jobs_capped"] for e in entries] == [1, 1, 0, 0]


def test_a_failed_job_expires_too_and_a_running_one_never(videos: Videos, tmp_path: Path) -> None:
    service = videos.open(video_job_retention_days=1.0)
    (videos.root / "lobby" / "notes.mp4").write_text("not a video")
    jobs = jobs_of(service)
    failed = jobs.start(VideoJobRequest("FaceDetection", "lobby", "notes.mp4"))
    assert jobs.wait(failed).status == "FAILED"
    waiting = VideoJobs(service, worker=False).start(VideoJobRequest("FaceDetection", "lobby", "story.mp4"))
    videos.clock.now += 100 * DAY

    assert service.sweep_retention().video_jobs == (failed,)
    assert raw_job(service, failed) is None
    assert raw_job(service, waiting) == ("IN_PROGRESS", None)
    assert jobs.get(waiting).status == "IN_PROGRESS"


def test_a_search_job_never_outlives_the_retention_of_its_collections_purpose(videos: Videos) -> None:
    service = videos.open(video_job_retention_days=7.0)
    service.create_collection("brief", purpose="brief")  # faces kept 1 day
    service.create_collection("staff")
    for name in ("brief", "staff"):
        service.index_faces(name, face_png(PERSON_1))
    short, long = search_job(service, "brief"), search_job(service, "staff")
    detection = jobs_of(service).start(VideoJobRequest("FaceDetection", "lobby", "story.mp4"))
    jobs_of(service).wait(detection)
    videos.clock.now += DAY

    with pytest.raises(NotFoundError):
        jobs_of(service).get(short, "FaceSearch")
    assert jobs_of(service).get(long, "FaceSearch").status == "SUCCEEDED"
    assert service.sweep_retention().video_jobs == (short,)
    videos.clock.now += 6 * DAY
    assert sorted(service.sweep_retention().video_jobs) == sorted((long, detection))


def test_the_leased_sweep_of_a_server_deletes_expired_jobs(videos: Videos) -> None:
    service = videos.open(video_job_retention_days=1.0)
    job = jobs_of(service).start(VideoJobRequest("FaceDetection", "lobby", "story.mp4"))
    jobs_of(service).wait(job)
    sweeper = LeasedSweeper(
        service, Actor("retention-sweeper", "admin"), interval_s=60, lease_s=30, holder="r1", clock=videos.clock
    )
    assert sweeper.tick() is None  # became the holder; sweeps an interval later
    videos.clock.now += DAY
    swept = sweeper.tick()
    assert swept is not None and swept.video_jobs == (job,)
    assert raw_job(service, job) is None


@pytest.mark.parametrize("days", [0, -1, 1096])
def test_the_job_retention_setting_refuses_what_is_not_a_retention(days: float) -> None:
    from facetrust.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="video_job_retention_days"):
        Settings(video_job_retention_days=days)


def test_a_key_may_have_at_most_twenty_jobs_queued_or_running_and_each_key_its_own(
    videos: Videos, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facetrust.errors import LimitExceededError
    from facetrust.service.video_jobs import MAX_JOBS_PER_KEY

    service = videos.open()
    jobs = jobs_of(service)
    monkeypatch.setattr(jobs, "_enqueue", lambda job_id: True)  # held in the queue: none finishes meanwhile
    flood, other = Actor("FTKFLOOD", "admin"), Actor("FTKOTHER", "admin")
    started = [
        jobs.start(VideoJobRequest("FaceDetection", "lobby", "story.mp4"), flood) for _ in range(MAX_JOBS_PER_KEY)
    ]
    with pytest.raises(LimitExceededError, match="20 video jobs queued or running"):
        jobs.start(VideoJobRequest("FaceDetection", "lobby", "story.mp4"), flood)
    assert jobs.start(VideoJobRequest("FaceDetection", "lobby", "story.mp4"), other) not in started
    refused = [e.data for e in audit.entries(service.store.connection()) if e.data["key_id"] == "FTKFLOOD"][-1]
    assert (refused["operation"], refused["outcome"]) == ("StartFaceDetection", "LimitExceeded")


def test_a_finished_jobs_result_is_parsed_once_for_all_its_pages_and_its_matches_read_each_time(
    videos: Videos, monkeypatch: pytest.MonkeyPatch
) -> None:
    import facetrust.service.video_jobs as module

    service = videos.open()
    face_id = enrol_person_1(service)
    job = search_job(service)
    parsed: list[object] = []
    real = module.parse_result
    monkeypatch.setattr(module, "parse_result", lambda result: parsed.append(1) or real(result))
    jobs = jobs_of(service)
    first, second = jobs.get(job, "FaceSearch"), jobs.get(job, "FaceSearch")
    assert first.faces == second.faces and len(parsed) <= 1
    assert face_id in matched(service, job)
    service.delete_faces("staff", [face_id])
    assert face_id not in matched(service, job)  # the kept result holds no match: those are read each time
    assert len(parsed) <= 1


# -- 4. a store connection lost while a job runs ---------------------------------------------------


def test_a_job_whose_store_connection_is_lost_fails_saying_so_without_naming_the_store(
    tmp_path: Path, story_clip: Path, pg_url: str
) -> None:
    """The job's search waits to append its audit entry while PostgreSQL ends its backend: the job
    FAILED says the store's connection was lost and to start it again; where the database is stays
    in the server's log (its status message is shown to the API's clients)."""
    import threading
    import uuid

    import psycopg

    from facetrust.service.video_job_run import run_job

    root = tmp_path / "videos"
    (root / "lobby").mkdir(parents=True)
    os.link(story_clip, root / "lobby" / "story.mp4")
    name = f"facetrust-job-{uuid.uuid4().hex[:8]}"
    engine = fake_engine(Settings(flip_augment=False, video_root=root, video_sample_fps=5.0))
    with FaceService(tmp_path / "data", engine, policy=POLICY, store=f"{pg_url}&application_name={name}") as service:
        enrol_person_1(service)
        jobs = VideoJobs(service, worker=False)
        job = jobs.start(VideoJobRequest("FaceSearch", "lobby", "story.mp4", "staff"))
        admin = psycopg.connect(pg_url, autocommit=True)

        def end_the_waiting_backend() -> None:
            deadline = time.monotonic() + 60  # the job's connection waits on the lock long before
            while (
                row := admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'", (name,)
                ).fetchone()
            ) is None:
                if time.monotonic() > deadline:
                    admin.execute("ROLLBACK")
                    return
                time.sleep(0.05)
            admin.execute("SELECT pg_terminate_backend(%s, 10000)", (row[0],))
            admin.execute("ROLLBACK")

        ender = threading.Thread(target=end_the_waiting_backend)

        def progress(done_ms: int, total_ms: int) -> None:
            if ender.ident is None:  # once, while the video is read: the job's audit entry waits for it
                admin.execute("BEGIN")
                admin.execute("LOCK TABLE audit_log IN EXCLUSIVE MODE")
                ender.start()

        run_job(service.ctx, job, progress)
        ender.join()
        admin.close()

        failed = jobs.get(job, "FaceSearch")
        assert failed.status == "FAILED"
        assert failed.status_message is not None
        assert "postgresql://" not in failed.status_message
        assert "connection to its database was lost" in failed.status_message
        assert "start the job again" in failed.status_message
        conn = service.store.connection()
        assert [e for e in audit.entries(conn) if e.data["operation"] == "FaceSearchJob"] == []  # rolled back
        assert audit.verify_chain(conn, anchors=service.store.heads.heads()).ok


def test_a_job_stopped_by_a_store_locked_too_long_fails_saying_so_without_naming_the_store(
    videos: Videos, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's path is in StoreBusyError's message and the server's log, not in the status
    message the job's clients read."""
    from facetrust.errors import StoreBusyError
    from facetrust.service import video_job_run
    from facetrust.store.busy import store_busy

    service = videos.open()
    enrol_person_1(service)
    where = f"Store {videos.data / 'facetrust.db'}"

    def locked(*args: object) -> None:
        with store_busy(where):
            raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(video_job_run, "execute", locked)
    jobs = jobs_of(service)
    job = jobs.start(VideoJobRequest("FaceSearch", "lobby", "story.mp4", "staff"))
    failed = jobs.wait(job)

    assert failed.status == "FAILED"
    assert failed.status_message == (
        "The server's store was locked by another process for longer than 30 s while the job ran, "
        "so the job was not completed; start the job again"
    )
    with pytest.raises(StoreBusyError, match=str(videos.data)):
        locked()
