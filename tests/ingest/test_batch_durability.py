"""Batched ``ingest()``: an image is reported only after its transaction commits, so kill -9 loses
no reported face, leaves no half image, and a rerun indexes exactly the images not yet stored."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from facetrust.ingest.run import IngestOptions, ingest
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from pg_cluster import StoreBackend

CHILD = Path(__file__).resolve().parent / "batch_child.py"
IMAGES = 300


def _album(folder: Path) -> None:
    folder.mkdir()
    for i in range(IMAGES):  # two faces an image, so a half-written image would show
        (folder / f"img{i:03d}.png").write_bytes(face_png((10, 10, 90, 2 * i), (150, 10, 90, 2 * i + 1)))


def _run_child_and_kill(data: Path, album: Path, wanted: int, delay: float, store: str | None) -> list[list[str]]:
    store_arg = [] if store is None else [store]
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(data), str(album), *store_arg], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    reported: list[list[str]] = []
    deadline = time.monotonic() + 120
    while len(reported) < wanted and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line or line.strip() == "done":
            break
        reported.append(line.split())
    time.sleep(delay)  # kill at an arbitrary point of a later batch
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    reported += [line.split() for line in proc.stdout.read().splitlines() if line.strip() and line != "done"]
    proc.stdout.close()
    assert len(reported) >= wanted, "the child process stopped early"
    return reported


def _stored_by_image(service: FaceService) -> dict[str, list[str]]:
    by_image: dict[str, list[str]] = {}
    token = None
    while True:
        page = service.list_faces("c", max_results=500, next_token=token)
        for face in page.faces:
            by_image.setdefault(face.image_id, []).append(face.face_id)
        token = page.next_token
        if token is None:
            return by_image


def test_kill_9_during_a_batched_index_loses_no_reported_face_and_a_rerun_completes_it(
    tmp_path: Path, store_backend: StoreBackend
) -> None:
    data, album = tmp_path / "data", tmp_path / "album"
    _album(album)
    rng = random.Random(12)
    reported: list[list[str]] = []
    for round_ in range(2):  # kill, restart (resuming), kill again
        reported += _run_child_and_kill(
            data, album, 12 + 10 * round_, rng.uniform(0.0, 0.05), store_backend.url_for(data)
        )
        with FaceService(data, fake_engine(), store=store_backend.url_for(data)) as service:
            by_image = _stored_by_image(service)
            assert all(len(ids) == 2 for ids in by_image.values())  # all of an image or none of it
            for image_id, *face_ids in reported:  # every reported face is stored
                assert sorted(by_image[image_id]) == sorted(face_ids)
    with FaceService(data, fake_engine(), store=store_backend.url_for(data)) as service:
        stored = len(_stored_by_image(service))
        paths = sorted(str(p) for p in album.iterdir())
        outcomes = ingest(service, "c", paths, IngestOptions(batch=7))
        assert sum(o.skipped for o in outcomes) == stored  # the rerun skips exactly the stored images
        assert sum(o.result is not None for o in outcomes) == IMAGES - stored
        by_image = _stored_by_image(service)
        assert len(by_image) == IMAGES and all(len(ids) == 2 for ids in by_image.values())
        row = service.store.get_collection("c")
        assert row is not None
        index = service.indexes.get(row).ensure()
        assert sorted(int(k) for k in index.keys()) == sorted(service.store.face_keys(row.id))
