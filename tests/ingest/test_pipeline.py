"""index_prepared_batches: batches pipelined over two threads, each still one IndexFaces, one
transaction and one audit entry, written and answered in input order; the first failure stops it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.errors import InvalidParameterError, NotFoundError
from facetrust.governance import audit
from facetrust.ingest.prepare import Job, prepare, sha256_of
from facetrust.models.fake import face_png
from facetrust.service import FaceService
from facetrust.service.indexes import CollectionIndex
from facetrust.service.ingest import PreparedImage, answer_batch, plan_batch, write_batch

from .helpers import open_service

Batch = list[tuple[PreparedImage, str | None]]


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[FaceService]:
    service = open_service(tmp_path)
    yield service
    service.close()


def batches(svc: FaceService, count: int, size: int) -> list[Batch]:
    """``count`` batches of ``size`` one-face images, each image distinct (ExternalImageId b<batch>-<i>)."""
    out = []
    for b in range(count):
        batch: Batch = []
        for i in range(size):
            data = face_png((20 + i, 20 + b, 100, 1 + b * size + i))
            found = prepare(svc.engine, Job(data, sha256_of(data), "AUTO", None))
            assert isinstance(found, PreparedImage)
            batch.append((found, f"b{b}-{i}"))
        out.append(batch)
    return out


def index_faces_entries(svc: FaceService) -> list[dict[str, object]]:
    return [e.data for e in audit.entries(svc.store.connection()) if e.data["operation"] == "IndexFaces"]


def test_batches_are_written_and_answered_in_input_order_one_audit_entry_each(
    svc: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    todo = batches(svc, 6, 4)
    catch_ups = []
    real_ensure = CollectionIndex.ensure

    def ensure(self: CollectionIndex) -> object:
        catch_ups.append(1)
        return real_ensure(self)

    monkeypatch.setattr(CollectionIndex, "ensure", ensure)

    answered = list(svc.index_prepared_batches("people", todo))

    assert [[r.indexed[0].stored.external_image_id for r in results] for results in answered] == [
        [ext for _, ext in batch] for batch in todo
    ]
    stored = [f.external_image_id for f in svc.list_faces("people").faces]  # in key (commit) order
    assert stored == [ext for batch in todo for _, ext in batch]
    entries = index_faces_entries(svc)
    assert len(entries) == 6 and all(e["outcome"] == "ok" for e in entries)
    logged = [[d["image_id"] for d in e["images"]] for e in entries]  # type: ignore[attr-defined]
    assert logged == [[r.image_id for r in results] for results in answered]
    row = svc.store.get_collection("people")
    assert row is not None
    index = svc.indexes.get(row)
    assert len(catch_ups) == 1  # loaded once, at the first batch; every later batch added in commit order
    assert index.applied == svc.store.last_change(row.id)
    assert sorted(int(k) for k in index.ensure().keys()) == sorted(svc.store.face_keys(row.id))


def test_the_first_failing_batch_raises_in_its_turn_and_the_batches_after_it_are_not_written(
    svc: FaceService,
) -> None:
    todo = batches(svc, 5, 3)
    broken, ext = todo[2][1]
    todo[2][1] = (PreparedImage(broken.sha256, broken.faces, ()), ext)  # its face's embedding is missing
    answered = []

    with pytest.raises(InvalidParameterError, match="embeddings"):
        for results in svc.index_prepared_batches("people", todo):
            answered.append(results)

    assert len(answered) == 2
    stored = [f.external_image_id for f in svc.list_faces("people").faces]
    assert stored == [ext for batch in todo[:2] for _, ext in batch]  # not the failed batch, nor those after
    entries = index_faces_entries(svc)
    assert [e["outcome"] for e in entries] == ["ok", "ok", "InvalidParameter"]  # the refusal audited; no more


def test_deleting_the_collection_during_the_run_refuses_the_batches_not_yet_written(svc: FaceService) -> None:
    todo = batches(svc, 6, 3)
    row = svc.store.get_collection("people")
    assert row is not None

    def feed() -> Iterator[Batch]:
        for i, batch in enumerate(todo):
            if i == 3:  # while an earlier batch may be in the writer's hands
                svc.delete_collection("people")
            yield batch

    with pytest.raises(NotFoundError, match="people"):
        for _ in svc.index_prepared_batches("people", feed()):
            pass

    assert svc.store.face_keys(row.id) == []  # no face outlived its collection


def test_a_plan_made_for_a_collection_since_replaced_is_prepared_again(svc: FaceService) -> None:
    from facetrust.governance.actor import LOCAL
    from facetrust.service.faces import Enrolment

    (batch,) = batches(svc, 1, 3)
    ask = Enrolment("people", None, None, "AUTO")
    plan = plan_batch(svc.ctx, ask, batch)
    assert plan is not None
    svc.delete_collection("people")
    svc.create_collection("people")

    written = write_batch(svc.ctx, LOCAL, ask, batch, plan)

    row = svc.store.get_collection("people")
    assert row is not None and written.plan.row == row != plan.row
    results = answer_batch(written)
    assert [f.face_id for f in svc.list_faces("people").faces] == [r.indexed[0].stored.face_id for r in results]


def test_a_plan_is_not_made_where_the_governed_path_must_decide(svc: FaceService) -> None:
    from facetrust.service.faces import Enrolment

    (batch,) = batches(svc, 1, 2)
    assert plan_batch(svc.ctx, Enrolment("missing", None, None, "AUTO"), batch) is None
    assert plan_batch(svc.ctx, Enrolment("people", None, 0, "AUTO"), batch) is None
    assert plan_batch(svc.ctx, Enrolment("people", None, None, "BEST"), batch) is None
    assert plan_batch(svc.ctx, Enrolment("people", None, None, "AUTO"), []) is None
