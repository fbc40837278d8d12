"""A bulk write keeps the collection's live index in step: the committed batch goes into the index
from the vectors in hand, and an index that another writer left behind is caught up from the store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.ingest.prepare import Job, prepare, sha256_of
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.service.ingest import PreparedImage
from facetrust.store.sqlite import CollectionRow


@pytest.fixture
def service(tmp_path: Path) -> Iterator[FaceService]:
    svc = FaceService(tmp_path / "data", fake_engine())
    svc.create_collection("c")
    yield svc
    svc.close()


def _row(service: FaceService) -> CollectionRow:
    row = service.store.get_collection("c")
    assert row is not None
    return row


def _batch(service: FaceService, patterns: range) -> list[tuple[PreparedImage, str | None]]:
    out: list[tuple[PreparedImage, str | None]] = []
    for p in patterns:
        data = face_png((20, 20, 100, p))
        found = prepare(service.engine, Job(data, sha256_of(data), "AUTO", None))
        assert isinstance(found, PreparedImage)
        out.append((found, f"p{p}"))
    return out


def _index_keys(service: FaceService) -> list[int]:
    index = service.indexes.get(_row(service))
    return sorted(int(k) for k in index.ensure().keys())


def test_a_committed_batch_is_in_the_index_before_any_search(service: FaceService) -> None:
    service.index_prepared_batch("c", _batch(service, range(1, 6)))
    service.index_prepared_batch("c", _batch(service, range(6, 11)))

    index = service.indexes.get(_row(service))
    assert index.applied == service.store.last_change(_row(service).id)  # no catch-up left for a search
    assert _index_keys(service) == sorted(service.store.face_keys(_row(service).id))
    hit = service.search_faces_by_image("c", face_png((30, 30, 100, 7)), threshold=50)
    assert hit.matches[0].face.external_image_id == "p7"


def test_an_index_left_behind_by_another_writer_is_caught_up_from_the_store(
    service: FaceService, tmp_path: Path
) -> None:
    service.index_prepared_batch("c", _batch(service, range(1, 4)))
    with FaceService(tmp_path / "data", fake_engine()) as other:  # another writer on the same store
        other.index_prepared_batch("c", _batch(other, range(4, 7)))
        erased = other.list_faces("c").faces[0].face_id
        other.delete_faces("c", [erased])
    service.index_prepared_batch("c", _batch(service, range(7, 10)))  # not at the last change: caught up

    index = service.indexes.get(_row(service))
    assert index.applied == service.store.last_change(_row(service).id)
    assert _index_keys(service) == sorted(service.store.face_keys(_row(service).id))
    assert len(_index_keys(service)) == 8
    hit = service.search_faces_by_image("c", face_png((30, 30, 100, 5)), threshold=50)
    assert hit.matches[0].face.external_image_id == "p5"  # the other writer's face


def test_a_restarted_service_rebuilds_the_index_the_batches_kept_in_memory(tmp_path: Path) -> None:
    with FaceService(tmp_path / "data", fake_engine()) as first:
        first.create_collection("c")
        first.index_prepared_batch("c", _batch(first, range(1, 9)))
        kept = _index_keys(first)
    with FaceService(tmp_path / "data", fake_engine()) as again:  # sealed templates: no snapshot on disk
        assert _index_keys(again) == kept == sorted(again.store.face_keys(_row(again).id))
        hit = again.search_faces_by_image("c", face_png((30, 30, 100, 3)), threshold=50)
        assert hit.matches[0].face.external_image_id == "p3"
