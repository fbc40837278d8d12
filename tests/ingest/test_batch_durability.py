"""Batched ``ingest()``: an image is reported only after its transaction commits, so kill -9 loses
no reported face, leaves no half image, and a rerun indexes exactly the images not yet stored."""

from __future__ import annotations

import random
import sys
from pathlib import Path

from facetrust.ingest.run import IngestOptions, ingest
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from pg_cluster import StoreBackend

from .helpers import run_child_and_kill, stored_by_image

CHILD = Path(__file__).resolve().parent / "batch_child.py"
IMAGES = 300


def _album(folder: Path) -> None:
    folder.mkdir()
    for i in range(IMAGES):  # two faces an image, so a half-written image would show
        (folder / f"img{i:03d}.png").write_bytes(face_png((10, 10, 90, 2 * i), (150, 10, 90, 2 * i + 1)))


def test_kill_9_during_a_batched_index_loses_no_reported_face_and_a_rerun_completes_it(
    tmp_path: Path, store_backend: StoreBackend
) -> None:
    data, album = tmp_path / "data", tmp_path / "album"
    _album(album)
    rng = random.Random(12)
    reported: list[list[str]] = []
    for round_ in range(2):  # kill, restart (resuming), kill again
        store = store_backend.url_for(data)
        command = [sys.executable, str(CHILD), str(data), str(album), *([] if store is None else [store])]
        reported += run_child_and_kill(command, 12 + 10 * round_, rng.uniform(0.0, 0.05))
        with FaceService(data, fake_engine(), store=store_backend.url_for(data)) as service:
            by_image = stored_by_image(service)
            assert all(len(ids) == 2 for ids in by_image.values())  # all of an image or none of it
            for image_id, *face_ids in reported:  # every reported face is stored
                assert sorted(by_image[image_id]) == sorted(face_ids)
    with FaceService(data, fake_engine(), store=store_backend.url_for(data)) as service:
        stored = len(stored_by_image(service))
        paths = sorted(str(p) for p in album.iterdir())
        outcomes = ingest(service, "c", paths, IngestOptions(batch=7))
        assert sum(o.skipped for o in outcomes) == stored  # the rerun skips exactly the stored images
        assert sum(o.result is not None for o in outcomes) == IMAGES - stored
        by_image = stored_by_image(service)
        assert len(by_image) == IMAGES and all(len(ids) == 2 for ids in by_image.values())
        row = service.store.get_collection("c")
        assert row is not None
        index = service.indexes.get(row).ensure()
        assert sorted(int(k) for k in index.keys()) == sorted(service.store.face_keys(row.id))
