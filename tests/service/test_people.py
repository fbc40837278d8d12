"""People: clustering a collection's faces, its constraints, and corrections that persist."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetrust.errors import ConflictError, InvalidParameterError, NotFoundError, PurposeRefusedError
from facetrust.governance import audit
from facetrust.governance.policy import Policy, Purpose
from facetrust.models.fake import face_png, fake_engine
from facetrust.people.types import PeoplePage
from facetrust.service import FaceService


def _one(service: FaceService, pattern: int, size: int = 100) -> str:
    """Index one image holding one face of the fake person ``pattern``; its face id."""
    return service.index_faces("c", face_png((20, 20, size, pattern))).indexed[0].stored.face_id


def _groups(page: PeoplePage, service: FaceService) -> list[set[str]]:
    return sorted(
        (set(service.describe_person("c", p.cluster_id).face_ids) for p in page.people), key=lambda g: sorted(g)
    )


@pytest.fixture
def coll(service: FaceService) -> FaceService:
    service.create_collection("c")
    return service


def test_faces_of_one_person_cluster_together_and_a_stranger_stays_unclustered(coll: FaceService) -> None:
    a = [_one(coll, 1, s) for s in (100, 96, 104)]
    b = [_one(coll, 2, s) for s in (100, 92)]
    _one(coll, 3)
    page = coll.cluster_faces("c")
    assert _groups(page, coll) == sorted([set(a), set(b)], key=lambda g: sorted(g))
    assert page.unclustered == 1
    first = page.people[0]
    assert first.size == 3 and first.representative_face_id in a and first.cohesion >= page.threshold


def test_cluster_ids_stay_stable_across_full_passes(coll: FaceService) -> None:
    for p in (1, 1, 2, 2):
        _one(coll, p)
    before = {p.cluster_id for p in coll.cluster_faces("c").people}
    _one(coll, 1)
    after = coll.cluster_faces("c")
    assert {p.cluster_id for p in after.people} == before and after.people[0].size == 3


def test_new_faces_join_a_cluster_or_start_one_without_a_full_pass(coll: FaceService) -> None:
    a = [_one(coll, 1), _one(coll, 1)]
    alone = _one(coll, 3)
    cluster_id = coll.cluster_faces("c").people[0].cluster_id
    joined, mate = _one(coll, 1), _one(coll, 3)
    page = coll.list_people("c")
    assert page.unclustered == 0
    assert set(coll.describe_person("c", cluster_id).face_ids) == {*a, joined}
    assert {alone, mate} in _groups(page, coll)


def test_a_new_face_joins_a_person_with_more_faces_than_its_neighbours_without_a_full_pass(
    coll: FaceService,
) -> None:
    faces = [_one(coll, 3) for _ in range(30)]  # more members than a face's 16 nearest neighbours
    person = coll.cluster_faces("c").people[0]
    assert person.size == 30
    joined = _one(coll, 3)
    page = coll.list_people("c")
    assert [p.size for p in page.people] == [31]
    assert set(coll.describe_person("c", person.cluster_id).face_ids) == {*faces, joined}


def _where(service: FaceService) -> dict[str, str]:
    """Face id → the id of the person it is in."""
    page = service.list_people("c")
    return {f: p.cluster_id for p in page.people for f in service.describe_person("c", p.cluster_id).face_ids}


def test_a_merge_outlives_the_faces_it_was_anchored_to_being_erased_or_split_off(coll: FaceService) -> None:
    a = [_one(coll, 1, size) for size in (100, 96, 104, 92, 98)]
    b = [_one(coll, 2, size) for size in (100, 96, 104)]
    where = {
        f: p.cluster_id
        for p in coll.cluster_faces("c").people
        for f in coll.describe_person("c", p.cluster_id).face_ids
    }
    merged = coll.merge_people("c", [where[a[0]], where[b[0]]])
    coll.delete_faces("c", a[:3])  # the merge's anchors
    coll.cluster_faces("c")
    assert len({_where(coll)[f] for f in a[3:] + b}) == 1
    coll.split_person("c", merged.cluster_id, [b[0]])  # a split of another face keeps the rest merged too
    coll.cluster_faces("c")
    assert len({_where(coll)[f] for f in a[3:] + b[1:]}) == 1


def test_a_users_new_face_joins_the_users_person_not_the_one_it_resembles(coll: FaceService) -> None:
    a = [_one(coll, 1, size) for size in (100, 96, 104)]
    b = [_one(coll, 2, size) for size in (100, 96)]
    coll.cluster_faces("c")
    coll.name_person("c", _where(coll)[a[0]], "alice")
    newcomer = _one(coll, 2, 104)  # resembles b; given to alice before it is placed
    coll.associate_faces("c", "alice", [newcomer], user_match_threshold=0.0)
    where = _where(coll)
    assert where[newcomer] == where[a[0]] != where[b[0]]


def test_faces_of_one_person_given_to_two_users_never_stay_one_person(coll: FaceService) -> None:
    faces = [_one(coll, 1, size) for size in (100, 96, 104)]
    coll.cluster_faces("c")
    coll.create_user("c", "alice")
    coll.create_user("c", "bob")
    coll.associate_faces("c", "alice", [faces[0]])
    coll.associate_faces("c", "bob", [faces[1]])
    where = _where(coll)
    assert where.get(faces[0]) is None or where.get(faces[0]) != where.get(faces[1])


def test_a_user_association_overrides_an_earlier_split_of_the_same_face(coll: FaceService) -> None:
    faces = [_one(coll, 1, size) for size in (100, 96, 104)]
    person = coll.cluster_faces("c").people[0].cluster_id
    coll.name_person("c", person, "alice")
    coll.split_person("c", person, [faces[2]])
    coll.associate_faces("c", "alice", [faces[2]])  # the later correction: it is alice after all
    coll.cluster_faces("c")
    assert len({_where(coll).get(f) for f in faces}) == 1


def test_a_person_with_an_expired_face_still_takes_new_faces(tmp_path: Path) -> None:
    from facetrust.governance.policy import Policy, Purpose

    now = [1_800_000_000.0]
    policy = Policy({"gen": Purpose("gen", min_threshold=0, retention_days=1)}, "gen")
    with FaceService(tmp_path / "data", fake_engine(), policy=policy, clock=lambda: now[0]) as service:
        service.create_collection("c")
        old = [_one(service, 3, size) for size in (100, 96, 104)]
        service.list_people("c")
        now[0] += 46_800
        live = _one(service, 3, 92)
        service.list_people("c")
        now[0] += 43_200  # the first three have expired, not yet swept
        newest = _one(service, 3, 98)
        page = service.list_people("c")  # placed beside the live face, the expired ones left out
        assert [service.describe_person("c", p.cluster_id).face_ids for p in page.people] == [(live, newest)]
        assert not set(old) & {f for p in page.people for f in service.describe_person("c", p.cluster_id).face_ids}


def test_two_faces_of_one_image_never_share_a_cluster(coll: FaceService) -> None:
    both = coll.index_faces("c", face_png((20, 20, 100, 1), (200, 20, 100, 1))).indexed
    other = _one(coll, 1)
    page = coll.cluster_faces("c")
    assert len(page.people) == 1 and page.people[0].size == 2 and page.unclustered == 1
    (group,) = _groups(page, coll)
    assert other in group and len(group & {f.stored.face_id for f in both}) == 1


def test_faces_of_different_users_never_merge(coll: FaceService) -> None:
    a, b = _one(coll, 1), _one(coll, 1)
    for user, face in (("alice", a), ("bob", b)):
        coll.create_user("c", user)
        coll.associate_faces("c", user, [face])
    page = coll.cluster_faces("c")
    assert page.people == () and page.unclustered == 2
    _one(coll, 1)  # joins one of them, never both
    assert [p.size for p in coll.list_people("c").people] == [2]


def test_a_split_face_stays_out_after_a_full_pass(coll: FaceService) -> None:
    faces = [_one(coll, 1, s) for s in (100, 96, 104)]
    cluster_id = coll.cluster_faces("c").people[0].cluster_id
    rest = coll.split_person("c", cluster_id, [faces[0]])
    assert set(rest.face_ids) == set(faces[1:])
    page = coll.cluster_faces("c")
    assert _groups(page, coll) == [set(faces[1:])] and page.people[0].cluster_id == cluster_id
    assert page.unclustered == 1


def test_a_merge_holds_after_a_full_pass(coll: FaceService) -> None:
    a = [_one(coll, 1), _one(coll, 1)]
    b = [_one(coll, 2), _one(coll, 2)]
    ids = [p.cluster_id for p in coll.cluster_faces("c").people]
    merged = coll.merge_people("c", ids)
    assert merged.cluster_id == ids[0] and set(merged.face_ids) == {*a, *b}
    page = coll.cluster_faces("c")
    assert _groups(page, coll) == [{*a, *b}] and page.people[0].cluster_id == ids[0]


def test_a_merge_of_large_clusters_of_unlike_faces_holds_after_a_full_pass(coll: FaceService) -> None:
    sizes = (100, 96, 104, 92, 108, 98, 102, 94)
    a = [_one(coll, 1, s) for s in sizes]
    b = [_one(coll, 8, s) for s in sizes]  # fake persons 1 and 8 are far apart (cosine about -0.1)
    ids = [p.cluster_id for p in coll.cluster_faces("c").people]
    assert len(ids) == 2  # two people by their faces; a human says they are one
    coll.merge_people("c", ids)
    for _ in range(2):  # a full pass, and another after new faces came in (they join by the usual rules)
        page = coll.cluster_faces("c")
        assert page.people[0].cluster_id == ids[0]
        assert set(coll.describe_person("c", ids[0]).face_ids) >= {*a, *b}
        _one(coll, 1, 98), _one(coll, 8, 106)


def test_splitting_every_face_out_of_a_named_cluster_takes_them_all_off_its_user(coll: FaceService) -> None:
    faces = [_one(coll, 1, s) for s in (100, 96, 104)]
    cluster_id = coll.cluster_faces("c").people[0].cluster_id
    coll.name_person("c", cluster_id, "bob")
    assert coll.split_person("c", cluster_id, faces).size == 0
    assert [u.face_count for u in coll.list_users("c").users] == [0]
    assert {f.user_id for f in coll.list_faces("c").faces} == {None}
    assert all(p.user_id is None for p in coll.cluster_faces("c").people)


def test_naming_a_second_cluster_after_an_existing_user_joins_the_two_at_once(coll: FaceService) -> None:
    a = [_one(coll, 1, s) for s in (100, 96)]
    b = [_one(coll, 8, s) for s in (100, 96)]  # fake persons 1 and 8 are far apart: two clusters
    first, second = (p.cluster_id for p in coll.cluster_faces("c").people)
    coll.name_person("c", first, "ann")

    result = coll.name_person("c", second, "ann")

    assert result.joined == (first,)
    page = coll.list_people("c")
    assert [(p.cluster_id, p.size, p.user_id) for p in page.people] == [(second, 4, "ann")]
    assert set(coll.describe_person("c", second).face_ids) == {*a, *b}
    assert _groups(coll.cluster_faces("c"), coll) == [{*a, *b}]  # what a full pass makes too


def test_naming_a_cluster_brings_in_the_users_unclustered_faces(coll: FaceService) -> None:
    faces = [_one(coll, 1, s) for s in (100, 96)]
    loner = _one(coll, 8)
    cluster_id = coll.cluster_faces("c").people[0].cluster_id
    coll.create_user("c", "ann")
    coll.associate_faces("c", "ann", [loner])

    assert coll.name_person("c", cluster_id, "ann").joined == ()

    assert set(coll.describe_person("c", cluster_id).face_ids) == {*faces, loner}
    assert coll.list_people("c").unclustered == 0


def test_naming_does_not_join_a_cluster_with_a_face_of_the_same_image(coll: FaceService) -> None:
    coll.index_faces("c", face_png((20, 20, 100, 1), (200, 20, 100, 8)))
    _one(coll, 1)
    _one(coll, 8)
    first, second = (p.cluster_id for p in coll.cluster_faces("c").people)
    coll.name_person("c", first, "ann")

    assert coll.name_person("c", second, "ann").joined == ()

    assert sorted(p.size for p in coll.list_people("c").people) == [2, 2]


def test_merge_refuses_clusters_with_faces_of_one_image(coll: FaceService) -> None:
    coll.index_faces("c", face_png((20, 20, 100, 1), (200, 20, 100, 2)))
    _one(coll, 1)
    _one(coll, 2)
    ids = [p.cluster_id for p in coll.cluster_faces("c").people]
    with pytest.raises(ConflictError, match="one image"):
        coll.merge_people("c", ids)


def test_merge_needs_two_known_clusters(coll: FaceService) -> None:
    _one(coll, 1)
    _one(coll, 1)
    (person,) = coll.cluster_faces("c").people
    with pytest.raises(InvalidParameterError, match="at least two"):
        coll.merge_people("c", [person.cluster_id, person.cluster_id])
    with pytest.raises(NotFoundError, match="nope"):
        coll.merge_people("c", [person.cluster_id, "nope"])


def test_naming_a_cluster_creates_the_user_and_associates_its_faces(coll: FaceService) -> None:
    faces = {_one(coll, 1), _one(coll, 1)}
    (person,) = coll.cluster_faces("c").people
    result = coll.name_person("c", person.cluster_id, "alice")
    assert set(result.associated) == faces and result.skipped == ()
    assert {f.face_id for f in coll.list_faces("c", user_id="alice").faces} == faces
    assert coll.list_people("c").people[0].user_id == "alice"
    _one(coll, 2)
    _one(coll, 2)
    other = next(p for p in coll.cluster_faces("c").people if p.user_id is None)
    coll.name_person("c", other.cluster_id, "bob")
    with pytest.raises(ConflictError, match="different users"):
        coll.merge_people("c", [person.cluster_id, other.cluster_id])


def test_erasing_a_face_removes_it_from_its_cluster_and_its_corrections(coll: FaceService) -> None:
    faces = [_one(coll, 1, s) for s in (100, 96, 104)]
    cluster_id = coll.cluster_faces("c").people[0].cluster_id
    coll.split_person("c", cluster_id, [faces[0]])
    conn = coll.store.connection()
    assert conn.execute("SELECT count(*) FROM people_links").fetchone()[0] == 2
    coll.delete_faces("c", [faces[1]])
    assert conn.execute("SELECT count(*) FROM people_links").fetchone()[0] == 1
    coll.delete_faces("c", [faces[0]])
    assert conn.execute("SELECT count(*) FROM people_links").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM people_members").fetchone()[0] == 1
    page = coll.list_people("c")  # one face is no person: it is unclustered, as after a split
    assert (page.people, page.unclustered) == ((), 1)


def test_erasing_faces_leaves_no_cohesion_computed_with_them_and_a_lone_face_unclustered(coll: FaceService) -> None:
    a = [_one(coll, 1, s) for s in (100, 96)]
    b = [_one(coll, 2, s) for s in (100, 96)]
    first, second = coll.cluster_faces("c").people
    merged = coll.merge_people("c", [first.cluster_id, second.cluster_id])
    assert merged.cohesion < 90  # two people's faces, scored against one another
    coll.delete_faces("c", b)
    person = coll.describe_person("c", merged.cluster_id)
    assert set(person.face_ids) == set(a)
    assert person.cohesion == 100.0  # a's own two faces, as a full pass says
    coll.delete_faces("c", a[:1])
    page = coll.list_people("c")
    assert (page.people, page.unclustered) == ((), 1)
    with pytest.raises(NotFoundError):
        coll.describe_person("c", merged.cluster_id)


def test_people_operations_are_audited(coll: FaceService) -> None:
    _one(coll, 1)
    _one(coll, 1)
    (person,) = coll.cluster_faces("c").people
    coll.name_person("c", person.cluster_id, "alice")
    ops = [e.data["operation"] for e in audit.entries(coll.store.connection())]
    assert ops[-2:] == ["ClusterFaces", "NamePerson"]
    assert audit.verify_chain(coll.store.connection()).ok


def test_clustering_is_refused_where_the_purpose_refuses_search(tmp_path: Path) -> None:
    policy = Policy(purposes={"enrol-only": Purpose("enrol-only", search=False)}, default_purpose="enrol-only")
    with FaceService(tmp_path / "d", fake_engine(), policy=policy) as svc:
        svc.create_collection("c")
        with pytest.raises(PurposeRefusedError, match="1:N search"):
            svc.list_people("c")


def test_a_threshold_outside_0_to_100_is_refused(coll: FaceService) -> None:
    with pytest.raises(InvalidParameterError, match="Threshold"):
        coll.cluster_faces("c", threshold=101)


def test_a_later_merge_overrides_an_earlier_split(coll: FaceService) -> None:
    faces = [_one(coll, 1, s) for s in (100, 96, 104, 92)]
    cluster_id = coll.cluster_faces("c").people[0].cluster_id
    coll.split_person("c", cluster_id, faces[:2])
    apart = coll.cluster_faces("c")
    assert _groups(apart, coll) == sorted([set(faces[:2]), set(faces[2:])], key=lambda g: sorted(g))
    coll.merge_people("c", [p.cluster_id for p in apart.people])
    assert _groups(coll.cluster_faces("c"), coll) == [set(faces)]
    assert coll.store.connection().execute("SELECT count(*) FROM people_links WHERE kind = 'cannot'").fetchone()[0] == 0


def test_deleting_the_collection_leaves_no_people_rows(coll: FaceService) -> None:
    faces = [_one(coll, 1, s) for s in (100, 96, 104)]
    cluster_id = coll.cluster_faces("c", threshold=85).people[0].cluster_id
    coll.split_person("c", cluster_id, faces[:1])
    coll.delete_collection("c")
    conn = coll.store.connection()
    for table in ("people_settings", "people_clusters", "people_members", "people_links"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table


def _short_lived(tmp_path: Path, now: list[float]) -> FaceService:
    """A service on the clock ``now[0]`` whose collection "c" keeps faces one day."""
    policy = Policy(purposes={"short": Purpose("short", retention_days=1)}, default_purpose="short")
    service = FaceService(tmp_path / "d", fake_engine(), policy=policy, clock=lambda: now[0])
    service.create_collection("c")
    return service


def test_expired_faces_are_nobody_and_faces_indexed_after_them_still_cluster(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    with _short_lived(tmp_path, now) as svc:
        old = [svc.index_faces("c", face_png((20, 20, 100, 1))).indexed[0].stored.face_id for _ in range(3)]
        now[0] += 2 * 86400  # past retention: the three faces are unusable, though not yet swept
        new = [svc.index_faces("c", face_png((20, 20, 100, 2))).indexed[0].stored.face_id for _ in range(2)]
        (person,) = svc.list_people("c").people  # placed one by one, after the expired ones
        assert set(svc.describe_person("c", person.cluster_id).face_ids) == set(new)
        (again,) = svc.cluster_faces("c").people
        assert set(svc.describe_person("c", again.cluster_id).face_ids) == set(new)
        with pytest.raises(NotFoundError):
            svc.face_crop("c", old[0])


def test_a_person_whose_faces_expire_after_clustering_is_gone_and_cannot_be_named(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    with _short_lived(tmp_path, now) as svc:
        old = [svc.index_faces("c", face_png((20, 20, 100, 1))).indexed[0].stored.face_id for _ in range(3)]
        (gone,) = svc.list_people("c").people  # placed while the faces were usable
        now[0] += 12 * 3600
        late = svc.index_faces("c", face_png((20, 20, 100, 1))).indexed[0].stored.face_id
        assert svc.list_people("c").people[0].size == 4
        now[0] += 13 * 3600  # the first three have expired (not swept); the fourth has not
        (person,) = svc.list_people("c").people
        assert person.cluster_id == gone.cluster_id and person.size == 1
        assert person.representative_face_id == late
        assert svc.describe_person("c", gone.cluster_id).face_ids == (late,)
        named = svc.name_person("c", gone.cluster_id, "bob")
        assert named.associated == (late,) and svc.list_users("c").users[0].face_count == 1
        now[0] += 86400  # now all four: the person is nobody
        page = svc.list_people("c")
        assert page.people == () and page.unclustered == 0
        for call in (
            lambda: svc.describe_person("c", gone.cluster_id),
            lambda: svc.name_person("c", gone.cluster_id, "carol"),
            lambda: svc.split_person("c", gone.cluster_id, old[:1]),
        ):
            with pytest.raises(NotFoundError, match="Cluster"):
                call()
        assert [u.user_id for u in svc.list_users("c").users] == ["bob"]


@pytest.mark.parametrize("bad", ["", "a b", "x\ud800", "x" * 65])
def test_a_cluster_id_not_made_by_the_service_is_refused_by_name(coll: FaceService, bad: str) -> None:
    with pytest.raises(InvalidParameterError, match="Cluster id") as caught:
        coll.describe_person("c", bad)
    assert caught.value.parameter == "ClusterId"
    with pytest.raises(InvalidParameterError, match="Cluster id"):
        coll.merge_people("c", ["a", bad])


def test_people_come_a_page_at_a_time_largest_first_and_the_pages_join_up(coll: FaceService) -> None:
    for pattern, size in ((1, 3), (2, 2), (3, 2), (4, 2), (5, 3)):
        for s in range(size):
            _one(coll, pattern, 96 + 4 * s)
    whole = coll.cluster_faces("c")
    assert [p.size for p in whole.people] == [3, 3, 2, 2, 2] and whole.next_token is None
    first = coll.cluster_faces("c", limit=2)  # a pass answers with its first page
    assert [p.cluster_id for p in first.people] == [p.cluster_id for p in whole.people[:2]]
    shown, token, sizes = list(first.people), first.next_token, []
    while token is not None:
        page = coll.list_people("c", limit=2, next_token=token)
        shown += page.people
        sizes.append(len(page.people))
        token = page.next_token
    assert sizes == [2, 1] and shown == list(whole.people)
    assert coll.list_people("c", limit=5).next_token is None  # exactly all: no page follows


def test_a_page_after_its_last_person_grew_or_left_still_lists_each_once(coll: FaceService) -> None:
    for pattern in (1, 1, 2, 2, 3, 3):
        _one(coll, pattern)
    first = coll.cluster_faces("c", limit=1)
    _one(coll, 1)  # the person the page ended on (or another) grows: the order moves
    rest = coll.list_people("c", limit=10, next_token=first.next_token)
    listed = [p.cluster_id for p in first.people] + [p.cluster_id for p in rest.people]
    assert len(listed) == len(set(listed))


@pytest.mark.parametrize("limit", [0, 1001, -1, True, 2.5])
def test_a_page_size_out_of_range_is_refused_before_the_pass(coll: FaceService, limit: object) -> None:
    _one(coll, 1)
    _one(coll, 1)
    with pytest.raises(InvalidParameterError, match="MaxResults"):
        coll.cluster_faces("c", threshold=95.0, limit=limit)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="MaxResults"):
        coll.list_people("c", limit=limit)  # type: ignore[arg-type]
    assert coll.list_people("c").threshold == 90.0  # no pass ran at 95


def test_a_token_of_another_listing_or_collection_is_refused(coll: FaceService) -> None:
    from facetrust.errors import InvalidPaginationTokenError

    for pattern in (1, 1, 2, 2):
        _one(coll, pattern)
    token = coll.cluster_faces("c", limit=1).next_token
    assert token is not None
    coll.create_collection("d")
    with pytest.raises(InvalidPaginationTokenError):
        coll.list_people("d", next_token=token)
    faces_token = coll.list_faces("c", max_results=1).next_token
    with pytest.raises(InvalidPaginationTokenError):
        coll.list_people("c", next_token=faces_token)
    with pytest.raises(InvalidPaginationTokenError):
        coll.list_people("c", next_token="not-a-token")
