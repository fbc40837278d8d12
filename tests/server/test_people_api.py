"""People over HTTP: FacetrustService.* extension operations, signed and role-checked."""

from __future__ import annotations

import json
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from facetrust.models.fake import face_png

from .test_governance_api import Governed, gov  # noqa: F401  (the signed server fixture)


def call(g: Governed, role: str, operation: str, body: dict[str, Any]) -> httpx.Response:
    """A signed request with ``X-Amz-Target: FacetrustService.<operation>``."""
    key_id, secret = g.keys[role]
    data = json.dumps(body).encode()
    headers = {"X-Amz-Target": f"FacetrustService.{operation}", "Content-Type": "application/x-amz-json-1.1"}
    request = AWSRequest(method="POST", url=g.url + "/", data=data, headers=headers)
    SigV4Auth(Credentials(key_id, secret), "rekognition", "us-east-1").add_auth(request)
    return httpx.post(g.url + "/", content=data, headers=dict(request.headers.items()), timeout=30)


def _collection(g: Governed) -> list[str]:
    g.client("admin").create_collection(CollectionId="c")
    enroller = g.client("enroller")
    return [
        enroller.index_faces(CollectionId="c", Image={"Bytes": face_png((20 + 10 * i, 20, 100, p))})["FaceRecords"][0][
            "Face"
        ]["FaceId"]
        for i, p in enumerate((1, 1, 2, 2, 3))  # moved, so no two requests are alike (replay check)
    ]


def test_people_are_listed_merged_split_and_named_over_http(gov: Governed) -> None:  # noqa: F811
    a1, a2, b1, b2, _ = _collection(gov)
    listed = call(gov, "admin", "ClusterFaces", {"CollectionId": "c", "Threshold": 85})
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert (len(body["People"]), body["UnclusteredFaces"], body["Threshold"]) == (2, 1, 85)
    ids = {p["RepresentativeFaceId"]: p["ClusterId"] for p in body["People"]}
    first, second = ids.get(a1) or ids[a2], ids.get(b1) or ids[b2]

    merged = call(gov, "admin", "MergePeople", {"CollectionId": "c", "ClusterIds": [first, second]}).json()
    assert set(merged["Person"]["FaceIds"]) == {a1, a2, b1, b2}
    split = call(gov, "admin", "SplitPerson", {"CollectionId": "c", "ClusterId": first, "FaceIds": [b2]})
    assert split.json()["Person"]["Size"] == 3
    named = call(gov, "admin", "NamePerson", {"CollectionId": "c", "ClusterId": first, "UserId": "alice"}).json()
    assert {f["FaceId"] for f in named["AssociatedFaces"]} == {a1, a2, b1}
    assert named["JoinedClusterIds"] == []  # the user had no faces elsewhere
    shown = call(gov, "searcher", "DescribePerson", {"CollectionId": "c", "ClusterId": first}).json()["Person"]
    assert (shown["UserId"], shown["Size"]) == ("alice", 3)


def test_a_searcher_may_list_people_but_not_correct_them(gov: Governed) -> None:  # noqa: F811
    _collection(gov)
    assert call(gov, "searcher", "ListPeople", {"CollectionId": "c"}).status_code == 200
    refused = call(gov, "searcher", "MergePeople", {"CollectionId": "c", "ClusterIds": ["a", "b"]})
    assert refused.status_code == 400 and refused.json()["__type"] == "AccessDeniedException"
    assert call(gov, "auditor", "ListPeople", {"CollectionId": "c"}).json()["__type"] == "AccessDeniedException"


def test_an_enroller_cannot_learn_who_a_face_it_enrolled_is_through_people(gov: Governed) -> None:  # noqa: F811
    _collection(gov)
    for operation, body in (
        ("ListPeople", {"CollectionId": "c"}),
        ("DescribePerson", {"CollectionId": "c", "ClusterId": "a"}),
        ("ClusterFaces", {"CollectionId": "c"}),
        ("NamePerson", {"CollectionId": "c", "ClusterId": "a", "UserId": "u"}),
    ):
        refused = call(gov, "enroller", operation, body)
        assert refused.status_code == 400 and refused.json()["__type"] == "AccessDeniedException", operation


def test_an_unknown_cluster_is_resource_not_found(gov: Governed) -> None:  # noqa: F811
    _collection(gov)
    response = call(gov, "searcher", "DescribePerson", {"CollectionId": "c", "ClusterId": "nope"})
    assert response.status_code == 400
    assert response.json()["__type"] == "ResourceNotFoundException" and "nope" in response.json()["message"]


def test_people_are_listed_a_page_at_a_time_over_http(gov: Governed) -> None:  # noqa: F811
    _collection(gov)
    first = call(gov, "admin", "ClusterFaces", {"CollectionId": "c", "Threshold": 85, "MaxResults": 1}).json()
    assert len(first["People"]) == 1 and first["UnclusteredFaces"] == 1 and "NextToken" in first
    rest = call(gov, "searcher", "ListPeople", {"CollectionId": "c", "MaxResults": 5, "NextToken": first["NextToken"]})
    assert rest.status_code == 200, rest.text
    assert len(rest.json()["People"]) == 1 and "NextToken" not in rest.json()
    every = call(gov, "searcher", "ListPeople", {"CollectionId": "c"}).json()["People"]
    assert [p["ClusterId"] for p in every] == [first["People"][0]["ClusterId"], rest.json()["People"][0]["ClusterId"]]
    for body, wrong in (
        ({"CollectionId": "c", "MaxResults": 0}, "InvalidParameterException"),
        ({"CollectionId": "c", "MaxResults": "2"}, "InvalidParameterException"),
        ({"CollectionId": "c", "NextToken": "x" * 300}, "InvalidPaginationTokenException"),
    ):
        refused = call(gov, "searcher", "ListPeople", body)
        assert refused.status_code == 400 and refused.json()["__type"].endswith(wrong), refused.text
