"""IndexFaces of the same image with the same ExternalImageId saves nothing twice (as Rekognition
documents): a retry whose answer was lost adds no duplicate faces."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from facetrust.errors import InvalidImageError
from facetrust.governance.policy import Policy, Purpose
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.service.faces import repeat_key
from facetrust.service.types import IndexResult

TWO = face_png((10, 10, 100, 1), (200, 50, 60, 2))


def _ids(result: IndexResult) -> list[str]:
    return [f.stored.face_id for f in result.indexed]


def _entries(service: FaceService, disclose: bool = True) -> list[dict[str, Any]]:
    return [e.data for e in service.get_audit_log(limit=None, disclose=disclose).entries]


def test_a_repeat_is_answered_with_the_faces_stored_the_first_time(service: FaceService, tmp_path: Path) -> None:
    service.create_collection("c")
    first = service.index_faces("c", TWO, external_image_id="img.png")
    again = service.index_faces("c", TWO, external_image_id="img.png")
    path = tmp_path / "img.png"
    path.write_bytes(TWO)
    from_file = service.index_faces("c", path, external_image_id="img.png")  # the same bytes, from a file

    assert first.repeated == () and len(first.indexed) == 2
    assert again.indexed == first.indexed == from_file.indexed  # the stored faces, and the faces found
    assert again.image_id == from_file.image_id == first.image_id
    assert again.repeated == from_file.repeated == tuple(_ids(first))
    assert service.describe_collection("c").face_count == 2
    repeats = [e for e in _entries(service) if e.get("operation") == "IndexFaces"]
    assert [(r["face_ids"], r.get("repeated_face_ids")) for r in repeats] == [
        (_ids(first), None),
        ([], _ids(first)),
        ([], _ids(first)),
    ]
    hidden = [e for e in _entries(service, disclose=False) if e.get("operation") == "IndexFaces"][1]
    assert not set(hidden["repeated_face_ids"]) & set(_ids(first))  # the auditor's view: pseudonyms


def test_another_external_image_id_or_none_indexes_the_image_again(service: FaceService) -> None:
    service.create_collection("c")
    first = service.index_faces("c", TWO, external_image_id="a.png")
    other = service.index_faces("c", TWO, external_image_id="b.png")
    unnamed = service.index_faces("c", TWO)
    assert other.repeated == unnamed.repeated == () and other.image_id != first.image_id
    assert service.describe_collection("c").face_count == 6
    # the second ExternalImageId did not take the first's record away
    assert service.index_faces("c", TWO, external_image_id="a.png").repeated == tuple(_ids(first))
    assert service.index_faces("c", TWO, external_image_id="b.png").repeated == tuple(_ids(other))
    assert service.describe_collection("c").face_count == 6


def test_a_face_deleted_since_is_stored_again_and_the_others_are_not(service: FaceService) -> None:
    service.create_collection("c")
    first = service.index_faces("c", TWO, external_image_id="img.png")
    kept, gone = _ids(first)
    service.delete_faces("c", [gone])
    again = service.index_faces("c", TWO, external_image_id="img.png")
    assert again.repeated == (kept,) and again.image_id == first.image_id
    assert _ids(again)[0] == kept and _ids(again)[1] not in (kept, gone)
    assert service.describe_collection("c").face_count == 2
    entry = [e for e in _entries(service) if e.get("operation") == "IndexFaces"][-1]
    assert entry["face_ids"] == [_ids(again)[1]] and entry["repeated_face_ids"] == [kept]


def test_faces_another_max_faces_left_out_are_stored_under_the_same_image(service: FaceService) -> None:
    service.create_collection("c")
    one = service.index_faces("c", TWO, external_image_id="img.png", max_faces=1)
    both = service.index_faces("c", TWO, external_image_id="img.png")
    assert len(one.indexed) == 1 and both.repeated == tuple(_ids(one))
    assert _ids(both)[0] == _ids(one)[0] and both.image_id == one.image_id
    assert service.describe_collection("c").face_count == 2
    # fewer asked for again: the face answered is the stored one, the other stays stored
    assert service.index_faces("c", TWO, external_image_id="img.png", max_faces=1).indexed == one.indexed
    assert service.describe_collection("c").face_count == 2


def test_once_its_faces_are_gone_the_image_is_indexed_afresh(service: FaceService) -> None:
    service.create_collection("c")
    first = service.index_faces("c", TWO, external_image_id="img.png")
    service.erase_external_image_id("c", "img.png")
    fresh = service.index_faces("c", TWO, external_image_id="img.png")
    assert fresh.repeated == () and fresh.image_id != first.image_id and len(fresh.indexed) == 2
    assert not set(_ids(fresh)) & set(_ids(first))


def test_no_trace_is_kept_of_an_image_stored_without_a_face(service: FaceService) -> None:
    service.create_collection("c")
    nothing = face_png((10, 10, 20, 1))  # too small: not indexed
    assert service.index_faces("c", nothing, external_image_id="img.png").indexed == ()
    row = service.ctx.store.get_collection("c")
    assert row is not None
    with service.ctx.store.snapshot() as conn:
        assert service.ctx.store.ingested_images(conn, row.id, [repeat_key("img.png", nothing)]) == {}
    first = service.index_faces("c", TWO, external_image_id="img.png")
    with service.ctx.store.snapshot() as conn:
        assert service.ctx.store.ingested_images(conn, row.id, [repeat_key("img.png", TWO)]) != {}
    service.erase_external_image_id("c", "img.png")
    with service.ctx.store.snapshot() as conn:  # erased with the image's last face
        assert service.ctx.store.ingested_images(conn, row.id, [repeat_key("img.png", TWO)]) == {}
    assert first.repeated == ()


def test_bulk_ingestion_records_and_index_faces_repeats_do_not_read_each_other(service: FaceService) -> None:
    import hashlib

    service.create_collection("c")
    service.index_faces("c", TWO, external_image_id="img.png")
    row = service.ctx.store.get_collection("c")
    assert row is not None and service.ctx.store.ingested(row.id, [hashlib.sha256(TWO).hexdigest()]) == set()


def test_faces_expired_but_not_swept_are_not_answered_again(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    policy = Policy(purposes={"short": Purpose("short", retention_days=1)}, default_purpose="short")
    svc = FaceService(tmp_path / "data", fake_engine(), policy=policy, clock=lambda: now[0])
    try:
        svc.create_collection("c")
        first = svc.index_faces("c", TWO, external_image_id="img.png")
        now[0] += 2 * 86400
        fresh = svc.index_faces("c", TWO, external_image_id="img.png")
        assert fresh.repeated == () and fresh.image_id != first.image_id and len(fresh.indexed) == 2
    finally:
        svc.close()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_refused_not_waited_on(service: FaceService, tmp_path: Path) -> None:
    service.create_collection("c")
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def index() -> None:
        try:
            service.index_faces("c", fifo, external_image_id="img.png")
        except BaseException as exc:  # the test reads it
            outcome.append(exc)

    worker = threading.Thread(target=index, daemon=True)
    worker.start()
    worker.join(20)
    if worker.is_alive():  # unblock the reader, so the test ends either way
        with open(fifo, "wb") as fh:
            fh.write(TWO)
        worker.join(20)
        pytest.fail("IndexFaces waited on a named pipe")
    assert len(outcome) == 1 and isinstance(outcome[0], InvalidImageError) and str(fifo) in str(outcome[0])
