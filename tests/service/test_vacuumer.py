"""A server's scheduled vacuum (``LeasedVacuumer``): after an erasure, and only then, the replica
holding the vacuum lease reclaims the erased rows' storage, at most once per interval (the first
an interval after a server first found an erasure), and the audit log records it as it records
``facetrust store vacuum``. Runs on the test store (SQLite, or
PostgreSQL with FACETRUST_TEST_STORE=postgresql)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facetrust.errors import StoreBusyError
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.service.vacuumer import LEASE, LeasedVacuumer, vacuum_store
from facetrust.store import leases

VACUUMER = Actor("store-vacuumer", "admin")
DAY = 86400.0


@pytest.fixture
def service(tmp_path: Path) -> Iterator[FaceService]:
    with FaceService(tmp_path / "data", fake_engine()) as svc:
        svc.create_collection("c")
        for pattern in range(3):
            svc.index_faces("c", face_png((20, 20, 100, pattern)), external_image_id=f"p{pattern}")
        yield svc


def _vacuumer(service: FaceService, now: list[float], holder: str | None = None) -> LeasedVacuumer:
    return LeasedVacuumer(
        service.store, VACUUMER, interval_s=DAY, lease_s=30, holder=holder or service.holder, clock=lambda: now[0]
    )


def _vacuums(service: FaceService) -> list[dict[str, Any]]:
    return [e.data for e in audit.entries(service.store.connection()) if e.data["operation"] == "VacuumStore"]


def test_given_no_erasure_then_the_vacuumer_never_vacuums(service: FaceService) -> None:
    now = [1000.0]
    vacuumer = _vacuumer(service, now)
    for _ in range(3):
        assert vacuumer.tick() is None
        now[0] += 2 * DAY
    assert _vacuums(service) == []


def _erase_and_start(service: FaceService, vacuumer: LeasedVacuumer, now: list[float]) -> None:
    """Erase a face, let the vacuumer start its schedule (a store never vacuumed), and let an interval pass."""
    service.erase_external_image_id("c", "p0")
    assert vacuumer.tick() is None  # a server does not vacuum as it starts
    now[0] += DAY


def test_given_an_erasure_then_the_vacuumer_vacuums_within_the_interval_and_the_audit_log_records_it(
    service: FaceService,
) -> None:
    now = [1000.0]
    vacuumer = _vacuumer(service, now)
    assert vacuumer.tick() is None
    service.erase_external_image_id("c", "p0")
    assert vacuumer.tick() is None  # the first erasure a server finds starts the schedule
    now[0] += DAY - 1
    assert vacuumer.tick() is None
    now[0] += 1

    done = vacuumer.tick()

    assert done is not None and done.startswith("VACUUM")
    (entry,) = _vacuums(service)
    assert (entry["key_id"], entry["outcome"], entry["vacuumed"]) == ("store-vacuumer", "ok", done)
    assert vacuumer.tick() is None  # nothing erased since


def test_given_a_vacuum_then_the_next_erasure_waits_for_the_interval(service: FaceService) -> None:
    now = [1000.0]
    vacuumer = _vacuumer(service, now)
    _erase_and_start(service, vacuumer, now)
    assert vacuumer.tick() is not None

    service.erase_external_image_id("c", "p1")
    ticks = []
    for _ in range(25):  # a day and an hour, in hours
        now[0] += 3600
        ticks.append(vacuumer.tick() is not None)

    assert ticks == [False] * 23 + [True, False]  # once a day at most, and within a day of the erasure
    assert len(_vacuums(service)) == 2


def test_a_store_vacuum_run_by_hand_counts_as_the_last_vacuum(service: FaceService) -> None:
    now = [1000.0]
    service.erase_external_image_id("c", "p0")
    vacuum_store(service.store, Actor("operator", "admin"), at=now[0])
    vacuumer = _vacuumer(service, now)  # a server started later: the schedule is the store's
    now[0] += 2 * DAY
    assert vacuumer.tick() is None  # what the vacuum covered is not vacuumed again

    service.erase_external_image_id("c", "p1")
    assert vacuumer.tick() is not None  # the last vacuum is two days old: at once


def test_while_another_replica_holds_the_vacuum_lease_this_one_does_not_vacuum_until_it_expires(
    service: FaceService,
) -> None:
    now = [1000.0]
    vacuumer = _vacuumer(service, now)
    _erase_and_start(service, vacuumer, now)
    assert leases.acquire(service.store, LEASE, "other-replica", ttl_s=30, now=now[0])

    assert vacuumer.tick() is None
    now[0] += 31  # the other replica died: its lease expired
    assert vacuumer.tick() is not None
    assert leases.holder(service.store, LEASE) is not None
    vacuumer.stop()
    assert leases.holder(service.store, LEASE) is None


def test_two_vacuumers_over_one_store_vacuum_once(service: FaceService) -> None:
    now = [1000.0]
    first, second = _vacuumer(service, now, "replica-a"), _vacuumer(service, now, "replica-b")
    _erase_and_start(service, first, now)

    assert [first.tick() is not None, second.tick() is not None] == [True, False]
    now[0] += DAY
    service.erase_external_image_id("c", "p1")
    assert [second.tick() is not None, first.tick() is not None] == [True, False]
    assert len(_vacuums(service)) == 2


def test_a_vacuum_that_finds_the_store_busy_runs_at_the_next_tick(
    service: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    vacuumer = _vacuumer(service, now)
    _erase_and_start(service, vacuumer, now)
    real = service.store.vacuum

    def busy() -> str:
        raise StoreBusyError("the store is locked by another process", where="here", waited_s=30.0)

    monkeypatch.setattr(service.store, "vacuum", busy)
    assert vacuumer.tick() is None  # no error escapes: the server goes on
    monkeypatch.setattr(service.store, "vacuum", real)
    now[0] += 5
    assert vacuumer.tick() is not None
    assert len(_vacuums(service)) == 1


def test_a_failed_vacuum_is_logged_without_stopping_and_retried_later(
    service: FaceService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    vacuumer = _vacuumer(service, now)
    _erase_and_start(service, vacuumer, now)
    real = service.store.vacuum

    def broken() -> str:
        raise OSError("disk full")

    monkeypatch.setattr(service.store, "vacuum", broken)
    assert vacuumer.tick() is None
    assert "disk full" in caplog.text
    monkeypatch.setattr(service.store, "vacuum", real)
    now[0] += 5
    assert vacuumer.tick() is None  # not at every tick: each attempt is an audit entry
    now[0] += 600
    assert vacuumer.tick() is not None


def _vacuumed_then(service: FaceService, now: list[float]) -> LeasedVacuumer:
    """A vacuumer whose store was vacuumed two days ago and nothing erased since."""
    service.erase_external_image_id("c", "p0")
    vacuum_store(service.store, Actor("operator", "admin"), at=now[0] - 2 * DAY)
    vacuumer = _vacuumer(service, now)
    assert vacuumer.tick() is None
    return vacuumer


def test_a_deleted_user_is_due_for_a_vacuum_as_an_erased_face_is(service: FaceService) -> None:
    now = [10 * DAY]
    service.create_user("c", "alice")
    vacuumer = _vacuumed_then(service, now)

    service.delete_user("c", "alice")

    assert vacuumer.tick() is not None  # a UserId names a person: its bytes are reclaimed too


def test_expired_video_jobs_deleted_by_the_sweep_are_due_for_a_vacuum(service: FaceService) -> None:
    import json

    from facetrust.store import video_jobs

    now = [10 * DAY]
    job = video_jobs.NewJob("job-1", "FaceSearch", None, "hash", "local", json.dumps({"collection": "c"}), "{}")
    outcome = video_jobs.JobOutcome("SUCCEEDED", None, None, json.dumps({"faces": []}))
    with service.store.transaction() as conn:
        video_jobs.insert(conn, job, 0.0)
        video_jobs.finish(conn, "job-1", outcome, 0.0, [])
    vacuumer = _vacuumed_then(service, now)

    with service.store.transaction() as conn:
        assert video_jobs.delete(conn, ["job-1"]) == 1  # as the retention sweep deletes expired jobs

    assert vacuumer.tick() is not None  # their results name faces and people
