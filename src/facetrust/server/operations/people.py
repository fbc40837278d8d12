"""facetrust's people extensions (``FacetrustService.<Operation>``): clusters and corrections."""

from __future__ import annotations

from typing import Any

from facetrust.governance.actor import Actor
from facetrust.people.types import PeoplePage, Person
from facetrust.server.operations.base import COLLECTION, FACE_IDS, THRESHOLD, USER_ID, Operation, kwargs
from facetrust.server.protocol import Kind, Member
from facetrust.service import FaceService

__all__ = ["OPERATIONS"]

CLUSTER_ID = Member(Kind.STRING, required=True)


def _person(p: Person) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ClusterId": p.cluster_id,
        "Size": p.size,
        "Cohesion": p.cohesion,
        "RepresentativeFaceId": p.representative_face_id,
        "UserId": p.user_id,
    }
    if p.face_ids:
        out["FaceIds"] = list(p.face_ids)
    return out


def _page(page: PeoplePage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "People": [_person(p) for p in page.people],
        "UnclusteredFaces": page.unclustered,
        "Threshold": page.threshold,
    }
    if page.next_token is not None:
        out["NextToken"] = page.next_token
    return out


def list_people(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    paging = kwargs(p, {"MaxResults": "limit", "NextToken": "next_token"})
    return _page(service.list_people(p["CollectionId"], actor=actor, **paging))


def cluster_faces(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    paging = kwargs(p, {"MaxResults": "limit"})
    return _page(service.cluster_faces(p["CollectionId"], threshold=p.get("Threshold"), actor=actor, **paging))


def describe_person(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    return {"Person": _person(service.describe_person(p["CollectionId"], p["ClusterId"], actor=actor))}


def merge_people(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    return {"Person": _person(service.merge_people(p["CollectionId"], p["ClusterIds"], actor=actor))}


def split_person(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    person = service.split_person(p["CollectionId"], p["ClusterId"], p["FaceIds"], actor=actor)
    return {"Person": _person(person)}


def name_person(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    result = service.name_person(p["CollectionId"], p["ClusterId"], p["UserId"], actor=actor)
    return {
        "UserId": result.user_id,
        "ClusterId": result.cluster_id,
        "AssociatedFaces": [{"FaceId": f} for f in result.associated],
        "SkippedFaces": [{"FaceId": f, "Reason": why} for f, why in result.skipped],
        "JoinedClusterIds": list(result.joined),
    }


_CLUSTER = {"CollectionId": COLLECTION, "ClusterId": CLUSTER_ID}

OPERATIONS = (
    Operation(
        "ListPeople",
        list_people,
        {"CollectionId": COLLECTION, "MaxResults": Member(Kind.INTEGER), "NextToken": Member(Kind.STRING)},
    ),
    Operation(
        "ClusterFaces",
        cluster_faces,
        {"CollectionId": COLLECTION, "Threshold": THRESHOLD, "MaxResults": Member(Kind.INTEGER)},
    ),
    Operation("DescribePerson", describe_person, _CLUSTER),
    Operation(
        "MergePeople", merge_people, {"CollectionId": COLLECTION, "ClusterIds": Member(Kind.STRINGS, required=True)}
    ),
    Operation("SplitPerson", split_person, {**_CLUSTER, "FaceIds": FACE_IDS}),
    Operation("NamePerson", name_person, {**_CLUSTER, "UserId": USER_ID}),
)
