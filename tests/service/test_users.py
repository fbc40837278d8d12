from __future__ import annotations

from typing import Any

import pytest

from facetrust.errors import ConflictError, InvalidParameterError, LimitExceededError, NotFoundError
from facetrust.models.fake import face_png
from facetrust.service import FaceService


def _faces(service: FaceService, *patterns: int) -> list[str]:
    return [service.index_faces("c", face_png((20, 20, 100, p))).indexed[0].stored.face_id for p in patterns]


@pytest.fixture
def coll(service: FaceService) -> FaceService:
    service.create_collection("c")
    return service


def test_create_list_and_delete_users(coll: FaceService) -> None:
    for user in ("bob", "alice", "carol"):
        coll.create_user("c", user)
    page = coll.list_users("c", max_results=2)
    assert [u.user_id for u in page.users] == ["alice", "bob"] and page.next_token
    rest = coll.list_users("c", next_token=page.next_token)
    assert [u.user_id for u in rest.users] == ["carol"] and rest.next_token is None
    coll.delete_user("c", "bob")
    assert [u.user_id for u in coll.list_users("c").users] == ["alice", "carol"]


def test_create_user_twice_raises_conflict(coll: FaceService) -> None:
    coll.create_user("c", "alice")
    with pytest.raises(ConflictError):
        coll.create_user("c", "alice")


def test_delete_unknown_user_raises_not_found(coll: FaceService) -> None:
    with pytest.raises(NotFoundError):
        coll.delete_user("c", "ghost")


def test_associate_faces_of_the_same_person(coll: FaceService) -> None:
    a, b = _faces(coll, 1, 1)
    coll.create_user("c", "alice")
    result = coll.associate_faces("c", "alice", [a, b])
    assert result.associated == (a, b) and result.unsuccessful == ()
    assert result.user.face_count == 2
    assert {f.face_id for f in coll.list_faces("c", user_id="alice").faces} == {a, b}


def test_associate_refuses_a_face_that_does_not_match_the_user(coll: FaceService) -> None:
    a, other = _faces(coll, 1, 2)
    coll.create_user("c", "alice")
    coll.associate_faces("c", "alice", [a])
    result = coll.associate_faces("c", "alice", [other])
    assert result.associated == ()
    assert [(u.face_id, u.reasons) for u in result.unsuccessful] == [(other, ("LOW_MATCH_CONFIDENCE",))]


def test_associate_refuses_faces_of_another_user_and_unknown_faces(coll: FaceService) -> None:
    (a,) = _faces(coll, 1)
    coll.create_user("c", "alice")
    coll.create_user("c", "bob")
    coll.associate_faces("c", "alice", [a])
    unknown = "00000000-0000-0000-0000-000000000000"
    result = coll.associate_faces("c", "bob", [a, unknown])
    assert {u.face_id: u.reasons for u in result.unsuccessful} == {
        a: ("ASSOCIATED_TO_A_DIFFERENT_USER",),
        unknown: ("FACE_NOT_FOUND",),
    }


def test_faces_already_so_are_ignored_by_associate_and_disassociate(coll: FaceService) -> None:
    """AWS: a face already associated with the user is "ignored and will not be returned", and so is
    one already disassociated; only a face of another user is an UnsuccessfulFace."""
    a, b = _faces(coll, 1, 1)
    coll.create_user("c", "alice")
    coll.associate_faces("c", "alice", [a])
    again = coll.associate_faces("c", "alice", [a, b])
    assert again.associated == (b,) and again.unsuccessful == () and again.user.face_count == 2
    coll.disassociate_faces("c", "alice", [a])
    twice = coll.disassociate_faces("c", "alice", [a])
    assert twice.associated == () and twice.unsuccessful == ()  # not "ASSOCIATED_TO_A_DIFFERENT_USER"
    coll.create_user("c", "bob")
    other = coll.disassociate_faces("c", "bob", [b])
    assert [(u.face_id, u.reasons, u.user_id) for u in other.unsuccessful] == [
        (b, ("ASSOCIATED_TO_A_DIFFERENT_USER",), "alice")
    ]


def test_a_user_holds_at_most_100_faces(coll: FaceService) -> None:
    coll.create_user("c", "alice")
    faces = [coll.index_faces("c", face_png((20, 20, 100, 5))).indexed[0].stored.face_id for _ in range(101)]
    coll.associate_faces("c", "alice", faces[:100])
    with pytest.raises(LimitExceededError):
        coll.associate_faces("c", "alice", faces[100:])
    with pytest.raises(InvalidParameterError):
        coll.associate_faces("c", "alice", faces)


def test_disassociate_and_deleting_a_user_keep_the_faces(coll: FaceService) -> None:
    a, b = _faces(coll, 1, 1)
    coll.create_user("c", "alice")
    coll.associate_faces("c", "alice", [a, b])
    result = coll.disassociate_faces("c", "alice", [a])
    assert result.associated == (a,) and result.user.face_count == 1
    coll.delete_user("c", "alice")
    assert coll.describe_collection("c").face_count == 2
    assert all(f.user_id is None for f in coll.list_faces("c").faces)


def test_search_users_by_image_finds_the_user_with_the_matching_face(coll: FaceService) -> None:
    a, b, c = _faces(coll, 1, 1, 2)
    coll.create_user("c", "alice")
    coll.create_user("c", "carl")
    coll.associate_faces("c", "alice", [a, b])
    coll.associate_faces("c", "carl", [c])
    result = coll.search_users_by_image("c", face_png((50, 50, 100, 1)))
    assert [m.user.user_id for m in result.matches] == ["alice"]
    assert result.matches[0].user.face_count == 2 and result.matches[0].best_face_id in {a, b}
    assert result.gallery_size == 3


def test_search_users_by_user_id_excludes_that_user(coll: FaceService) -> None:
    a, b = _faces(coll, 1, 1)
    coll.create_user("c", "alice")
    coll.create_user("c", "alias")
    coll.associate_faces("c", "alice", [a])
    coll.associate_faces("c", "alias", [b])
    result = coll.search_users("c", user_id="alice")
    assert [m.user.user_id for m in result.matches] == ["alias"]
    by_face = coll.search_users("c", face_id=a)
    assert [m.user.user_id for m in by_face.matches] == ["alias"]


def test_a_user_search_counts_in_its_gallery_only_the_users_faces_it_compared_with(coll: FaceService) -> None:
    a1, a2, b = _faces(coll, 1, 1, 2)
    coll.create_user("c", "alice")
    coll.create_user("c", "bob")
    coll.associate_faces("c", "alice", [a1, a2])
    coll.associate_faces("c", "bob", [b])

    by_user = coll.search_users("c", user_id="alice", threshold=0)
    by_face = coll.search_users("c", face_id=a1, threshold=0)

    assert by_user.gallery_size == 1  # bob's face: alice's two are the probe
    assert by_face.gallery_size == 2  # alice's other face and bob's
    coll.disassociate_faces("c", "bob", [b])
    alone = coll.search_users("c", user_id="alice", threshold=0)
    assert (alone.gallery_size, alone.fpir, alone.matches) == (0, 0.0, ())


def test_search_users_needs_exactly_one_of_user_and_face(coll: FaceService) -> None:
    with pytest.raises(InvalidParameterError, match="exactly one"):
        coll.search_users("c")


def test_a_user_search_that_would_need_more_neighbours_than_an_index_gives_stops_at_that_many(
    coll: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At threshold 0 every face qualifies, so the search widens until the index's per-query cap
    (MAX_K, here lowered to 32 for a small gallery) instead of asking it for more and failing."""
    import facetrust.index.checks
    import facetrust.service.search

    monkeypatch.setattr(facetrust.index.checks, "MAX_K", 32)
    monkeypatch.setattr(facetrust.service.search, "MAX_K", 32)
    for p in range(0, 40, 3):
        coll.index_faces("c", face_png((10, 10, 90, p), (150, 10, 90, p + 1), (290, 10, 90, p + 2)))
    a = _faces(coll, 100)[0]
    coll.create_user("c", "alice")
    coll.associate_faces("c", "alice", [a])
    result = coll.search_users_by_image("c", face_png((50, 50, 100, 100)), threshold=0)
    assert [m.user.user_id for m in result.matches] == ["alice"]
    assert result.gallery_size == 1


def test_a_user_search_reads_only_the_faces_that_belong_to_a_user(
    coll: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Most of the collection's faces have no user: the search still finds the users, ranks them
    and counts their faces, and the store hands it no face without a user (none could answer)."""
    for p in range(0, 30, 3):
        coll.index_faces("c", face_png((10, 10, 90, p), (150, 10, 90, p + 1), (290, 10, 90, p + 2)))
    a1, a2, b = _faces(coll, 100, 100, 101)
    coll.create_user("c", "alice")
    coll.create_user("c", "bob")
    coll.associate_faces("c", "alice", [a1, a2])
    coll.associate_faces("c", "bob", [b])
    read = coll.store.faces_by_keys
    handed: list[str | None] = []

    def recorded(*args: Any, **kwargs: Any) -> dict[int, Any]:
        found = read(*args, **kwargs)
        handed.extend(f.user_id for f in found.values())
        return found

    monkeypatch.setattr(coll.store, "faces_by_keys", recorded)
    by_image = coll.search_users_by_image("c", face_png((50, 50, 100, 100)), threshold=0)
    by_user = coll.search_users("c", user_id="alice", threshold=0)
    by_face = coll.search_users("c", face_id=a1, threshold=0)

    assert [m.user.user_id for m in by_image.matches] == ["alice", "bob"]
    assert by_image.matches[0].similarity > by_image.matches[1].similarity
    assert (by_image.gallery_size, by_user.gallery_size, by_face.gallery_size) == (3, 1, 2)
    assert [m.user.user_id for m in by_user.matches] == ["bob"]
    assert [(m.user.user_id, m.best_face_id) for m in by_face.matches][:1] == [("alice", a2)]
    assert handed and None not in handed  # 30 faces without a user, none of them read


def test_associating_with_a_user_deleted_meanwhile_links_nothing(
    coll: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    import facetrust.service.users as users

    (a,) = _faces(coll, 1)
    coll.create_user("c", "alice")
    check = users.check_threshold

    def check_then_delete(*args: object) -> float:
        coll.delete_user("c", "alice")  # commits after the first existence check, before the association
        return check(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(users, "check_threshold", check_then_delete)
    with pytest.raises(NotFoundError, match="'alice' is not in collection"):
        coll.associate_faces("c", "alice", [a])
    assert coll.list_faces("c").faces[0].user_id is None


def test_a_users_face_count_leaves_out_expired_faces_as_listings_do(tmp_path: object) -> None:
    from pathlib import Path

    from facetrust.governance.policy import Policy, Purpose
    from facetrust.models.fake import fake_engine

    now = [1_800_000_000.0]
    policy = Policy({"gen": Purpose("gen", min_threshold=0, retention_days=1)}, "gen")
    with FaceService(Path(str(tmp_path)) / "data", fake_engine(), policy=policy, clock=lambda: now[0]) as service:
        service.create_collection("c")
        image = face_png((20, 20, 100, 1))
        first = service.index_faces("c", image).indexed[0].stored.face_id
        service.create_user("c", "u1")
        service.associate_faces("c", "u1", [first])
        now[0] += 43_200
        second = service.index_faces("c", image).indexed[0].stored.face_id
        service.associate_faces("c", "u1", [second], user_match_threshold=0)
        now[0] += 43_200  # the first face has expired, not yet swept
        assert service.describe_collection("c").face_count == 1
        assert [u.face_count for u in service.list_users("c").users] == [1]
        found = service.search_users_by_image("c", image, threshold=0).matches
        assert [m.user.face_count for m in found] == [1]
