"""What `facetrust erase` and `facetrust retention sweep` say about stored video job results.

The jobs are written to the store as a finished StartFaceSearch job writes them
(store/video_jobs.py), so no video needs decoding here; tests/service/test_video_jobs.py runs
real jobs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.store import video_jobs as jobs_table

from .governance_cli import DAY, GovernedCli, governed_cli


@pytest.fixture
def gc(tmp_path: Path) -> Iterator[GovernedCli]:
    with governed_cli(tmp_path) as helper:
        yield helper


def finished_search(gc: GovernedCli, job_id: str, face_id: str) -> None:
    """A SUCCEEDED FaceSearch job on collection ``doors`` whose person 0 matched ``face_id``."""
    request = json.dumps({"kind": "FaceSearch", "collection": "doors"})
    job = jobs_table.NewJob(job_id, "FaceSearch", None, "hash-" + job_id, "local", request, "{}")
    match = jobs_table.JobMatch(0, 0, face_id, json.dumps({"face": {"face_id": face_id}, "similarity": 99.0}))
    outcome = jobs_table.JobOutcome("SUCCEEDED", None, None, json.dumps({"faces": []}))
    with gc.service.store.transaction() as conn:
        jobs_table.insert(conn, job, gc.clock.now)
        jobs_table.finish(conn, job_id, outcome, gc.clock.now, [match])


def test_an_erasure_receipt_counts_the_job_results_it_rewrote_and_verifies(gc: GovernedCli, tmp_path: Path) -> None:
    gc.run("collections", "create", "doors")
    face_id = gc.index("doors", "erin")
    finished_search(gc, "job-1", face_id)
    finished_search(gc, "job-2", face_id)
    out = tmp_path / "receipt.json"

    result = gc.run("erase", "--subject", "erin", "--receipt-out", str(out))

    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == "video job results rewritten  2"
    assert gc.read_json(out)["video_jobs_rewritten"] == 2
    assert gc.run("erase", "verify", str(out)).exit_code == 0
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(gc.read_json(out) | {"video_jobs_rewritten": 0}))
    assert gc.run("erase", "verify", str(forged)).exit_code == 1  # the count is what the audit entry records


def test_a_receipt_whose_job_count_is_not_a_count_is_refused(gc: GovernedCli, tmp_path: Path) -> None:
    gc.run("collections", "create", "doors")
    gc.index("doors", "erin")
    out = tmp_path / "receipt.json"
    gc.run("erase", "--subject", "erin", "--receipt-out", str(out))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(gc.read_json(out) | {"video_jobs_rewritten": "two"}))

    result = gc.run("erase", "verify", str(bad))

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Receipt {bad} is not an erasure receipt: video_jobs_rewritten must be a count (0 or more)\n"
    )


def test_the_sweep_lists_and_deletes_the_video_jobs_past_their_retention(gc: GovernedCli) -> None:
    gc.run("collections", "create", "doors")
    face_id = gc.index("doors", "erin")
    finished_search(gc, "job-1", face_id)
    gc.clock.now += 7 * DAY

    dry = gc.run("retention", "sweep", "--dry-run")
    dry_json = json.loads(gc.run("retention", "sweep", "--dry-run", "--json").stdout)
    done = gc.run("retention", "sweep")

    assert dry.stdout == (
        "0 faces past their retention period (dry run: nothing erased)\n"
        "1 video job past their retention period (dry run: nothing deleted)\n"
    )
    assert dry_json["video_jobs"] == ["job-1"]
    assert done.stdout.splitlines()[:2] == [
        "Erased 0 faces past their retention period",
        "Deleted 1 video job past their retention period, with their results",
    ]
    with gc.service.store.snapshot() as conn:
        assert jobs_table.load(conn, "job-1") is None and jobs_table.matches(conn, "job-1") == []


def test_a_job_finished_twice_keeps_its_first_end(gc: GovernedCli) -> None:
    gc.run("collections", "create", "doors")
    face_id = gc.index("doors", "erin")
    finished_search(gc, "job-1", face_id)  # one replica's run finished it
    late = jobs_table.JobOutcome("FAILED", "a run that lost its lease", None, None)
    match = jobs_table.JobMatch(0, 0, face_id, json.dumps({"face": {"face_id": face_id}, "similarity": 99.0}))
    with gc.service.store.transaction() as conn:  # another's, which lost its lease, ends after it
        assert not jobs_table.finish(conn, "job-1", late, gc.clock.now, [match])
    conn = gc.service.store.connection()
    assert conn.execute("SELECT status FROM video_jobs WHERE job_id = 'job-1'").fetchone()[0] == "SUCCEEDED"
    assert conn.execute("SELECT count(*) FROM video_job_matches WHERE job_id = 'job-1'").fetchone()[0] == 1
