"""IndexFaces, ListFaces, DeleteFaces through an unmodified boto3 client."""

from __future__ import annotations

import re
from typing import Any

import pytest

from facetrust.models.fake import face_png
from facetrust.service.validate import encode_token

from .conftest import MAX_IMAGE_BYTES, Api

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DETAIL_KEYS = {"BoundingBox", "Landmarks", "Pose", "Quality", "Confidence"}


@pytest.fixture
def staff(api: Api) -> Api:
    api.client.create_collection(CollectionId="staff")
    return api


def index(api: Api, *faces: tuple[int, int, int, int], **kw: Any) -> Any:
    return api.client.index_faces(CollectionId="staff", Image={"Bytes": face_png(*faces)}, **kw)


def test_index_faces_stores_each_face_with_its_detail(staff: Api) -> None:
    out = index(staff, (40, 40, 80, 1), (200, 60, 100, 2), ExternalImageId="photo-1", DetectionAttributes=["ALL"])

    records = out["FaceRecords"]
    assert len(records) == 2
    assert out["UnindexedFaces"] == []
    assert out["FaceModelVersion"] == "fake-recogniser:0"
    first = records[0]  # the largest face first
    assert UUID.fullmatch(first["Face"]["FaceId"]) and UUID.fullmatch(first["Face"]["ImageId"])
    assert first["Face"]["ImageId"] == records[1]["Face"]["ImageId"]
    assert first["Face"]["ExternalImageId"] == "photo-1"
    assert first["Face"]["BoundingBox"] == pytest.approx({"Width": 0.25, "Height": 1 / 3, "Left": 0.5, "Top": 0.2})
    assert set(first["FaceDetail"]) == DETAIL_KEYS  # ALL asked for, no age, gender or emotion inferred
    assert [m["Type"] for m in first["FaceDetail"]["Landmarks"]] == [
        "eyeLeft",
        "eyeRight",
        "nose",
        "mouthLeft",
        "mouthRight",
    ]
    assert staff.client.describe_collection(CollectionId="staff")["FaceCount"] == 2


def test_index_faces_of_the_same_image_and_external_image_id_again_saves_nothing_twice(staff: Api) -> None:
    """As Rekognition documents: botocore retries IndexFaces (no ClientRequestToken) when an answer
    is lost, and the retry must not leave the faces stored twice."""
    first = index(staff, (40, 40, 80, 1), (200, 60, 100, 2), ExternalImageId="photo-1")
    again = index(staff, (40, 40, 80, 1), (200, 60, 100, 2), ExternalImageId="photo-1")
    assert [r["Face"] for r in again["FaceRecords"]] == [r["Face"] for r in first["FaceRecords"]]
    assert staff.client.describe_collection(CollectionId="staff")["FaceCount"] == 2
    other = index(staff, (40, 40, 80, 1), (200, 60, 100, 2), ExternalImageId="photo-2")
    assert {r["Face"]["FaceId"] for r in other["FaceRecords"]}.isdisjoint(
        r["Face"]["FaceId"] for r in first["FaceRecords"]
    )
    assert staff.client.describe_collection(CollectionId="staff")["FaceCount"] == 4


def test_index_faces_landmarks_are_ratios_inside_the_face_box(staff: Api) -> None:
    detail = index(staff, (40, 40, 80, 1))["FaceRecords"][0]["FaceDetail"]
    box = detail["BoundingBox"]
    marks = {m["Type"]: (m["X"], m["Y"]) for m in detail["Landmarks"]}

    for x, y in marks.values():
        assert box["Left"] < x < box["Left"] + box["Width"]
        assert box["Top"] < y < box["Top"] + box["Height"]
    assert marks["eyeLeft"][0] < marks["eyeRight"][0]  # eyeLeft is on the left of the picture


def test_index_faces_beyond_max_faces_are_unindexed(staff: Api) -> None:
    out = index(staff, (40, 40, 80, 1), (200, 60, 100, 2), MaxFaces=1)

    assert len(out["FaceRecords"]) == 1
    assert [u["Reasons"] for u in out["UnindexedFaces"]] == [["EXCEEDS_MAX_FACES"]]
    assert set(out["UnindexedFaces"][0]["FaceDetail"]) == DETAIL_KEYS


def test_index_faces_reads_a_max_faces_over_its_cap_as_the_cap(staff: Api) -> None:
    out = index(staff, (40, 40, 80, 1), (200, 60, 100, 2), MaxFaces=100_000)  # boto3 sends it: no maximum in the model

    assert len(out["FaceRecords"]) == 2 and out["UnindexedFaces"] == []


def test_index_faces_refuses_a_face_too_small_to_recognise(staff: Api) -> None:
    out = index(staff, (40, 40, 30, 1))

    assert out["FaceRecords"] == []
    assert "SMALL_BOUNDING_BOX" in out["UnindexedFaces"][0]["Reasons"]


def test_index_faces_into_a_missing_collection_is_resource_not_found(api: Api) -> None:
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.client.index_faces(CollectionId="nobody", Image={"Bytes": face_png((40, 40, 80, 1))})


def test_index_faces_with_an_unknown_quality_filter_is_invalid_parameter(staff: Api) -> None:
    with pytest.raises(staff.client.exceptions.InvalidParameterException, match="QualityFilter 'ULTRA'"):
        index(staff, (40, 40, 80, 1), QualityFilter="ULTRA")


def test_index_faces_of_bytes_that_are_no_image_is_invalid_image_format(staff: Api) -> None:
    with pytest.raises(staff.client.exceptions.InvalidImageFormatException):
        staff.client.index_faces(CollectionId="staff", Image={"Bytes": b"GIF89a not supported"})


def test_an_s3_image_is_invalid_parameter_saying_send_bytes(staff: Api) -> None:
    with pytest.raises(staff.client.exceptions.InvalidParameterException, match=r"S3Object is not supported.*Bytes"):
        staff.client.index_faces(CollectionId="staff", Image={"S3Object": {"Bucket": "photos", "Name": "a.jpg"}})


def test_an_image_over_max_image_bytes_is_image_too_large(staff: Api) -> None:
    with pytest.raises(staff.client.exceptions.ImageTooLargeException, match=f"the limit is {MAX_IMAGE_BYTES}") as err:
        staff.client.index_faces(CollectionId="staff", Image={"Bytes": b"\xff\xd8\xff" + bytes(MAX_IMAGE_BYTES)})
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_body_far_over_the_limit_is_image_too_large_with_413(staff: Api) -> None:
    with pytest.raises(staff.client.exceptions.ImageTooLargeException, match="request body is") as err:
        staff.client.index_faces(CollectionId="staff", Image={"Bytes": bytes(8 * MAX_IMAGE_BYTES)})
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert staff.client.describe_collection(CollectionId="staff")["FaceCount"] == 0  # and the server goes on


def test_list_faces_pages_through_every_face(staff: Api) -> None:
    for pattern in range(5):
        index(staff, (40, 40, 80, pattern))

    pages = list(
        staff.client.get_paginator("list_faces").paginate(CollectionId="staff", PaginationConfig={"PageSize": 2})
    )

    assert [len(p["Faces"]) for p in pages] == [2, 2, 1]
    assert len({f["FaceId"] for p in pages for f in p["Faces"]}) == 5
    assert pages[0]["FaceModelVersion"] == "fake-recogniser:0"
    assert set(pages[0]["Faces"][0]) == {"FaceId", "BoundingBox", "ImageId", "Confidence"}


def test_list_faces_with_max_results_zero_gets_the_default_page(staff: Api) -> None:
    for pattern in range(3):
        index(staff, (40, 40, 80, pattern))

    out = staff.client.list_faces(CollectionId="staff", MaxResults=0)

    assert (len(out["Faces"]), "NextToken" in out) == (3, False)


def test_list_faces_by_face_ids_and_by_user(staff: Api) -> None:
    ids = [r["Face"]["FaceId"] for r in index(staff, (40, 40, 80, 1), (200, 60, 100, 1))["FaceRecords"]]
    staff.client.create_user(CollectionId="staff", UserId="ann")
    staff.client.associate_faces(CollectionId="staff", UserId="ann", FaceIds=ids[:1])

    by_id = staff.client.list_faces(CollectionId="staff", FaceIds=ids[1:])["Faces"]
    by_user = staff.client.list_faces(CollectionId="staff", UserId="ann")["Faces"]

    assert [f["FaceId"] for f in by_id] == ids[1:]
    assert [(f["FaceId"], f["UserId"]) for f in by_user] == [(ids[0], "ann")]


def test_face_ids_filter_with_user_id_and_are_paged_by_max_results(staff: Api) -> None:
    """AWS: FaceIds and UserId are each "to filter results with", and MaxResults is the page size."""
    ids = [r["Face"]["FaceId"] for r in index(staff, *((40 + 60 * i, 40, 50, i) for i in range(5)))["FaceRecords"]]
    staff.client.create_user(CollectionId="staff", UserId="ann")
    staff.client.associate_faces(CollectionId="staff", UserId="ann", FaceIds=ids[:1], UserMatchThreshold=0)

    theirs = staff.client.list_faces(CollectionId="staff", UserId="ann", FaceIds=ids[:3])["Faces"]
    assert [f["FaceId"] for f in theirs] == ids[:1]  # were all three, and without their UserId
    pages = list(
        staff.client.get_paginator("list_faces").paginate(
            CollectionId="staff", FaceIds=[ids[3], *ids[1:4]], PaginationConfig={"PageSize": 2}
        )
    )
    assert [[f["FaceId"] for f in p["Faces"]] for p in pages] == [ids[1:3], ids[3:4]]  # each once, two a page


def test_list_faces_with_a_token_of_another_listing_is_invalid_pagination_token(staff: Api) -> None:
    for i in range(3):
        staff.client.create_collection(CollectionId=f"c{i}")
    token = staff.client.list_collections(MaxResults=1)["NextToken"]

    with pytest.raises(staff.client.exceptions.InvalidPaginationTokenException):
        staff.client.list_faces(CollectionId="staff", NextToken=token)


@pytest.mark.parametrize("position", [2**63, 10**30, -1, -(2**63) - 1, "x", 1.5, None])
def test_list_faces_with_a_forged_position_is_invalid_pagination_token(staff: Api, position: object) -> None:
    index(staff, (40, 40, 80, 1))
    row = staff.service.store.get_collection("staff")
    assert row is not None
    forged = encode_token("faces", row.id, position)  # type: ignore[arg-type]  # what a client could build

    with pytest.raises(staff.client.exceptions.InvalidPaginationTokenException, match="start again"):
        staff.client.list_faces(CollectionId="staff", NextToken=forged)
    assert len(staff.client.list_faces(CollectionId="staff")["Faces"]) == 1


def test_delete_faces_reports_the_deleted_and_the_unknown(staff: Api) -> None:
    ids = [r["Face"]["FaceId"] for r in index(staff, (40, 40, 80, 1), (200, 60, 100, 2))["FaceRecords"]]
    unknown = "00000000-0000-4000-8000-000000000000"

    out = staff.client.delete_faces(CollectionId="staff", FaceIds=[ids[0], unknown])

    assert out["DeletedFaces"] == [ids[0]]
    assert out["UnsuccessfulFaceDeletions"] == [{"FaceId": unknown, "Reasons": ["FACE_NOT_FOUND"]}]
    assert staff.client.describe_collection(CollectionId="staff")["FaceCount"] == 1


def test_delete_faces_with_a_malformed_face_id_is_invalid_parameter(staff: Api) -> None:
    with pytest.raises(staff.client.exceptions.InvalidParameterException, match="FaceIds 'ABC'"):
        staff.client.delete_faces(CollectionId="staff", FaceIds=["ABC"])
