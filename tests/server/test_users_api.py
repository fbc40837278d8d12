"""CreateUser, DeleteUser, ListUsers, AssociateFaces, DisassociateFaces through an unmodified boto3 client."""

from __future__ import annotations

import pytest

from facetrust.models.fake import face_png

from .conftest import Api


@pytest.fixture
def staff(api: Api) -> Api:
    api.client.create_collection(CollectionId="staff")
    return api


def faces(api: Api, *specs: tuple[int, int, int, int], width: int = 400, height: int = 300) -> list[str]:
    out = api.client.index_faces(CollectionId="staff", Image={"Bytes": face_png(*specs, width=width, height=height)})
    return [r["Face"]["FaceId"] for r in out["FaceRecords"]]


def test_create_user_then_list_users_shows_it_active(staff: Api) -> None:
    assert set(staff.client.create_user(CollectionId="staff", UserId="ann")) == {"ResponseMetadata"}

    assert staff.client.list_users(CollectionId="staff")["Users"] == [{"UserId": "ann", "UserStatus": "ACTIVE"}]


def test_create_an_existing_user_is_a_conflict(staff: Api) -> None:
    staff.client.create_user(CollectionId="staff", UserId="ann")

    with pytest.raises(staff.client.exceptions.ConflictException, match="'ann' already exists"):
        staff.client.create_user(CollectionId="staff", UserId="ann")


def test_create_user_in_a_missing_collection_is_resource_not_found(api: Api) -> None:
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.client.create_user(CollectionId="nobody", UserId="ann")


def test_delete_user_removes_it_and_a_missing_one_is_resource_not_found(staff: Api) -> None:
    staff.client.create_user(CollectionId="staff", UserId="ann")

    staff.client.delete_user(CollectionId="staff", UserId="ann")

    assert staff.client.list_users(CollectionId="staff")["Users"] == []
    with pytest.raises(staff.client.exceptions.ResourceNotFoundException, match="'ann'"):
        staff.client.delete_user(CollectionId="staff", UserId="ann")


def test_list_users_pages_with_next_token(staff: Api) -> None:
    for name in ("a", "b", "c"):
        staff.client.create_user(CollectionId="staff", UserId=name)

    pages = list(
        staff.client.get_paginator("list_users").paginate(CollectionId="staff", PaginationConfig={"PageSize": 2})
    )

    assert [[u["UserId"] for u in p["Users"]] for p in pages] == [["a", "b"], ["c"]]


def test_list_users_with_a_bad_token_is_invalid_pagination_token(staff: Api) -> None:
    with pytest.raises(staff.client.exceptions.InvalidPaginationTokenException):
        staff.client.list_users(CollectionId="staff", NextToken="eyJrIjoidXNlcnMifQ")


def test_associate_faces_accepts_matching_faces_and_refuses_others_with_reasons(staff: Api) -> None:
    ann = faces(staff, (40, 40, 80, 1))
    more_ann, stranger = faces(staff, (40, 40, 100, 1), (200, 60, 90, 2))
    unknown = "00000000-0000-4000-8000-000000000000"
    staff.client.create_user(CollectionId="staff", UserId="ann")
    staff.client.associate_faces(CollectionId="staff", UserId="ann", FaceIds=ann)

    out = staff.client.associate_faces(CollectionId="staff", UserId="ann", FaceIds=[more_ann, stranger, unknown])

    assert out["AssociatedFaces"] == [{"FaceId": more_ann}]
    assert out["UnsuccessfulFaceAssociations"] == [
        {"FaceId": stranger, "Reasons": ["LOW_MATCH_CONFIDENCE"]},
        {"FaceId": unknown, "Reasons": ["FACE_NOT_FOUND"]},
    ]
    assert out["UserStatus"] == "ACTIVE"


def test_associate_a_face_of_another_user_names_that_user(staff: Api) -> None:
    (face,) = faces(staff, (40, 40, 80, 1))
    for user in ("ann", "bob"):
        staff.client.create_user(CollectionId="staff", UserId=user)
    staff.client.associate_faces(CollectionId="staff", UserId="ann", FaceIds=[face])

    out = staff.client.associate_faces(CollectionId="staff", UserId="bob", FaceIds=[face])

    assert out["UnsuccessfulFaceAssociations"] == [
        {"FaceId": face, "UserId": "ann", "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]}
    ]


def test_associate_faces_threshold_defaults_to_75(staff: Api) -> None:
    ann = faces(staff, (40, 40, 80, 1))
    (similar,) = faces(staff, (40, 40, 80, 3))  # similarity about 36 to pattern 1 on the fake engine
    staff.client.create_user(CollectionId="staff", UserId="ann")
    staff.client.associate_faces(CollectionId="staff", UserId="ann", FaceIds=ann)

    refused = staff.client.associate_faces(CollectionId="staff", UserId="ann", FaceIds=[similar])
    accepted = staff.client.associate_faces(
        CollectionId="staff", UserId="ann", FaceIds=[similar], UserMatchThreshold=30
    )

    assert refused["UnsuccessfulFaceAssociations"][0]["Reasons"] == ["LOW_MATCH_CONFIDENCE"]
    assert accepted["AssociatedFaces"] == [{"FaceId": similar}]


def test_associate_beyond_100_faces_is_service_quota_exceeded(staff: Api) -> None:
    grid = [(10 + 100 * (i % 11), 10 + 100 * (i // 11), 60, 1) for i in range(66)]
    ids = faces(staff, *grid, width=1110, height=610) + faces(staff, *grid, width=1110, height=610)
    staff.client.create_user(CollectionId="staff", UserId="ann")
    staff.client.associate_faces(CollectionId="staff", UserId="ann", FaceIds=ids[:100])

    with pytest.raises(staff.client.exceptions.ServiceQuotaExceededException, match="limit of 100"):
        staff.client.associate_faces(CollectionId="staff", UserId="ann", FaceIds=ids[100:101])


def test_associate_faces_for_a_missing_user_is_resource_not_found(staff: Api) -> None:
    ids = faces(staff, (40, 40, 80, 1))

    with pytest.raises(staff.client.exceptions.ResourceNotFoundException, match="'nobody'"):
        staff.client.associate_faces(CollectionId="staff", UserId="nobody", FaceIds=ids)


def test_disassociate_faces_unbinds_them(staff: Api) -> None:
    ids = faces(staff, (40, 40, 80, 1))
    unknown = "00000000-0000-4000-8000-000000000000"
    staff.client.create_user(CollectionId="staff", UserId="ann")
    staff.client.associate_faces(CollectionId="staff", UserId="ann", FaceIds=ids)

    out = staff.client.disassociate_faces(CollectionId="staff", UserId="ann", FaceIds=[*ids, unknown])

    assert out["DisassociatedFaces"] == [{"FaceId": ids[0]}]
    assert out["UnsuccessfulFaceDisassociations"] == [{"FaceId": unknown, "Reasons": ["FACE_NOT_FOUND"]}]
    assert out["UserStatus"] == "ACTIVE"
    assert "UserId" not in staff.client.list_faces(CollectionId="staff")["Faces"][0]


@pytest.mark.parametrize("token", ["", "has space", "x" * 65, 12])
def test_a_malformed_client_request_token_is_refused_naming_it(staff: Api, token: object) -> None:
    response = staff.http.post(
        "/",
        headers={"X-Amz-Target": "RekognitionService.CreateUser", "Content-Type": "application/x-amz-json-1.1"},
        json={"CollectionId": "staff", "UserId": "ann", "ClientRequestToken": token},
    )

    assert response.status_code == 400
    assert "ClientRequestToken" in response.json()["message"]
    assert staff.client.list_users(CollectionId="staff")["Users"] == []
