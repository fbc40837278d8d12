"""Operations that another writer overtakes between their checks and their transaction: each is
refused or sees the store as it is when it writes, and every attempt is logged. The interleaving is
forced (the other writer runs just before the operation's write transaction), not left to timing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from facetrust.errors import NotFoundError
from facetrust.governance import audit
from facetrust.models.fake import face_png
from facetrust.service import FaceService


def before_next_write(monkeypatch: pytest.MonkeyPatch, service: FaceService, other: Callable[[], object]) -> None:
    """Run ``other`` (another writer) just before the next write transaction begins."""
    real = service.store.transaction
    waiting = [other]

    @contextmanager
    def overtaken() -> Iterator[object]:
        if waiting:
            waiting.pop()()
        with real() as conn:
            yield conn

    monkeypatch.setattr(service.store, "transaction", overtaken)


def _with_ann(service: FaceService, pattern: int, collection: str = "c") -> str:
    """A collection holding user ann with one face of the fake person ``pattern``; that face's id."""
    service.create_collection(collection)
    service.create_user(collection, "ann")
    face_id = service.index_faces(collection, face_png((20, 20, 100, pattern))).indexed[0].stored.face_id
    service.associate_faces(collection, "ann", [face_id], user_match_threshold=0)
    return face_id


def _remade(service: FaceService) -> Callable[[], str]:
    def remake() -> str:
        service.delete_collection("c")
        return _with_ann(service, 7)

    return remake


def _last(service: FaceService, operation: str) -> dict[str, object]:
    entries = [e.data for e in audit.entries(service.store.connection()) if e.data.get("operation") == operation]
    return entries[-1]


@pytest.mark.parametrize("operation", ["EraseUser", "DeleteCollection"])
def test_an_erasure_of_a_collection_made_again_meanwhile_is_refused_and_leaves_the_new_one_whole(
    service: FaceService, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    _with_ann(service, 3)
    remade: list[str] = []
    before_next_write(monkeypatch, service, lambda: remade.append(_remade(service)()))
    with pytest.raises(NotFoundError, match="Collection 'c' does not exist"):
        service.erase_user("c", "ann") if operation == "EraseUser" else service.delete_collection("c")
    assert [f.face_id for f in service.list_faces("c").faces] == remade
    assert [u.user_id for u in service.list_users("c").users] == ["ann"]
    assert _last(service, operation)["outcome"] == "NotFound"


def test_a_subject_erasure_reaches_a_collection_made_just_before_its_transaction(
    service: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.create_collection("c")
    first = service.index_faces("c", face_png((20, 20, 100, 3)), external_image_id="p1").indexed[0].stored.face_id
    made: list[str] = []

    def another_collection() -> None:
        service.create_collection("d")
        made.append(
            service.index_faces("d", face_png((20, 20, 100, 3)), external_image_id="p1").indexed[0].stored.face_id
        )

    before_next_write(monkeypatch, service, another_collection)
    receipt = service.erase_subject("p1")
    assert sorted(receipt.face_ids) == sorted([first, *made])
    assert service.list_faces("d").faces == ()
    assert service.verify_receipt(receipt)


def test_a_user_made_in_a_collection_deleted_meanwhile_is_not_found_and_logged(
    service: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.create_collection("c")
    before_next_write(monkeypatch, service, lambda: service.delete_collection("c"))
    with pytest.raises(NotFoundError, match="Collection 'c' does not exist"):
        service.create_user("c", "bob")
    assert _last(service, "CreateUser")["outcome"] == "NotFound"


def test_a_full_people_pass_in_a_collection_deleted_meanwhile_is_not_found(
    service: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_ann(service, 3)
    before_next_write(monkeypatch, service, lambda: service.delete_collection("c"))
    with pytest.raises(NotFoundError):
        service.cluster_faces("c")
    assert _last(service, "ClusterFaces")["outcome"] == "NotFound"


def test_of_two_deletions_of_one_user_only_one_succeeds(service: FaceService, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_ann(service, 3)
    before_next_write(monkeypatch, service, lambda: service.delete_user("c", "ann"))
    with pytest.raises(NotFoundError, match="User 'ann' is not in collection 'c'"):
        service.delete_user("c", "ann")
    log = audit.entries(service.store.connection())
    outcomes = [e.data["outcome"] for e in log if e.data["operation"] == "DeleteUser"]
    assert outcomes == ["ok", "NotFound"]


def test_an_operation_stopped_by_a_fault_of_facetrusts_own_is_logged_too(
    service: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.create_collection("c")

    def broken(*args: object) -> None:
        raise RuntimeError("disk controller on fire")

    monkeypatch.setattr(service.store, "insert_user", broken)
    with pytest.raises(RuntimeError):
        service.create_user("c", "bob")
    last = _last(service, "CreateUser")
    assert last["outcome"] == "InternalServerError"
    assert "RuntimeError" in str(last["error"]) and "fire" not in str(last["error"])
    assert service.verify_audit_log().ok


def test_an_operation_paused_on_purpose_is_not_logged_as_a_fault(service: FaceService) -> None:
    from facetrust.governance.actor import LOCAL
    from facetrust.governance.recorder import audited
    from facetrust.service.video_job_run import Interrupted

    before = len(list(audit.entries(service.store.connection())))
    with pytest.raises(Interrupted), audited(service.store, LOCAL, "FaceSearchJob"):
        raise Interrupted  # a shutdown, or a lease another replica took: the job runs again
    assert len(list(audit.entries(service.store.connection()))) == before
