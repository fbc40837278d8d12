"""SearchFaces, SearchFacesByImage, SearchUsers, SearchUsersByImage, with calibrated extras."""

from __future__ import annotations

from typing import Any

from facetrust.governance.actor import Actor
from facetrust.server.operations.base import COLLECTION, FACE_ID, IMAGE, QUALITY_FILTER, THRESHOLD, Operation, kwargs
from facetrust.server.protocol import Kind, Member
from facetrust.server.shapes import bounding_box, estimate, face_detail, similarity, stored_face
from facetrust.service import FaceService
from facetrust.service.types import FaceSearchResult, UserSearchResult

__all__ = ["OPERATIONS"]

# Rekognition's defaults: FaceMatchThreshold and UserMatchThreshold 80, QualityFilter NONE.
MATCH_THRESHOLD = 80.0
SEARCH_QUALITY_FILTER = "NONE"


REVIEW_MARK = ";ReviewRequired=true"
"""Appended to FaceModelVersion when the purpose requires human review: FaceModelVersion is the one
field of every search response that an unmodified boto3 keeps (besides the x-facetrust-review-required
header, in ResponseMetadata.HTTPHeaders), so any client sees that the matches are candidates."""


def _gallery(result: FaceSearchResult | UserSearchResult) -> dict[str, Any]:
    return {
        "FaceModelVersion": result.model + (REVIEW_MARK if result.review_required else ""),
        "GallerySize": result.gallery_size,
        "GalleryFalsePositiveIdentificationRate": float(result.fpir),
        "ReviewRequired": result.review_required,
        "AuditSequence": result.audit_seq,
        **estimate(result.estimate),
    }


def _face_matches(result: FaceSearchResult) -> list[dict[str, Any]]:
    return [{**similarity(m.similarity, m.fmr, m.fmr_is_bound), "Face": stored_face(m.face)} for m in result.matches]


def _user_matches(result: UserSearchResult) -> list[dict[str, Any]]:
    return [
        {
            **similarity(m.similarity, m.fmr, m.fmr_is_bound),
            "User": {"UserId": m.user.user_id, "UserStatus": m.user.status},
        }
        for m in result.matches
    ]


def search_faces(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    result = service.search_faces(
        p["CollectionId"],
        p["FaceId"],
        actor=actor,
        threshold=p.get("FaceMatchThreshold", MATCH_THRESHOLD),
        **kwargs(p, {"MaxFaces": "max_faces"}),
    )
    return {"SearchedFaceId": result.searched_face_id, "FaceMatches": _face_matches(result), **_gallery(result)}


def search_faces_by_image(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    result = service.search_faces_by_image(
        p["CollectionId"],
        p["Image"],
        actor=actor,
        threshold=p.get("FaceMatchThreshold", MATCH_THRESHOLD),
        quality_filter=p.get("QualityFilter", SEARCH_QUALITY_FILTER),
        **kwargs(p, {"MaxFaces": "max_faces"}),
    )
    out: dict[str, Any] = {"FaceMatches": _face_matches(result), **_gallery(result)}
    if result.searched_face is not None:
        out["SearchedFaceBoundingBox"] = bounding_box(result.searched_face.ratio_box)
        out["SearchedFaceConfidence"] = float(result.searched_face.confidence)
    return out


def search_users(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    result = service.search_users(
        p["CollectionId"],
        user_id=p.get("UserId"),
        face_id=p.get("FaceId"),
        actor=actor,
        threshold=p.get("UserMatchThreshold", MATCH_THRESHOLD),
        **kwargs(p, {"MaxUsers": "max_users"}),
    )
    out: dict[str, Any] = {"UserMatches": _user_matches(result), **_gallery(result)}
    if result.searched_face_id is not None:
        out["SearchedFace"] = {"FaceId": result.searched_face_id}
    if result.searched_user_id is not None:
        out["SearchedUser"] = {"UserId": result.searched_user_id}
    return out


def search_users_by_image(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    result = service.search_users_by_image(
        p["CollectionId"],
        p["Image"],
        actor=actor,
        threshold=p.get("UserMatchThreshold", MATCH_THRESHOLD),
        quality_filter=p.get("QualityFilter", SEARCH_QUALITY_FILTER),
        **kwargs(p, {"MaxUsers": "max_users"}),
    )
    out: dict[str, Any] = {"UserMatches": _user_matches(result), "UnsearchedFaces": [], **_gallery(result)}
    if result.searched_face is not None:
        out["SearchedFace"] = {"FaceDetail": face_detail(result.searched_face)}
    return out


_MAX = Member(Kind.INTEGER)

OPERATIONS = (
    Operation(
        "SearchFaces",
        search_faces,
        {"CollectionId": COLLECTION, "FaceId": FACE_ID, "MaxFaces": _MAX, "FaceMatchThreshold": THRESHOLD},
    ),
    Operation(
        "SearchFacesByImage",
        search_faces_by_image,
        {
            "CollectionId": COLLECTION,
            "Image": IMAGE,
            "MaxFaces": _MAX,
            "FaceMatchThreshold": THRESHOLD,
            "QualityFilter": QUALITY_FILTER,
        },
        images=1,
    ),
    Operation(
        "SearchUsers",
        search_users,
        {
            "CollectionId": COLLECTION,
            "UserId": Member(Kind.STRING),
            "FaceId": Member(Kind.STRING),
            "UserMatchThreshold": THRESHOLD,
            "MaxUsers": _MAX,
        },
    ),
    Operation(
        "SearchUsersByImage",
        search_users_by_image,
        {
            "CollectionId": COLLECTION,
            "Image": IMAGE,
            "UserMatchThreshold": THRESHOLD,
            "MaxUsers": _MAX,
            "QualityFilter": QUALITY_FILTER,
        },
        images=1,
    ),
)
