"""Several ``facetrust serve`` processes over one store: one truth, whichever replica answers."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from facetrust.cli.app import cli
from facetrust.governance.audit import HeadFile, verify_anchored
from facetrust.governance.policy import load_policy
from facetrust.models.fake import face_png, fake_engine
from facetrust.server.keys import KeyStore
from facetrust.service import FaceService
from facetrust.service.sweeper import LEASE
from facetrust.store import leases, tailstats
from facetrust.store.sqlite import HEADS_NAME
from facetrust.video.synth import story_scene, write_clip

from .conftest import Replica, SharedStore, rekognition


def _index(replica: Replica, pattern: int, external: str, left: int = 40) -> str:
    out = replica.client.index_faces(
        CollectionId="c", Image={"Bytes": face_png((left, 40, 80, pattern))}, ExternalImageId=external
    )
    return str(out["FaceRecords"][0]["Face"]["FaceId"])


def _matches(replica: Replica, face_id: str) -> list[str]:
    out = replica.client.search_faces(CollectionId="c", FaceId=face_id)
    return [m["Face"]["FaceId"] for m in out["FaceMatches"]]


def test_a_face_indexed_on_one_replica_is_found_and_erased_through_the_other(replicas: Any) -> None:
    a, b = replicas("a"), replicas("b")
    health = [json.load(urllib.request.urlopen(f"{r.url}/health", timeout=10)) for r in (a, b)]
    assert [h["replica"] for h in health] == ["a", "b"] and health[0]["policy"] == health[1]["policy"]
    a.client.create_collection(CollectionId="c")
    ann = _index(a, 1, "ann")
    b.client.search_faces(CollectionId="c", FaceId=ann)  # b loads its index now; the next face must reach it
    ann_again = _index(a, 1, "ann-again", left=150)

    assert _matches(b, ann) == [ann_again]  # at b's next search, no wait

    b.client.delete_faces(CollectionId="c", FaceIds=[ann_again])
    assert _matches(a, ann) == []
    assert _matches(b, ann) == []
    with pytest.raises(ClientError):
        a.client.search_faces(CollectionId="c", FaceId=ann_again)


def test_each_replica_keeps_its_index_snapshots_in_its_own_folder(store: SharedStore, replicas: Any) -> None:
    a, b = replicas("a"), replicas("b")
    a.client.create_collection(CollectionId="c")
    ann = _index(a, 1, "ann")
    _index(b, 1, "ann-again", left=150)
    assert len(_matches(a, ann)) == len(_matches(b, ann)) == 1
    a.stop()
    b.stop()  # a clean stop saves each replica's snapshot

    for name in "ab":  # on PostgreSQL each replica's data directory is its own; on SQLite they are one
        index = store.data_dir(name) / "index"
        assert sorted(p.name for p in (index / f"replica-{name}").glob("collection-*.json")) == ["collection-1.json"]
        assert not list(index.glob("collection-*"))  # nobody wrote the default folder


def test_a_key_created_or_revoked_anywhere_holds_on_every_replica_at_once(store: SharedStore, replicas: Any) -> None:
    a, b = replicas("a"), replicas("b")
    with KeyStore.open(store.data_dir("keys"), store=store.url) as keys:
        key_id, secret = keys.create("admin", "made while both replicas run")
        on_a, on_b = rekognition(a.url, key_id, secret), rekognition(b.url, key_id, secret)
        on_a.create_collection(CollectionId="k")
        assert on_b.list_collections()["CollectionIds"] == ["k"]

        keys.revoke(key_id)
        for client in (on_a, on_b):
            with pytest.raises(ClientError) as refused:
                client.list_collections()
            assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"  # revoked


def _traffic(replica: Replica, worker: int, rounds: int, acked: list[str], errors: list[BaseException]) -> None:
    for i in range(rounds):
        try:
            face = _index(replica, 10 + worker, f"w{worker}-{i}", left=20 + (i % 5) * 60)
            acked.append(face)
            replica.client.search_faces(CollectionId="c", FaceId=face)
        except BaseException as exc:
            errors.append(exc)
            return


def test_the_audit_chain_verifies_after_concurrent_traffic_on_both_replicas(store: SharedStore, replicas: Any) -> None:
    a, b = replicas("a"), replicas("b")
    a.client.create_collection(CollectionId="c")
    acked: list[str] = []
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_traffic, args=(replica, n, 15, acked, errors))
        for n, replica in enumerate((a, b, a, b))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    a.stop()
    b.stop()

    anchored = 0
    for name in "ab":  # SQLite: both anchor into the one head file; PostgreSQL: each into its own
        heads = HeadFile(store.data_dir(name) / HEADS_NAME)
        db = store.open_store()
        try:
            report = verify_anchored(db.connection(), heads)
        finally:
            db.close()
        assert report.ok, report.problem
        assert report.entries >= 2 * 60  # an IndexFaces and a SearchFaces entry per round, one chain
        anchored = max([anchored, *(h.seq for h in heads.heads())])
    assert anchored == report.head.seq  # the last entry is anchored by the replica that wrote it
    for name in "ab":  # `facetrust audit-log verify` beside either replica: the chain and that replica's heads
        verified = CliRunner().invoke(cli, [*store.cli(name), "audit-log", "verify"], obj={"engine": fake_engine()})
        assert verified.exit_code == 0, verified.output


def test_kill_9_of_a_replica_during_ingestion_loses_no_acknowledged_face(replicas: Any) -> None:
    a, b = replicas("a"), replicas("b")
    a.client.create_collection(CollectionId="c")
    acked: list[str] = []
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_traffic, args=(a, n, 400, acked, errors)) for n in range(2)]
    threads.append(threading.Thread(target=_traffic, args=(b, 2, 20, acked, errors)))
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while len(acked) < 25 and not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(acked) >= 25, errors
    a.kill()
    for t in threads:
        t.join()
    assert any(isinstance(e, Exception) for e in errors)  # a's clients saw it die mid-traffic

    stored: set[str] = set()
    token: dict[str, str] = {}
    while True:
        page = b.client.list_faces(CollectionId="c", MaxResults=1000, **token)
        stored |= {f["FaceId"] for f in page["Faces"]}
        if "NextToken" not in page:
            break
        token = {"NextToken": page["NextToken"]}
    assert set(acked) <= stored
    for face in acked[::7]:  # the survivor serves them: each is searchable there
        assert b.client.search_faces(CollectionId="c", FaceId=face)["SearchedFaceId"] == face


def test_the_retention_sweep_runs_on_one_replica_and_moves_when_it_dies(store: SharedStore, replicas: Any) -> None:
    quick = {"retention_sweep_seconds": 1, "lease_seconds": 2}  # 1 s: the shortest interval allowed
    a, b = replicas("a", **quick), replicas("b", **quick)
    first = _holder(store, within=10)
    before = len(_sweeps(store))
    time.sleep(6)
    assert 2 <= len(_sweeps(store)) - before <= 9  # one replica sweeping every second (two would make ~12)
    assert _holder(store, within=0) == first

    (a if first.startswith("a@") else b).kill()
    deadline = time.monotonic() + 15
    while _holder(store, within=0) == first and time.monotonic() < deadline:
        time.sleep(0.2)
    second = _holder(store, within=0)
    assert second != first and second[0] in "ab" and second[0] != first[0]
    after = len(_sweeps(store))
    time.sleep(3)
    assert len(_sweeps(store)) > after  # the survivor sweeps now


def _holder(store: SharedStore, within: float) -> str:
    deadline = time.monotonic() + within
    while True:
        db = store.open_store()
        try:
            found = leases.holder(db, LEASE)
        finally:
            db.close()
        if found is not None or time.monotonic() >= deadline:
            assert found is not None, "nobody took the sweep lease"
            return found.holder
        time.sleep(0.1)


def _sweeps(store: SharedStore) -> list[int]:
    db = store.open_store()
    try:
        from facetrust.governance.audit import entries

        return [e.seq for e in entries(db.connection()) if e.data.get("operation") == "SweepRetention"]
    finally:
        db.close()


def test_a_video_job_started_on_a_replica_that_dies_is_finished_by_another_and_read_there(
    store: SharedStore, replicas: Any, tmp_path: Path
) -> None:
    root = tmp_path / "videos"
    (root / "lobby").mkdir(parents=True)
    write_clip(root / "lobby" / "story.mp4", dataclasses.replace(story_scene(), seconds=30.0), crf=1)  # long enough
    quick = {"video_root": root, "lease_seconds": 2, "video_sample_fps": 5}
    a, b = replicas("a", **quick), replicas("b", **quick)
    video = {"S3Object": {"Bucket": "lobby", "Name": "story.mp4"}}
    job = a.client.start_face_detection(Video=video, ClientRequestToken="story")["JobId"]
    a.kill()
    assert _job_status(store, job) == "IN_PROGRESS"  # a died before finishing it
    assert b.client.start_face_detection(Video=video, ClientRequestToken="story")["JobId"] == job  # one job

    deadline = time.monotonic() + 60
    answer = b.client.get_face_detection(JobId=job)
    while answer["JobStatus"] == "IN_PROGRESS" and time.monotonic() < deadline:
        time.sleep(0.3)
        answer = b.client.get_face_detection(JobId=job)
    assert answer["JobStatus"] == "SUCCEEDED"
    assert len(answer["Faces"]) > 0


def _job_status(store: SharedStore, job: str) -> str:
    db = store.open_store()
    try:
        return str(db.connection().execute("SELECT status FROM video_jobs WHERE job_id = ?", (job,)).fetchone()[0])
    finally:
        db.close()


CONSENTED = """
default_purpose = "access"

[purposes.access]
consent_required = true
"""


def test_a_consent_recorded_or_revoked_anywhere_holds_on_every_replica(
    store: SharedStore, replicas: Any, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(CONSENTED)
    a, b = replicas("a", policy_file=policy_file), replicas("b", policy_file=policy_file)
    a.client.create_collection(CollectionId="c")
    with pytest.raises(ClientError):
        _index(b, 1, "ann")  # no consent recorded yet

    policy = load_policy(policy_file)
    with FaceService(store.data_dir("lib"), fake_engine(), policy=policy, store=store.url) as library:
        library.record_consent("ann", basis="contract", evidence=b"signed release")
        ann = _index(b, 1, "ann")  # recorded through the library: b sees it at once
        ann_again = _index(a, 1, "ann", left=150)
        assert _matches(a, ann) == [ann_again]

        receipt = library.revoke_consent("ann")

    assert sorted(receipt.face_ids) == sorted([ann, ann_again])
    assert b.client.list_faces(CollectionId="c")["Faces"] == []
    with pytest.raises(ClientError):
        a.client.search_faces(CollectionId="c", FaceId=ann)
    with pytest.raises(ClientError):
        _index(a, 1, "ann")  # revoked: refused again, on every replica


def _tails(store: SharedStore) -> tuple[dict[int, list[int]], int, list[int]]:
    """Each current face's neighbour keys (its stored top K), how many faces still lack statistics,
    and every stored face's key."""
    db = store.open_store()
    try:
        row = db.get_collection("c")
        assert row is not None
        keys = db.face_keys(row.id)
        with db.snapshot() as conn:
            rows = tailstats.read(conn, keys)
            missing = tailstats.count_missing(conn, row.id)
        return {k: sorted(t.neighbours.tolist()) for k, t in rows.items()}, missing, keys
    finally:
        db.close()


def _settled(store: SharedStore, faces: int, within: float) -> dict[int, list[int]]:
    """The statistics once every one of ``faces`` faces holds all the others (asserted within ``within`` s)."""
    deadline = time.monotonic() + within
    while True:
        rows, missing, _ = _tails(store)
        complete = len(rows) == faces and all(sorted([k, *n]) == sorted(rows) for k, n in rows.items())
        if (missing == 0 and complete) or time.monotonic() >= deadline:
            assert missing == 0 and complete, (missing, rows)
            return rows
        time.sleep(0.2)


def test_faces_indexed_through_a_server_get_their_statistics_in_the_background_and_deletions_are_recomputed(
    store: SharedStore, replicas: Any
) -> None:
    quick = {"lease_seconds": 1.5, "face_tail_stats": "background"}  # a background step every 0.5 s
    a, b = replicas("a", **quick), replicas("b", **quick)
    a.client.create_collection(CollectionId="c")
    ids = [_index(a if i % 2 else b, i, f"p{i}", left=40 + 20 * i) for i in range(1, 7)]
    rows = _settled(store, faces=6, within=20)  # no catch-up run by hand

    a.client.delete_faces(CollectionId="c", FaceIds=[ids[2]])
    gone = set(rows) - set(_tails(store)[2])
    assert len(gone) == 1
    after = _settled(store, faces=5, within=20)  # the holders, recomputed without the deleted face
    assert all(not gone & set(n) for n in after.values())
    db = store.open_store()
    try:
        found = leases.holder(db, "face-tail-stats")
    finally:
        db.close()
    assert found is not None and found.holder[0] in "ab"
