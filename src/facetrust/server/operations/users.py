"""CreateUser, DeleteUser, ListUsers, AssociateFaces, DisassociateFaces."""

from __future__ import annotations

from typing import Any

from facetrust.governance.actor import Actor
from facetrust.server.operations.base import COLLECTION, FACE_IDS, THRESHOLD, USER_ID, Operation, kwargs
from facetrust.server.protocol import Kind, Member
from facetrust.server.shapes import unsuccessful_face
from facetrust.service import FaceService
from facetrust.service.users import ASSOCIATE_THRESHOLD

__all__ = ["OPERATIONS"]


# botocore sends a fresh one with each call and the same one with each retry of it: the same request
# under a token is carried out once (facetrust.service.idempotency).
CLIENT_TOKEN = Member(Kind.STRING, pattern=r"[a-zA-Z0-9_-]{1,64}")  # Rekognition's pattern and length


def create_user(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    service.create_user(p["CollectionId"], p["UserId"], client_token=p.get("ClientRequestToken"), actor=actor)
    return {}


def delete_user(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    service.delete_user(p["CollectionId"], p["UserId"], client_token=p.get("ClientRequestToken"), actor=actor)
    return {}


def list_users(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    page = service.list_users(
        p["CollectionId"], actor=actor, **kwargs(p, {"MaxResults": "max_results", "NextToken": "next_token"})
    )
    out: dict[str, Any] = {"Users": [{"UserId": u.user_id, "UserStatus": u.status} for u in page.users]}
    if page.next_token is not None:
        out["NextToken"] = page.next_token
    return out


def associate_faces(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    result = service.associate_faces(
        p["CollectionId"],
        p["UserId"],
        p["FaceIds"],
        user_match_threshold=p.get("UserMatchThreshold", ASSOCIATE_THRESHOLD),
        client_token=p.get("ClientRequestToken"),
        actor=actor,
    )
    return {
        "AssociatedFaces": [{"FaceId": f} for f in result.associated],
        "UnsuccessfulFaceAssociations": [unsuccessful_face(f) for f in result.unsuccessful],
        "UserStatus": result.user.status,
    }


def disassociate_faces(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    result = service.disassociate_faces(
        p["CollectionId"], p["UserId"], p["FaceIds"], client_token=p.get("ClientRequestToken"), actor=actor
    )
    return {
        "DisassociatedFaces": [{"FaceId": f} for f in result.associated],
        "UnsuccessfulFaceDisassociations": [unsuccessful_face(f) for f in result.unsuccessful],
        "UserStatus": result.user.status,
    }


_USER = {"CollectionId": COLLECTION, "UserId": USER_ID, "ClientRequestToken": CLIENT_TOKEN}

OPERATIONS = (
    Operation("CreateUser", create_user, _USER),
    Operation("DeleteUser", delete_user, _USER),
    Operation(
        "ListUsers",
        list_users,
        {"CollectionId": COLLECTION, "MaxResults": Member(Kind.INTEGER), "NextToken": Member(Kind.STRING)},
    ),
    Operation(
        "AssociateFaces",
        associate_faces,
        {**_USER, "FaceIds": FACE_IDS, "UserMatchThreshold": THRESHOLD},
    ),
    Operation("DisassociateFaces", disassociate_faces, {**_USER, "FaceIds": FACE_IDS}),
)
