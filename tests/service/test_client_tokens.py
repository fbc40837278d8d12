"""ClientRequestToken on CreateUser, DeleteUser, AssociateFaces and DisassociateFaces: the same
request under a token is carried out once (facetrust.service.idempotency)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.errors import ConflictError, IdempotencyError, InvalidParameterError, NotFoundError
from facetrust.governance.actor import Actor
from facetrust.governance.policy import Policy, Purpose
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.store.client_tokens import WINDOW_S


@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[tuple[FaceService, list[float]]]:
    now = [1_800_000_000.0]
    policy = Policy({"gen": Purpose("gen", min_threshold=0, retention_days=30)}, "gen")
    with FaceService(tmp_path / "data", fake_engine(), policy=policy, clock=lambda: now[0]) as service:
        service.create_collection("c")
        yield service, now


@pytest.fixture
def coll(clocked: tuple[FaceService, list[float]]) -> FaceService:
    return clocked[0]


def _face(service: FaceService, pattern: int = 1) -> str:
    return service.index_faces("c", face_png((20, 20, 100, pattern))).indexed[0].stored.face_id


def _entries(service: FaceService, operation: str) -> list[dict[str, object]]:
    return [
        e.data for e in service.get_audit_log(limit=None, disclose=True).entries if e.data.get("operation") == operation
    ]


def test_a_retried_create_user_succeeds_and_creates_nothing_more(coll: FaceService) -> None:
    coll.create_user("c", "alice", client_token="t-1")
    coll.create_user("c", "alice", client_token="t-1")  # the retry of a request whose answer was lost
    assert [u.user_id for u in coll.list_users("c").users] == ["alice"]
    with pytest.raises(ConflictError, match="already exists"):  # a new request is still refused
        coll.create_user("c", "alice", client_token="t-2")
    with pytest.raises(ConflictError, match="already exists"):
        coll.create_user("c", "alice")
    assert [e.get("replayed", False) for e in _entries(coll, "CreateUser")][:2] == [False, True]


def test_a_retried_delete_user_succeeds_once_the_user_is_gone(coll: FaceService) -> None:
    coll.create_user("c", "alice")
    coll.delete_user("c", "alice", client_token="d-1")
    coll.delete_user("c", "alice", client_token="d-1")
    assert coll.list_users("c").users == ()
    with pytest.raises(NotFoundError):
        coll.delete_user("c", "alice", client_token="d-2")


def test_a_token_reused_for_another_request_is_refused_and_changes_nothing(coll: FaceService) -> None:
    coll.create_user("c", "alice", client_token="same")
    with pytest.raises(IdempotencyError, match="'same' was used for another CreateUser"):
        coll.create_user("c", "bob", client_token="same")
    assert [u.user_id for u in coll.list_users("c").users] == ["alice"]
    a = _face(coll)
    coll.associate_faces("c", "alice", [a], client_token="assoc")
    with pytest.raises(IdempotencyError):  # another threshold is another request
        coll.associate_faces("c", "alice", [a], user_match_threshold=90, client_token="assoc")
    coll.create_user("c", "carol", client_token="assoc")  # tokens are per operation
    again = coll.associate_faces("c", "alice", [a], user_match_threshold=75, client_token="assoc")
    assert again.associated == (a,)  # 75 is the default 75.0: the same request


def test_a_retried_associate_gets_the_first_answer_and_matches_nothing_again(coll: FaceService) -> None:
    a, b, other = _face(coll, 1), _face(coll, 1), _face(coll, 2)
    coll.create_user("c", "alice")
    coll.associate_faces("c", "alice", [a])
    first = coll.associate_faces("c", "alice", [b, other], client_token="r")
    assert first.associated == (b,) and [u.face_id for u in first.unsuccessful] == [other]
    coll.disassociate_faces("c", "alice", [b])
    again = coll.associate_faces("c", "alice", [b, other], client_token="r")
    assert again == first  # the kept answer; the retry did not associate b anew
    assert {f.face_id for f in coll.list_faces("c", user_id="alice").faces} == {a}
    last = _entries(coll, "AssociateFaces")[-1]
    assert (last["user_ids"], last["face_ids"], last["replayed"]) == (["alice"], [b], True)


def test_a_retried_disassociate_gets_the_first_answer(coll: FaceService) -> None:
    a, b = _face(coll, 1), _face(coll, 1)
    coll.create_user("c", "alice")
    coll.associate_faces("c", "alice", [a, b])
    first = coll.disassociate_faces("c", "alice", [a], client_token="x")
    assert first.associated == (a,) and first.user.face_count == 1
    again = coll.disassociate_faces("c", "alice", [a], client_token="x")
    assert again == first  # the kept answer: a reported as disassociated, as the first time
    plain = coll.disassociate_faces("c", "alice", [a])
    assert plain.associated == () and plain.unsuccessful == ()  # without the token: already done, ignored
    assert [e.get("replayed", False) for e in _entries(coll, "DisassociateFaces")][-3:] == [False, True, False]


def test_tokens_are_kept_per_api_key(coll: FaceService) -> None:
    one, two = Actor(key_id="k1", role="admin"), Actor(key_id="k2", role="admin")
    coll.create_user("c", "alice", client_token="t", actor=one)
    with pytest.raises(ConflictError, match="already exists"):  # k1's answer is not k2's
        coll.create_user("c", "alice", client_token="t", actor=two)
    coll.create_user("c", "bob", client_token="t", actor=two)  # not a mismatch: k1's token is not k2's
    assert [u.user_id for u in coll.list_users("c").users] == ["alice", "bob"]


@pytest.mark.parametrize("token", ["", "a" * 65, "has space", "semi;colon", 7])
def test_a_malformed_token_is_refused_by_name(coll: FaceService, token: object) -> None:
    with pytest.raises(InvalidParameterError, match="ClientRequestToken"):
        coll.create_user("c", "alice", client_token=token)  # type: ignore[arg-type]
    assert coll.list_users("c").users == ()


def test_an_answer_is_kept_for_a_day(clocked: tuple[FaceService, list[float]]) -> None:
    service, now = clocked
    service.create_user("c", "alice", client_token="t")
    now[0] += WINDOW_S - 60
    service.create_user("c", "alice", client_token="t")
    now[0] += 120  # past the window: the token is forgotten, the request is a new one
    with pytest.raises(ConflictError, match="already exists"):
        service.create_user("c", "alice", client_token="t")
    service.create_user("c", "bob", client_token="t")  # and the token may name another request


def test_erasing_a_face_forgets_the_answers_that_name_it(coll: FaceService) -> None:
    a = _face(coll)
    coll.create_user("c", "alice")
    coll.associate_faces("c", "alice", [a], client_token="t")
    coll.delete_faces("c", [a])
    assert _rows(coll, a) == 0
    again = coll.associate_faces("c", "alice", [a], client_token="t")  # carried out anew: the face is gone
    assert again.associated == () and [u.reasons for u in again.unsuccessful] == [("FACE_NOT_FOUND",)]


def test_deleting_or_erasing_a_user_forgets_its_answers(coll: FaceService) -> None:
    coll.create_user("c", "alice", client_token="make")
    coll.delete_user("c", "alice")
    coll.create_user("c", "alice", client_token="make")  # carried out anew, not replayed
    assert [u.user_id for u in coll.list_users("c").users] == ["alice"]
    a = _face(coll)
    coll.associate_faces("c", "alice", [a], client_token="assoc")
    coll.erase_user("c", "alice")
    assert _rows(coll, "alice") == 0


def test_deleting_the_collection_forgets_its_answers(coll: FaceService) -> None:
    coll.create_user("c", "alice", client_token="t")
    coll.delete_collection("c")
    coll.create_collection("c")
    coll.create_user("c", "alice", client_token="t")  # a new collection: carried out, not replayed
    coll.create_user("c", "alice", client_token="t")
    assert [u.user_id for u in coll.list_users("c").users] == ["alice"]
    with coll.ctx.store.snapshot() as conn:
        assert conn.execute("SELECT count(*) FROM client_tokens").fetchone()[0] == 1


def _rows(service: FaceService, named: str) -> int:
    """How many kept answers mention ``named`` (a face or user id) anywhere."""
    with service.ctx.store.snapshot() as conn:
        rows = conn.execute("SELECT user_id, result FROM client_tokens").fetchall()
    return sum(1 for user_id, result in rows if named in user_id or named in result)


@pytest.mark.parametrize("faces", [{"x"}, object(), "abc", None])
def test_a_malformed_request_under_a_token_is_refused_by_its_own_check(coll: FaceService, faces: object) -> None:
    coll.create_user("c", "alice")
    with pytest.raises(InvalidParameterError, match="FaceIds must be a list"):
        coll.associate_faces("c", "alice", faces, client_token="t")  # type: ignore[arg-type]
