"""NextTokens of ListCollections, ListFaces and ListUsers: short enough for boto3, bound to one
listing of one collection (never outliving it), and refused cleanly when hand-made."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from facetrust.errors import InvalidPaginationTokenError
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.service.validate import MAX_TOKEN, encode_token

LONGEST_COLLECTION = 255  # Rekognition's CollectionId pattern
LONGEST_USER = 128  # and UserId's


def raw_token(text: str) -> str:
    """A token as a client could make one: base64url of any text, without padding."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def collection_id(service: FaceService, name: str) -> int:
    row = service.store.get_collection(name)
    assert row is not None
    return row.id


def index_three(service: FaceService, name: str) -> None:
    for i in range(3):
        service.index_faces(name, face_png((10, 10, 80, i)))


def test_every_token_fits_botocores_255_characters_with_the_longest_ids(service: FaceService) -> None:
    names = ["a" * LONGEST_COLLECTION, "b" * LONGEST_COLLECTION, "c" * LONGEST_COLLECTION]
    for name in names:
        service.create_collection(name)
    index_three(service, names[0])
    for user in ("x" * LONGEST_USER, "y" * LONGEST_USER, "z" * LONGEST_USER):
        service.create_user(names[0], user)

    tokens = [
        service.list_collections(max_results=1).next_token,
        service.list_faces(names[0], max_results=1).next_token,
        service.list_users(names[0], max_results=1).next_token,
        encode_token("faces", 2**63 - 1, 2**63 - 1),  # the largest row id and row key
        encode_token("users", 2**63 - 1, "x" * LONGEST_USER),
        encode_token("collections", "", 2**63 - 1),
    ]

    assert all(token is not None and len(token) <= MAX_TOKEN for token in tokens), [len(t or "") for t in tokens]


def test_the_longest_ids_page_through_every_listing(service: FaceService) -> None:
    names = [c * LONGEST_COLLECTION for c in "abc"]
    users = [c * LONGEST_USER for c in "xyz"]
    for name in names:
        service.create_collection(name)
    for user in users:
        service.create_user(names[1], user)

    listed: list[str] = []
    token: str | None = None
    while (token is not None or not listed) and len(listed) < 10:
        page = service.list_collections(max_results=1, next_token=token)
        listed += page.names
        token = page.next_token
    found: list[str] = []
    token = None
    while (token is not None or not found) and len(found) < 10:
        users_page = service.list_users(names[1], max_results=1, next_token=token)
        found += [u.user_id for u in users_page.users]
        token = users_page.next_token

    assert (listed, found) == (names, users)


def test_collections_are_listed_once_each_while_others_come_and_go(service: FaceService) -> None:
    for name in ("m", "b", "x", "a"):
        service.create_collection(name)

    first = service.list_collections(max_results=2)
    service.delete_collection("b")  # the last one listed: where the token stands
    service.delete_collection("x")  # one not yet listed
    service.create_collection("0")  # made during the listing: listed after those made before
    rest = service.list_collections(max_results=10, next_token=first.next_token)

    assert first.names + rest.names == ("m", "b", "a", "0")


@pytest.mark.parametrize("nested", ["[" * 1500, "{" * 1500])
def test_a_deeply_nested_token_is_an_invalid_pagination_token(service: FaceService, nested: str) -> None:
    service.create_collection("c")
    token = raw_token(nested)

    for listing in (
        lambda: service.list_collections(next_token=token),
        lambda: service.list_faces("c", next_token=token),
        lambda: service.list_users("c", next_token=token),
    ):
        with pytest.raises(InvalidPaginationTokenError, match="not a token this listing issued"):
            listing()


def test_a_token_longer_than_any_issued_is_refused_by_its_length(service: FaceService) -> None:
    service.create_collection("c")
    token = encode_token("users", collection_id(service, "c"), "u" * 300)

    with pytest.raises(InvalidPaginationTokenError, match="1–255 characters"):
        service.list_users("c", next_token=token)


@pytest.fixture(params=["sqlite", "postgresql"])
def either_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FaceService]:
    """The service on SQLite, and on PostgreSQL (skipped when none can start)."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    svc = FaceService(tmp_path / "data", fake_engine(), store=url)
    yield svc
    svc.close()


@pytest.mark.parametrize("position", ["\x00", "alice\x00", "has space", "ü", "u" * (LONGEST_USER + 1), ""])
def test_a_user_token_whose_position_is_no_user_id_is_refused(either_store: FaceService, position: str) -> None:
    service = either_store
    service.create_collection("c")
    service.create_user("c", "alice")
    token = encode_token("users", collection_id(service, "c"), position)

    with pytest.raises(InvalidPaginationTokenError, match="start again"):
        service.list_users("c", next_token=token)


def test_a_collection_token_whose_position_is_a_name_is_refused(either_store: FaceService) -> None:
    either_store.create_collection("c")

    with pytest.raises(InvalidPaginationTokenError, match="start again"):
        either_store.list_collections(next_token=encode_token("collections", "", "a\x00"))


Listing = Callable[[FaceService, str | None], str | None]
LISTINGS: dict[str, Listing] = {
    "faces": lambda s, token: s.list_faces("c", max_results=1, next_token=token).next_token,
    "users": lambda s, token: s.list_users("c", max_results=1, next_token=token).next_token,
}


def fill(service: FaceService) -> None:
    service.create_collection("c")
    index_three(service, "c")
    for user in ("u1", "u2", "u3"):
        service.create_user("c", user)


@pytest.mark.parametrize("kind", sorted(LISTINGS))
def test_a_token_is_refused_once_its_collection_is_deleted_and_made_again(service: FaceService, kind: str) -> None:
    fill(service)
    token = LISTINGS[kind](service, None)
    service.delete_collection("c")
    fill(service)  # the same name, the same users: another collection

    with pytest.raises(InvalidPaginationTokenError, match="start again"):
        LISTINGS[kind](service, token)


def issued_token(service: FaceService, kind: str) -> str | None:
    return (
        service.list_collections(max_results=1).next_token if kind == "collections" else LISTINGS[kind](service, None)
    )


@pytest.mark.parametrize(
    ("issued", "used"), [("faces", "users"), ("users", "faces"), ("collections", "faces"), ("collections", "users")]
)
def test_a_token_of_another_listing_is_refused(service: FaceService, issued: str, used: str) -> None:
    fill(service)
    service.create_collection("d")
    token = issued_token(service, issued)

    with pytest.raises(InvalidPaginationTokenError, match="start again"):
        LISTINGS[used](service, token)


@pytest.mark.parametrize("kind", sorted(LISTINGS))
def test_a_token_of_another_collection_is_refused(service: FaceService, kind: str) -> None:
    fill(service)
    token = issued_token(service, kind)
    service.create_collection("e")
    listing = FaceService.list_faces if kind == "faces" else FaceService.list_users

    with pytest.raises(InvalidPaginationTokenError, match="start again"):
        listing(service, "e", next_token=token)


def test_a_token_of_the_previous_release_is_refused(service: FaceService) -> None:
    fill(service)  # those tokens named the collection, and ListCollections' the last name listed

    for listing, token in (
        (lambda t: service.list_faces("c", next_token=t), encode_token("faces", "c", 1)),
        (lambda t: service.list_users("c", next_token=t), encode_token("users", "c", "u1")),
        (lambda t: service.list_collections(next_token=t), encode_token("collections", "", "c")),
    ):
        with pytest.raises(InvalidPaginationTokenError, match="start again"):
            listing(token)
