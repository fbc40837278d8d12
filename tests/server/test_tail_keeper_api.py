"""A running server (its lifespan's background step) keeps the per-face statistics of an 'accurate'
collection current, beside the default profile it runs: the real fused engine, through boto3."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.server import create_app
from facetrust.service import FaceService
from facetrust.store import tailstats

from .live import rekognition, serving


def photo(lfw: Path, name: str, number: int) -> bytes:
    return (lfw / "images" / name / f"{name}_{number:04d}.jpg").read_bytes()


def _current(service: FaceService, collection: str) -> tuple[set[int], set[int]]:
    """The keys of the collection's faces, and of those whose statistics are current."""
    row = service.store.get_collection(collection)
    assert row is not None
    keys = {f.key for f in service.store.list_faces(row.id, after_key=0, limit=100)}
    with service.store.snapshot() as conn:
        return keys, set(tailstats.read(conn, sorted(keys)))


def _eventually(done: Callable[[], bool], within_s: float = 60.0) -> bool:
    deadline = time.monotonic() + within_s
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.model
@pytest.mark.data
def test_a_default_server_computes_an_accurate_collections_statistics_in_the_background_and_after_a_deletion(
    engine: FaceEngine, accurate: FaceEngine, lfw: Path, tmp_path: Path
) -> None:
    people = ("Aaron_Peirsol", "Aaron_Eckhart", "Aaron_Sorkin")
    with FaceService(tmp_path, engine) as service:  # face_tail_stats: background, the default
        app = create_app(service, authenticator=None, settings=Settings(lease_seconds=1))  # a step every 1/3 s
        with serving(app, lifespan="on") as url:
            client = rekognition(url)
            try:
                client.create_collection(CollectionId="people", Tags={"facetrust:profile": "accurate"})
                ids = [
                    client.index_faces(CollectionId="people", Image={"Bytes": photo(lfw, name, 1)})["FaceRecords"][0][
                        "Face"
                    ]["FaceId"]
                    for name in people
                ]
                computed = _eventually(lambda: len(_current(service, "people")[1]) == len(people))
                client.delete_faces(CollectionId="people", FaceIds=[ids[0]])
                recomputed = _eventually(lambda: _current(service, "people")[0] == _current(service, "people")[1])
            finally:
                client.close()
        row = service.store.get_collection("people")
        assert row is not None
        with service.store.snapshot() as conn:
            tails = tailstats.read(conn, [f.key for f in service.store.list_faces(row.id, after_key=0, limit=10)])

    assert row.model == accurate.model_id
    assert computed, "the background step never computed the accurate collection's statistics"
    assert recomputed, "the holders of the deleted face were never recomputed"
    assert len(tails) == 2 and all(len(t.neighbours) == 1 for t in tails.values())
