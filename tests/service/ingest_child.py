"""Child process for the kill -9 test: indexes images of 3 faces each, forever, printing each
committed image id and its face ids as soon as IndexFaces returns."""

from __future__ import annotations

import sys
from pathlib import Path

from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService


def main() -> None:
    data = Path(sys.argv[1])
    service = FaceService(data, fake_engine(), store=sys.argv[2] if len(sys.argv) > 2 else None)
    if service.list_collections().names == ():
        service.create_collection("c")
    i = 0
    while True:
        png = face_png((10, 10, 90, 3 * i), (120, 10, 90, 3 * i + 1), (230, 10, 90, 3 * i + 2))
        result = service.index_faces("c", png, external_image_id=f"img{i}")
        ids = " ".join(f.stored.face_id for f in result.indexed)
        print(f"{result.image_id} {ids}", flush=True)
        if i % 7 == 3:  # also exercise searches and deletions, which touch the index
            service.search_faces_by_image("c", png)
        i += 1


if __name__ == "__main__":
    main()
