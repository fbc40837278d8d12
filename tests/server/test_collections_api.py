"""CreateCollection, DeleteCollection, DescribeCollection, ListCollections through an unmodified boto3 client."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from facetrust.models.fake import face_png
from facetrust.service.validate import encode_token

from .conftest import Api


def test_create_collection_returns_status_local_arn_and_model(api: Api) -> None:
    out = api.client.create_collection(CollectionId="staff")

    assert out["StatusCode"] == 200
    assert out["CollectionArn"] == "arn:facetrust:rekognition:local:collection/staff"
    assert out["FaceModelVersion"] == api.service.engine.model_id == "fake-recogniser:0"
    assert out["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/x-amz-json-1.1"


def test_create_collection_twice_is_resource_already_exists(api: Api) -> None:
    api.client.create_collection(CollectionId="staff")

    with pytest.raises(api.client.exceptions.ResourceAlreadyExistsException, match="'staff' already exists"):
        api.client.create_collection(CollectionId="staff")


def test_create_collection_with_an_invalid_id_is_invalid_parameter(api: Api) -> None:
    with pytest.raises(api.client.exceptions.InvalidParameterException, match="CollectionId 'no spaces!'"):
        api.client.create_collection(CollectionId="no spaces!")


def test_create_collection_refuses_tags_other_than_the_purpose(api: Api) -> None:
    with pytest.raises(api.client.exceptions.InvalidParameterException, match="Tags other than"):
        api.client.create_collection(CollectionId="staff", Tags={"team": "a"})


def test_describe_collection_counts_faces_and_users(api: Api) -> None:
    api.client.create_collection(CollectionId="staff")
    api.client.index_faces(CollectionId="staff", Image={"Bytes": face_png((40, 40, 80, 1), (200, 60, 90, 2))})
    api.client.create_user(CollectionId="staff", UserId="ann")

    out = api.client.describe_collection(CollectionId="staff")

    assert (out["FaceCount"], out["UserCount"]) == (2, 1)
    assert out["CollectionARN"] == "arn:facetrust:rekognition:local:collection/staff"
    assert out["FaceModelVersion"] == "fake-recogniser:0"
    age = dt.datetime.now(dt.UTC) - out["CreationTimestamp"]
    assert dt.timedelta(0) <= age < dt.timedelta(minutes=1)


def test_describe_a_missing_collection_is_resource_not_found(api: Api) -> None:
    with pytest.raises(api.client.exceptions.ResourceNotFoundException, match="'nobody' does not exist"):
        api.client.describe_collection(CollectionId="nobody")


def test_the_documented_hook_keeps_the_erasure_receipt_of_delete_collection(api: Api) -> None:
    api.client.create_collection(CollectionId="gone")
    face = api.client.index_faces(CollectionId="gone", Image={"Bytes": face_png((20, 20, 100, 1))})["FaceRecords"][0]

    out = api.calibrated.delete_collection(CollectionId="gone")

    assert out["StatusCode"] == 200
    assert (out["Receipt"]["What"], out["Receipt"]["FaceIds"]) == ("collection", [face["Face"]["FaceId"]])


def test_delete_collection_removes_it(api: Api) -> None:
    api.client.create_collection(CollectionId="staff")

    assert api.client.delete_collection(CollectionId="staff")["StatusCode"] == 200
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.client.describe_collection(CollectionId="staff")


def test_delete_a_missing_collection_is_resource_not_found(api: Api) -> None:
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.client.delete_collection(CollectionId="nobody")


def test_list_collections_pages_with_next_token(api: Api) -> None:
    names = [f"c{i}" for i in range(5)]
    for name in names:
        api.client.create_collection(CollectionId=name)

    first = api.client.list_collections(MaxResults=2)
    second = api.client.list_collections(MaxResults=2, NextToken=first["NextToken"])
    third = api.client.list_collections(MaxResults=2, NextToken=second["NextToken"])

    assert first["CollectionIds"] + second["CollectionIds"] + third["CollectionIds"] == names
    assert "NextToken" not in third
    assert first["FaceModelVersions"] == ["fake-recogniser:0"] * 2


def test_list_collections_works_with_botos_paginator(api: Api) -> None:
    for i in range(3):
        api.client.create_collection(CollectionId=f"c{i}")

    pages = list(api.client.get_paginator("list_collections").paginate(PaginationConfig={"PageSize": 2}))

    assert [p["CollectionIds"] for p in pages] == [["c0", "c1"], ["c2"]]


def test_list_collections_with_a_foreign_token_is_invalid_pagination_token(api: Api) -> None:
    with pytest.raises(api.client.exceptions.InvalidPaginationTokenException):
        api.client.list_collections(NextToken="not-a-token")


@pytest.mark.parametrize("position", [-1, 2**63, True, 1.5, "c0", "\ud800", None])
def test_list_collections_with_a_forged_position_is_invalid_pagination_token(api: Api, position: object) -> None:
    forged = encode_token("collections", "", position)  # type: ignore[arg-type]  # a row id is what it pages by

    with pytest.raises(api.client.exceptions.InvalidPaginationTokenException):
        api.client.list_collections(NextToken=forged)


def test_list_collections_with_a_deeply_nested_token_is_invalid_pagination_token(api: Api) -> None:
    nested = base64.urlsafe_b64encode(b"[" * 1500).decode().rstrip("=")  # json.loads would recurse past its limit

    with pytest.raises(api.client.exceptions.InvalidPaginationTokenException):
        api.client.list_collections(NextToken=nested)


def test_list_collections_with_max_results_zero_gets_the_default_page(api: Api) -> None:
    """Rekognition's model allows MaxResults 0; it gives the default page (1,000), as no MaxResults does."""
    for name in ("a", "b"):
        api.client.create_collection(CollectionId=name)

    out = api.client.list_collections(MaxResults=0)

    assert (out["CollectionIds"], "NextToken" in out) == (["a", "b"], False)
