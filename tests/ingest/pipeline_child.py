"""Child process for the kill -9 test of the bulk-write pipeline: writes batches of prepared images
with ``index_prepared_batches``, printing each image's id and face ids as soon as its batch is
yielded (after its commit)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from facetrust.ingest.prepare import Job, prepare, sha256_of
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.service.ingest import PreparedImage

IMAGES, BATCH = 400, 8


def batches(service: FaceService) -> Iterator[list[tuple[PreparedImage, str | None]]]:
    for start in range(0, IMAGES, BATCH):
        batch: list[tuple[PreparedImage, str | None]] = []
        for i in range(start, start + BATCH):  # two faces an image, so a half-written image would show
            data = face_png((10, 10, 90, 2 * i), (150, 10, 90, 2 * i + 1))
            found = prepare(service.engine, Job(data, sha256_of(data), "AUTO", None))
            assert isinstance(found, PreparedImage)
            batch.append((found, f"img{i}"))
        yield batch


def main() -> None:
    data = Path(sys.argv[1])
    service = FaceService(data, fake_engine(), store=sys.argv[2] if len(sys.argv) > 2 else None)
    service.create_collection("c")
    for results in service.index_prepared_batches("c", batches(service)):
        for result in results:
            print(result.image_id, *(f.stored.face_id for f in result.indexed), flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main()
