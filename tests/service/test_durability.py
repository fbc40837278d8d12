"""What returned success survives kill -9; nothing half-written; index and database agree."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.store.sqlite import vector_from_blob
from pg_cluster import StoreBackend

CHILD = Path(__file__).resolve().parent / "ingest_child.py"


def _kill_child_after(data: Path, lines_wanted: int, extra_delay: float, store: str | None) -> list[list[str]]:
    store_arg = [] if store is None else [store]
    proc = subprocess.Popen([sys.executable, str(CHILD), str(data), *store_arg], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    committed = []
    deadline = time.monotonic() + 120
    while len(committed) < lines_wanted and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        committed.append(line.split())
    time.sleep(extra_delay)  # kill at an arbitrary point of a later IndexFaces call
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    committed += [line.split() for line in proc.stdout.read().splitlines() if line.strip()]
    proc.stdout.close()
    assert len(committed) >= lines_wanted, "the child process stopped early"
    return committed


def _check_consistent(data: Path, committed: list[list[str]]) -> None:
    with FaceService(data, fake_engine()) as service:
        row = service.store.get_collection("c")
        assert row is not None
        faces = []
        token = None
        while True:
            page = service.list_faces("c", max_results=500, next_token=token)
            faces += page.faces
            token = page.next_token
            if token is None:
                break
        by_image: dict[str, list[str]] = {}
        for f in faces:
            by_image.setdefault(f.image_id, []).append(f.face_id)
        # every IndexFaces call is all-or-nothing: 3 faces per image, never fewer
        assert all(len(v) == 3 for v in by_image.values())
        # everything that was reported committed is there
        for image_id, *face_ids in committed:
            assert sorted(by_image[image_id]) == sorted(face_ids)
        # every stored face has a whole embedding, and the index holds exactly the stored faces
        keys = service.store.face_keys(row.id)
        blobs = dict(service.store.embeddings(row.id))
        assert sorted(blobs) == sorted(keys)
        for blob in blobs.values():
            assert np.isfinite(vector_from_blob(blob, service.engine.recogniser.dim)).all()
        index = service.indexes.get(row).ensure()
        assert sorted(int(k) for k in index.keys()) == sorted(keys)


def test_kill_9_during_ingestion_loses_no_committed_face_and_leaves_no_half_image(
    tmp_path: Path, store_backend: StoreBackend
) -> None:
    data = tmp_path / "data"
    rng = random.Random(7)
    total: list[list[str]] = []
    for round_ in range(3):  # kill, restart, kill again: recovery must itself be crash-safe
        delay = rng.uniform(0.0, 0.05)
        total += _kill_child_after(
            data, lines_wanted=8 + 4 * round_, extra_delay=delay, store=store_backend.url_for(data)
        )
        _check_consistent(data, total)


@pytest.mark.parametrize("backend", ["auto", "pq", "hnsw"])
def test_readers_see_no_errors_or_torn_results_while_a_writer_indexes(tmp_path: Path, backend: str) -> None:
    service = FaceService(tmp_path / "data", fake_engine(), index_backend=backend)
    service.create_collection("c")
    service.index_faces("c", face_png((20, 20, 100, 0)))
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        try:
            for i in range(1, 40):
                service.index_faces("c", face_png((10, 10, 90, 2 * i), (150, 10, 90, 2 * i + 1)))
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    def reader(pattern: int) -> None:
        try:
            while not stop.is_set():
                result = service.search_faces_by_image("c", face_png((20, 20, 100, pattern)), threshold=0)
                ids = [m.face.face_id for m in result.matches]
                assert len(ids) == len(set(ids))
                page = service.list_faces("c")
                images: dict[str, int] = {}
                for f in page.faces:
                    images[f.image_id] = images.get(f.image_id, 0) + 1
                assert all(n in (1, 2) for n in images.values())
                assert sum(1 for n in images.values() if n == 1) <= 1  # only the seed image has one face
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(p,)) for p in (0, 5, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    service.close()
    assert errors == []
