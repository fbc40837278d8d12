"""IndexFaces, ListFaces, DeleteFaces."""

from __future__ import annotations

from typing import Any

from facetrust.governance.actor import Actor
from facetrust.server.metrics import IndexAnswer
from facetrust.server.operations.base import COLLECTION, FACE_IDS, IMAGE, QUALITY_FILTER, Operation, kwargs, page_params
from facetrust.server.protocol import Kind, Member
from facetrust.server.shapes import ATTRIBUTES, face_detail, stored_face, unsuccessful_face
from facetrust.service import FaceService

__all__ = ["OPERATIONS"]

# Rekognition's default for IndexFaces; the searches default to NONE.
INDEX_QUALITY_FILTER = "AUTO"


# IndexFaces indexes at most this many faces of one image; a larger MaxFaces is read as this, as
# Rekognition reads any MaxFaces over its own cap (100) as that cap rather than refusing it
MAX_FACES_PER_IMAGE = 4096


def index_faces(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    asked = dict(p)
    if isinstance(asked.get("MaxFaces"), int) and not isinstance(asked["MaxFaces"], bool):
        asked["MaxFaces"] = min(asked["MaxFaces"], MAX_FACES_PER_IMAGE)
    result = service.index_faces(
        p["CollectionId"],
        p["Image"],
        quality_filter=p.get("QualityFilter", INDEX_QUALITY_FILTER),
        actor=actor,
        **kwargs(asked, {"ExternalImageId": "external_image_id", "MaxFaces": "max_faces"}),
    )
    answer = {
        "FaceRecords": [{"Face": stored_face(f.stored), "FaceDetail": face_detail(f.face)} for f in result.indexed],
        "UnindexedFaces": [{"Reasons": list(u.reasons), "FaceDetail": face_detail(u.face)} for u in result.unindexed],
        "FaceModelVersion": result.model,
    }
    return IndexAnswer(answer, stored=len(result.indexed) - len(result.repeated))  # the metric counts faces stored


def list_faces(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    page = service.list_faces(
        p["CollectionId"],
        actor=actor,
        **kwargs(
            page_params(p),
            {"MaxResults": "max_results", "NextToken": "next_token", "UserId": "user_id", "FaceIds": "face_ids"},
        ),
    )
    out: dict[str, Any] = {"Faces": [stored_face(f) for f in page.faces], "FaceModelVersion": page.model}
    if page.next_token is not None:
        out["NextToken"] = page.next_token
    return out


def delete_faces(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    result = service.delete_faces(p["CollectionId"], p["FaceIds"], actor=actor)
    return {
        "DeletedFaces": list(result.deleted),
        "UnsuccessfulFaceDeletions": [unsuccessful_face(f) for f in result.unsuccessful],
    }


OPERATIONS = (
    Operation(
        "IndexFaces",
        index_faces,
        {
            "CollectionId": COLLECTION,
            "Image": IMAGE,
            "ExternalImageId": Member(Kind.STRING),
            "DetectionAttributes": Member(Kind.STRINGS, choices=ATTRIBUTES),
            "MaxFaces": Member(Kind.INTEGER),
            "QualityFilter": QUALITY_FILTER,
        },
        images=1,
    ),
    Operation(
        "ListFaces",
        list_faces,
        {
            "CollectionId": COLLECTION,
            "NextToken": Member(Kind.STRING),
            "MaxResults": Member(Kind.INTEGER),
            "UserId": Member(Kind.STRING),
            "FaceIds": Member(Kind.STRINGS),
        },
    ),
    Operation("DeleteFaces", delete_faces, {"CollectionId": COLLECTION, "FaceIds": FACE_IDS}),
)
