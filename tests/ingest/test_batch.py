"""index_prepared_batch: many prepared images as one IndexFaces, all or nothing, one audit entry."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facetrust.errors import ConsentRequiredError, InvalidParameterError, RoleDeniedError
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.ingest.prepare import Job, prepare, sha256_of
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.service.ingest import PreparedImage, ordered_uuids
from facetrust.service.validate import check_face_ids

from .helpers import POLICY, audit_tail, external_ids, open_service

SEARCHER = Actor("FTKSEARCHER", "searcher")


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[FaceService]:
    service = open_service(tmp_path)
    yield service
    service.close()


def prepared(svc: FaceService, *patterns: int) -> list[PreparedImage]:
    out = []
    for p in patterns:
        data = face_png((20 + p, 20, 100, p), (200, 40, 80, p + 50))  # two faces an image
        found = prepare(svc.engine, Job(data, sha256_of(data), "AUTO", None))
        assert isinstance(found, PreparedImage)
        out.append(found)
    return out


def face_count(svc: FaceService, collection: str = "people") -> int:
    return svc.describe_collection(collection).face_count


def test_a_batch_stores_every_face_in_order_with_one_audit_entry_naming_each_image(svc: FaceService) -> None:
    images = prepared(svc, 1, 2, 3)
    before = len(list(audit.entries(svc.store.connection())))

    results = svc.index_prepared_batch("people", [(im, f"p{i}") for i, im in enumerate(images)])

    entries = list(audit.entries(svc.store.connection()))
    assert len(entries) == before + 1 and entries[-1].data["operation"] == "IndexFaces"
    images_logged = entries[-1].data["images"]
    assert [d["image_id"] for d in images_logged] == [r.image_id for r in results]
    assert [d["face_ids"] for d in images_logged] == [[f.stored.face_id for f in r.indexed] for r in results]
    assert [len(r.indexed) for r in results] == [2, 2, 2]
    assert external_ids(svc) == ["p0", "p0", "p1", "p1", "p2", "p2"]
    row = svc.store.get_collection("people")
    assert row is not None and svc.store.ingested(row.id, [im.sha256 for im in images]) == {im.sha256 for im in images}
    hit = svc.search_faces_by_image("people", face_png((30, 30, 100, 2)), threshold=50)
    assert hit.matches[0].face.external_image_id == "p1"  # the index sees the batch's faces


def test_a_batch_and_one_image_at_a_time_store_the_same_faces(svc: FaceService) -> None:
    images = prepared(svc, 4, 5)
    svc.create_collection("other")
    svc.index_prepared_batch("people", [(im, "b") for im in images])
    for im in images:  # into another collection: in this one the images are indexed already
        svc.index_prepared("other", im, external_image_id="b")

    batch, one_by_one = svc.list_faces("people").faces, svc.list_faces("other").faces
    assert [(f.external_image_id, f.box) for f in batch] == [(f.external_image_id, f.box) for f in one_by_one]
    assert len(batch) == 4


def test_the_faces_a_batch_answers_with_are_those_stored(svc: FaceService) -> None:
    results = svc.index_prepared_batch("people", [(im, f"s{i}") for i, im in enumerate(prepared(svc, 6, 7))])

    answered = [f.stored for r in results for f in r.indexed]
    assert answered == list(svc.list_faces("people").faces)  # every field, as read back from the store
    row = svc.store.get_collection("people")
    assert row is not None
    assert svc.store.ingested(row.id, [im.sha256 for im in prepared(svc, 6, 7)]) == {
        im.sha256 for im in prepared(svc, 6, 7)
    }


def test_one_subject_without_consent_refuses_the_whole_batch(svc: FaceService) -> None:
    svc.record_consent("alice", basis="contract", evidence="signed")
    images = prepared(svc, 6, 7)

    with pytest.raises(ConsentRequiredError, match="'bob'"):
        svc.index_prepared_batch("staff", [(images[0], "alice"), (images[1], "bob")])

    assert audit_tail(svc, 1)[0]["outcome"] == "ConsentRequired"
    assert face_count(svc, "staff") == 0
    svc.index_prepared_batch("staff", [(images[0], "alice")])
    assert face_count(svc, "staff") == 2


def test_a_role_that_may_not_index_is_refused_and_audited(svc: FaceService) -> None:
    with pytest.raises(RoleDeniedError):
        svc.index_prepared_batch("people", [(prepared(svc, 8)[0], None)], actor=SEARCHER)
    (refused,) = audit_tail(svc, 1)
    assert (refused["operation"], refused["outcome"]) == ("IndexFaces", "RoleDenied")
    assert face_count(svc) == 0


def test_one_forged_image_refuses_the_whole_batch(svc: FaceService) -> None:
    good, other = prepared(svc, 9, 10)
    forged = PreparedImage(other.sha256, other.faces, other.embeddings[:1])

    with pytest.raises(InvalidParameterError, match="not those of the 2 faces"):
        svc.index_prepared_batch("people", [(good, None), (forged, None)])

    assert face_count(svc) == 0


def _with_vector(image: PreparedImage, vector: object) -> PreparedImage:
    first = dataclasses.replace(image.embeddings[0], vector=vector)
    return dataclasses.replace(image, embeddings=(first, *image.embeddings[1:]))


@pytest.mark.parametrize(
    ("bad", "parameter"),
    [
        (lambda im: _with_vector(im, np.ones(5, np.float32)), "embeddings"),  # another model's length
        (lambda im: _with_vector(im, np.full(im.embeddings[0].vector.shape, np.nan, np.float32)), "embeddings"),
        (lambda im: _with_vector(im, np.zeros(im.embeddings[0].vector.shape, np.float32)), "embeddings"),
        (lambda im: _with_vector(im, im.embeddings[0].vector.tolist()), "embeddings"),  # a list, not an array
        (lambda im: dataclasses.replace(im, sha256="zz"), "sha256"),
        (lambda im: None, "prepared"),
    ],
    ids=["length", "nan", "zero", "list", "sha256", "none"],
)
def test_a_malformed_prepared_image_is_refused_by_name_before_anything_is_stored(
    svc: FaceService, bad: Any, parameter: str
) -> None:
    (image,) = prepared(svc, 11)
    before = len(list(audit.entries(svc.store.connection())))

    with pytest.raises(InvalidParameterError) as one:
        svc.index_prepared("people", bad(image))
    if parameter != "prepared":
        with pytest.raises(InvalidParameterError) as many:
            svc.index_prepared_batch("people", [(bad(image), None)])
        assert many.value.parameter == parameter

    refused = [e.data["outcome"] for e in list(audit.entries(svc.store.connection()))[before:]]
    assert refused == ["InvalidParameter"] * (1 if parameter == "prepared" else 2)
    assert one.value.parameter == parameter
    assert face_count(svc) == 0
    assert svc.search_faces_by_image("people", face_png((30, 30, 100, 11)), threshold=50).gallery_size == 0


def test_a_batch_item_that_is_not_a_pair_is_refused_naming_the_batch(svc: FaceService) -> None:
    (image,) = prepared(svc, 12)

    with pytest.raises(InvalidParameterError, match="batch item 0 must be a") as info:
        svc.index_prepared_batch("people", [image])  # type: ignore[list-item]

    assert info.value.parameter == "batch" and face_count(svc) == 0


def test_an_empty_batch_is_refused(svc: FaceService) -> None:
    with pytest.raises(InvalidParameterError) as info:
        svc.index_prepared_batch("people", [])
    assert info.value.parameter == "batch"


def test_a_batch_gives_time_ordered_uuids_that_are_valid_face_ids(svc: FaceService) -> None:
    results = svc.index_prepared_batch("people", [(im, None) for im in prepared(svc, 1, 2, 3)])
    later = svc.index_prepared_batch("people", [(im, None) for im in prepared(svc, 4)])

    ids = [f.stored.face_id for r in (*results, *later) for f in r.indexed]
    images = [r.image_id for r in (*results, *later)]
    assert check_face_ids(ids) == ids and len(set(ids)) == len(ids) == 8
    assert all(uuid.UUID(i).version == 7 and str(uuid.UUID(i)) == i for i in ids + images)
    assert ids == sorted(ids)  # in key order: the unique index grows at its right edge
    assert svc.search_faces("people", ids[5], threshold=0).searched_face_id == ids[5]


def test_time_ordered_uuids_follow_the_clock_and_never_repeat() -> None:
    ticks = iter([1.0, 1.0, 2.5])
    made = list(islice(ordered_uuids(lambda: next(ticks)), 3000))

    assert len(set(made)) == 3000 and made == sorted(made)
    assert {uuid.UUID(i).int >> 80 for i in made} == {1000, 2500}  # Unix milliseconds in the top 48 bits


def test_time_ordered_uuids_carry_the_counter_in_the_version_7_layout() -> None:
    made = [uuid.UUID(i) for i in islice(ordered_uuids(lambda: 1_700_000_000.0), 20_000)]

    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in made)
    counters = [((u.int >> 64) & 0xFFF) << 14 | ((u.int >> 48) & 0x3FFF) for u in made]
    assert counters == list(range(1, 20_001))  # 26 bits: 12 after the version, 14 after the variant
    assert len({u.int & 0xFFFF_FFFF_FFFF for u in made}) > 19_900  # 48 random bits each


def test_the_collector_is_off_during_a_batch_and_back_as_it_was_after_it_even_when_refused(tmp_path: Path) -> None:
    import gc
    import time

    seen: list[bool] = []

    def clock() -> float:  # the service reads its clock while the batch is made ready
        seen.append(gc.isenabled())
        return time.time()

    svc = FaceService(tmp_path / "data", fake_engine(), policy=POLICY, clock=clock)
    svc.create_collection("people")
    svc.create_collection("staff", purpose="access")
    images = [(im, None) for im in prepared(svc, 1, 2)]
    try:
        assert gc.isenabled()
        seen.clear()
        svc.index_prepared_batch("people", images)
        assert seen and not any(seen) and gc.isenabled()
        with pytest.raises(ConsentRequiredError):
            svc.index_prepared_batch("staff", [(im, "nobody") for im, _ in images])
        assert gc.isenabled()
        gc.disable()  # a caller that runs without the collector keeps it off
        svc.index_prepared_batch("people", [(im, None) for im in prepared(svc, 3)])
        assert not gc.isenabled()
    finally:
        gc.enable()
        svc.close()


def test_overlapping_batches_turn_the_collector_back_on_only_when_the_last_one_ends() -> None:
    import gc
    import threading

    from facetrust.service.ingest import _COLLECTOR

    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    states: list[bool] = []

    def second() -> None:
        first_in.wait()
        with _COLLECTOR.paused():
            second_in.set()
            first_out.wait()
            states.append(gc.isenabled())  # the first batch has ended, this one has not
        states.append(gc.isenabled())

    worker = threading.Thread(target=second)
    worker.start()
    try:
        with _COLLECTOR.paused():
            first_in.set()
            second_in.wait()
        first_out.set()
        worker.join()
        assert states == [False, True] and gc.isenabled()
    finally:
        first_out.set()
        worker.join()
        gc.enable()


def test_the_auditors_view_pseudonymises_the_images_a_batch_found_indexed_already(svc: FaceService) -> None:
    images = prepared(svc, 1, 2)
    first = svc.index_prepared_batch("people", [(images[0], "p0")])[0]
    svc.index_prepared_batch("people", [(images[0], "p0"), (images[1], "p1")])  # the first again
    entry = svc.get_audit_log().entries[-1].data
    assert entry["operation"] == "IndexFaces" and len(entry["already_indexed"]) == 1
    assert first.image_id not in str(entry)  # the auditor sees a pseudonym, never the image id
    assert entry["already_indexed"][0].startswith("image-")
