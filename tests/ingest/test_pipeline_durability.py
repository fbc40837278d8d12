"""The bulk-write pipeline acknowledges a batch only after its commit: kill -9 at any point loses no
yielded face and leaves no half image, though the next batch was being made ready or written."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from facetrust.models.fake import fake_engine
from facetrust.service import FaceService
from pg_cluster import StoreBackend

CHILD = Path(__file__).resolve().parent / "pipeline_child.py"


def _run_child_and_kill(data: Path, wanted: int, delay: float, store: str | None) -> list[list[str]]:
    store_arg = [] if store is None else [store]
    proc = subprocess.Popen([sys.executable, str(CHILD), str(data), *store_arg], stdout=subprocess.PIPE, text=True)
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


def test_kill_9_during_pipelined_batches_loses_no_yielded_face_and_no_image_is_half_written(
    tmp_path: Path, store_backend: StoreBackend
) -> None:
    data = tmp_path / "data"
    reported = _run_child_and_kill(data, 40, random.Random(7).uniform(0.0, 0.05), store_backend.url_for(data))

    with FaceService(data, fake_engine(), store=store_backend.url_for(data)) as service:
        row = service.store.get_collection("c")
        assert row is not None
        by_image: dict[str, list[str]] = {}
        token = None
        while True:
            page = service.list_faces("c", max_results=500, next_token=token)
            for face in page.faces:
                by_image.setdefault(face.image_id, []).append(face.face_id)
            if (token := page.next_token) is None:
                break
        assert all(len(ids) == 2 for ids in by_image.values())  # all of an image or none of it
        for image_id, *face_ids in reported:  # every yielded face is stored
            assert sorted(by_image[image_id]) == sorted(face_ids)
        assert len(by_image) % 8 == 0  # whole batches only
        index = service.indexes.get(row).ensure()
        assert sorted(int(k) for k in index.keys()) == sorted(service.store.face_keys(row.id))
