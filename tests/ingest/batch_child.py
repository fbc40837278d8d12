"""Child process for the kill -9 test of batched ingestion: indexes an album with ``ingest()`` in
batches, printing each image's id and face ids as soon as ingest reports it (after its commit)."""

from __future__ import annotations

import sys
from pathlib import Path

from facetrust.ingest.run import ImageOutcome, IngestOptions, ingest
from facetrust.models.fake import fake_engine
from facetrust.service import FaceService


def report(outcome: ImageOutcome) -> None:
    if outcome.result is not None:
        ids = " ".join(f.stored.face_id for f in outcome.result.indexed)
        print(f"{outcome.result.image_id} {ids}", flush=True)


def main() -> None:
    data, album = Path(sys.argv[1]), Path(sys.argv[2])
    service = FaceService(data, fake_engine(), store=sys.argv[3] if len(sys.argv) > 3 else None)
    if service.list_collections().names == ():
        service.create_collection("c")
    paths = sorted(str(p) for p in album.iterdir())
    ingest(service, "c", paths, IngestOptions(batch=5), on_image=report)
    print("done", flush=True)


if __name__ == "__main__":
    main()
