"""The bulk-write pipeline acknowledges a batch only after its commit: kill -9 at any point loses no
yielded face and leaves no half image, though the next batch was being made ready or written."""

from __future__ import annotations

import random
import sys
from pathlib import Path

from facetrust.models.fake import fake_engine
from facetrust.service import FaceService
from pg_cluster import StoreBackend

from .helpers import run_child_and_kill, stored_by_image

CHILD = Path(__file__).resolve().parent / "pipeline_child.py"


def test_kill_9_during_pipelined_batches_loses_no_yielded_face_and_no_image_is_half_written(
    tmp_path: Path, store_backend: StoreBackend
) -> None:
    data = tmp_path / "data"
    store = store_backend.url_for(data)
    command = [sys.executable, str(CHILD), str(data), *([] if store is None else [store])]
    reported = run_child_and_kill(command, 40, random.Random(7).uniform(0.0, 0.05))

    with FaceService(data, fake_engine(), store=store_backend.url_for(data)) as service:
        row = service.store.get_collection("c")
        assert row is not None
        by_image = stored_by_image(service)
        assert all(len(ids) == 2 for ids in by_image.values())  # all of an image or none of it
        for image_id, *face_ids in reported:  # every yielded face is stored
            assert sorted(by_image[image_id]) == sorted(face_ids)
        assert len(by_image) % 8 == 0  # whole batches only
        index = service.indexes.get(row).ensure()
        assert sorted(int(k) for k in index.keys()) == sorted(service.store.face_keys(row.id))
