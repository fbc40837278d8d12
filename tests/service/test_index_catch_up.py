"""A collection's index catching up with the store after bulk writes: in blocks, or rebuilt when outgrown;
and kept in step by the bulk write itself (the committed batch added from the vectors in hand)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import facetrust.index
from facetrust.ingest.prepare import Job, prepare, sha256_of
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.service import indexes as indexes_module
from facetrust.service.indexes import CollectionIndex
from facetrust.service.ingest import PreparedImage
from facetrust.store.sqlite import CollectionRow
from pg_cluster import SQLITE_FILES


@pytest.fixture
def service(tmp_path: Path) -> Iterator[FaceService]:
    svc = FaceService(tmp_path / "data", fake_engine())
    svc.create_collection("c")
    yield svc
    svc.close()


def _index(service: FaceService) -> tuple[CollectionRow, CollectionIndex]:
    row = service.store.get_collection("c")
    assert row is not None
    return row, service.indexes.get(row)


def _prepared(service: FaceService, patterns: range) -> list[tuple[PreparedImage, str | None]]:
    out: list[tuple[PreparedImage, str | None]] = []
    for p in patterns:
        data = face_png((20, 20, 100, p))
        found = prepare(service.engine, Job(data, sha256_of(data), "AUTO", None))
        assert isinstance(found, PreparedImage)
        out.append((found, f"p{p}"))
    return out


def test_catching_up_in_blocks_applies_adds_and_deletions_in_order(
    service: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(indexes_module, "CATCH_UP_BLOCK", 3)
    row, index = _index(service)
    assert len(index.ensure()) == 0
    results = service.index_prepared_batch("c", _prepared(service, range(1, 9)))
    ids = [r.indexed[0].stored.face_id for r in results]
    service.delete_faces("c", [ids[2], ids[5]])
    results = service.index_prepared_batch("c", _prepared(service, range(20, 23)))

    caught_up = index.ensure()  # 16 changes, applied 3 at a time

    stored = {key for key, _ in service.store.embeddings(row.id)}
    assert set(caught_up.keys().tolist()) == stored and len(stored) == 9
    hit = service.search_faces_by_image("c", face_png((40, 30, 100, 21)))
    assert hit.matches[0].face.face_id == results[1].indexed[0].stored.face_id
    assert not service.search_faces_by_image("c", face_png((40, 30, 100, 3))).matches  # deleted


def test_a_run_of_deletions_leaves_the_index_in_one_removal_and_the_order_holds(service: FaceService) -> None:
    """A block of changes goes to the index a run at a time: one removal per run of deletions (a
    removal a face took 13 s for 200,000 in the pq index), adds and deletions still in order."""
    from facetrust.store.sqlite import NewFace

    row, index = _index(service)
    index.ensure()
    service.index_prepared_batch("c", _prepared(service, range(1, 7)))
    keys = sorted(set(index.ensure().keys().tolist()))
    assert len(keys) == 6
    template = service.store.embedding(row.id, keys[0])  # stored as the store keeps them
    with service.store.transaction() as conn:  # stored, not yet in the index
        (new,) = service.store.insert_faces(
            conn, row.id, [NewFace("f-new", "i-new", None, (0, 0, 1, 1), 99.0, 1.0, 1.0, (0, 0, 0), template)]
        )
    real = index.ensure()
    calls: list[tuple[str, list[int]]] = []
    real_add, real_remove = real.add, real.remove

    def add(k: object, vectors: object) -> None:
        calls.append(("add", np.asarray(k).tolist()))
        real_add(k, vectors)

    def remove(k: object) -> int:
        calls.append(("del", np.asarray(k).tolist()))
        return real_remove(k)

    real.add, real.remove = add, remove  # type: ignore[method-assign]
    changes = [(0, keys[1], "del"), (0, keys[2], "del"), (0, new, "add"), (0, keys[3], "del"), (0, keys[4], "del")]
    index._apply(changes)
    assert calls == [("del", keys[1:3]), ("add", [new]), ("del", keys[3:5])]
    assert sorted(real.keys().tolist()) == sorted([keys[0], keys[5], new])


def test_a_bulk_import_past_the_auto_threshold_is_rebuilt_as_the_bigger_backend_at_once(
    service: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    row, index = _index(service)
    exact = index.ensure()
    assert exact.name == "exact"
    monkeypatch.setattr(facetrust.index, "AUTO_THRESHOLD", 5)
    service.index_prepared_batch("c", _prepared(service, range(1, 9)))

    rebuilt = index.ensure()

    assert rebuilt.name == "pq" and len(rebuilt) == 8
    assert len(exact) == 0  # the exact index was never filled with the import first
    query = next(iter(service.store.embeddings(row.id)))
    vector = np.frombuffer(query[1], np.float32)
    assert rebuilt.search(vector, 1).keys[0, 0] == query[0]


def _index_keys(service: FaceService) -> list[int]:
    index = _index(service)[1]
    return sorted(int(k) for k in index.ensure().keys())


def test_a_committed_batch_is_in_the_index_before_any_search(service: FaceService) -> None:
    service.index_prepared_batch("c", _prepared(service, range(1, 6)))
    service.index_prepared_batch("c", _prepared(service, range(6, 11)))

    index = service.indexes.get(_index(service)[0])
    assert index.applied == service.store.last_change(_index(service)[0].id)  # no catch-up left for a search
    assert _index_keys(service) == sorted(service.store.face_keys(_index(service)[0].id))
    hit = service.search_faces_by_image("c", face_png((30, 30, 100, 7)), threshold=50)
    assert hit.matches[0].face.external_image_id == "p7"


def test_an_index_left_behind_by_another_writer_is_caught_up_from_the_store(
    service: FaceService, tmp_path: Path
) -> None:
    service.index_prepared_batch("c", _prepared(service, range(1, 4)))
    with FaceService(tmp_path / "data", fake_engine()) as other:  # another writer on the same store
        other.index_prepared_batch("c", _prepared(other, range(4, 7)))
        erased = other.list_faces("c").faces[0].face_id
        other.delete_faces("c", [erased])
    service.index_prepared_batch("c", _prepared(service, range(7, 10)))  # not at the last change: caught up

    index = service.indexes.get(_index(service)[0])
    assert index.applied == service.store.last_change(_index(service)[0].id)
    assert _index_keys(service) == sorted(service.store.face_keys(_index(service)[0].id))
    assert len(_index_keys(service)) == 8
    hit = service.search_faces_by_image("c", face_png((30, 30, 100, 5)), threshold=50)
    assert hit.matches[0].face.external_image_id == "p5"  # the other writer's face


def test_a_restarted_service_rebuilds_the_index_the_batches_kept_in_memory(tmp_path: Path) -> None:
    with FaceService(tmp_path / "data", fake_engine()) as first:
        first.create_collection("c")
        first.index_prepared_batch("c", _prepared(first, range(1, 9)))
        kept = _index_keys(first)
    with FaceService(tmp_path / "data", fake_engine()) as again:  # sealed templates: no snapshot on disk
        assert _index_keys(again) == kept == sorted(again.store.face_keys(_index(again)[0].id))
        hit = again.search_faces_by_image("c", face_png((30, 30, 100, 3)), threshold=50)
        assert hit.matches[0].face.external_image_id == "p3"


@SQLITE_FILES  # a restored SQLite file; a PostgreSQL database is restored by its own tools
def test_an_index_snapshot_ahead_of_a_restored_database_is_rebuilt_not_served(tmp_path: Path) -> None:
    import shutil

    data, backup = tmp_path / "data", tmp_path / "backup"
    image = [face_png((20, 20, 100, k)) for k in range(9)]
    with FaceService(data, fake_engine(), keyring=None) as service:  # templates in the clear: snapshots written
        service.create_collection("c")
        for k in range(3):
            service.index_faces("c", image[k], external_image_id=f"p{k}")
    backup.mkdir()
    for name in ("facetrust.db", "audit.heads"):
        shutil.copy2(data / name, backup / name)
    with FaceService(data, fake_engine(), keyring=None) as service:  # written after the database was copied
        for k in range(3, 8):
            service.index_faces("c", image[k], external_image_id=f"p{k}")
        service.search_faces_by_image("c", image[0])  # its index, saved on close
    shutil.copytree(data / "index", backup / "index")  # a copy of a running directory: the index copied last
    shutil.rmtree(data)
    shutil.copytree(backup, data)
    with FaceService(data, fake_engine(), keyring=None) as service:
        service.index_faces("c", image[8], external_image_id="after")
        found = service.search_faces_by_image("c", image[8], threshold=80.0).matches
        assert [m.face.external_image_id for m in found] == ["after"]
        assert service.search_faces_by_image("c", image[3], threshold=80.0).matches == ()  # never in this store
