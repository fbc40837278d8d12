"""A replica closed for longer than the store keeps its change log (``change_log_days``) rebuilds its
index from the faces when it opens again, so it answers exactly: through the library, two services
over one store, SQLite and PostgreSQL (store/changelog.py, service/indexes.py)."""

from __future__ import annotations

from pathlib import Path

from facetrust.config import Settings
from facetrust.index import load_index
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService

from .conftest import SharedStore

DAY = 86400.0


def _service(store: SharedStore, replica: str, now: list[float]) -> FaceService:
    engine = fake_engine(Settings(flip_augment=False))  # change_log_days: 7 by default
    return FaceService(
        store.data_dir(replica),
        engine,
        index_backend="exact",
        replica_id=replica,
        store=store.url,
        clock=lambda: now[0],
    )


def _enrol(service: FaceService, pattern: int) -> str:
    return service.index_faces("c", face_png((40, 40, 80, pattern))).indexed[0].stored.face_id


def _found(service: FaceService, pattern: int) -> list[str]:
    return [m.face.face_id for m in service.search_faces_by_image("c", face_png((40, 40, 80, pattern))).matches]


def _closed_at(store: SharedStore, now: list[float]) -> tuple[str, str, Path]:
    """Replica b, closed with a snapshot of collection c (faces of patterns 1 and 2) at its last
    change; those two face ids and the snapshot's path."""
    with _service(store, "a", now) as a:
        a.create_collection("c")
        kept, gone = _enrol(a, 1), _enrol(a, 2)
    with _service(store, "b", now) as b:
        assert _found(b, 2) == [gone]
        row = b.store.get_collection("c")
        assert row is not None
        path = b.indexes.folder / f"collection-{row.id}.index"
    assert path.exists()
    return kept, gone, path


def _prune_past(a: FaceService, now: list[float]) -> None:
    a.sweep_retention()  # marks the log's newest change
    now[0] += 8 * DAY
    a.sweep_retention()  # deletes every change up to that mark but each collection's newest


def test_a_replica_closed_past_the_bound_finds_a_face_added_meanwhile_whose_change_was_pruned(
    store: SharedStore,
) -> None:
    now = [1_750_000_000.0]
    _, gone, _ = _closed_at(store, now)
    with _service(store, "a", now) as a:
        added = _enrol(a, 3)  # not the collection's newest change when the log is pruned
        newest = _enrol(a, 4)
        _prune_past(a, now)
        row = a.store.get_collection("c")
        assert row is not None
        assert [seq for seq, _, _ in a.store.changes_since(row.id, 0)] == [a.store.last_change(row.id)]

    with _service(store, "b", now) as b:
        assert _found(b, 3) == [added]
        assert _found(b, 4) == [newest]
        assert _found(b, 2) == [gone]
        stored = {key for key, _ in b.store.embeddings(row.id)}
        assert set(b.indexes.get(row).ensure().keys().tolist()) == stored and len(stored) == 4
        assert b.verify_audit_log().ok


def test_a_replica_closed_past_the_bound_never_serves_nor_keeps_a_face_erased_meanwhile(store: SharedStore) -> None:
    now = [1_750_000_000.0]
    _, gone, snapshot = _closed_at(store, now)
    with _service(store, "a", now) as a:
        row = a.store.get_collection("c")
        assert row is not None
        gone_key = a.store.faces_by_ids(row.id, [gone])[gone].key
        a.delete_faces("c", [gone])
        added = _enrol(a, 3)
        _prune_past(a, now)
        assert [seq for seq, _, _ in a.store.changes_since(row.id, 0)] == [a.store.last_change(row.id)]
        if store.url is None:  # one data directory: the eraser removed every replica's snapshot
            assert not snapshot.exists()
        else:  # b's own data directory: its snapshot still holds the erased face, at a pruned change
            assert gone_key in load_index(snapshot)

    with _service(store, "b", now) as b:
        assert not snapshot.exists()  # removed as b opens, unread: it may hold what was erased in the pruned part
        assert _found(b, 2) == []
        assert _found(b, 3) == [added]
        stored = {key for key, _ in b.store.embeddings(row.id)}
        assert gone_key not in stored
        assert set(b.indexes.get(row).ensure().keys().tolist()) == stored
        assert b.verify_audit_log().ok
    assert gone_key not in load_index(snapshot)  # the snapshot b saved as it closed, rebuilt from the faces
