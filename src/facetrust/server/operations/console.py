"""facetrust's console extensions (``FacetrustService.<Operation>``): face crops and the review queue."""

from __future__ import annotations

import base64
from typing import Any

from facetrust.governance.actor import Actor
from facetrust.server.operations.base import COLLECTION, FACE_ID, Operation, kwargs
from facetrust.server.protocol import Kind, Member
from facetrust.service import FaceService

__all__ = ["OPERATIONS"]


def get_face_crop(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    image = service.face_crop(p["CollectionId"], p["FaceId"], actor=actor)
    return {"FaceId": p["FaceId"], "ContentType": "image/jpeg", "Image": base64.b64encode(image).decode()}


def list_review_queue(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    asked = kwargs(p, {"CollectionId": "collection", "MaxResults": "limit", "NextToken": "next_token"})
    page = service.review_queue(actor=actor, **asked)
    out: dict[str, Any] = {
        "Searches": [
            {
                "SearchSequence": i.search_seq,
                "At": i.at,
                "Operation": i.operation,
                "CollectionId": i.collection,
                "Threshold": i.threshold,
                "GallerySize": i.gallery_size,
                "SearchedFaceId": i.searched_face_id,
                "Candidates": [
                    {
                        "FaceId": c.face_id,
                        "Similarity": c.similarity,
                        "EstimatedFMR": c.fmr,
                        "FalseMatchRateIsBound": c.fmr_is_bound,
                        "HasCrop": c.has_crop,
                    }
                    for c in i.candidates
                ],
            }
            for i in page.items
        ]
    }
    if page.next_token is not None:
        out["NextToken"] = page.next_token
    return out


OPERATIONS = (
    Operation("GetFaceCrop", get_face_crop, {"CollectionId": COLLECTION, "FaceId": FACE_ID}),
    Operation(
        "ListReviewQueue",
        list_review_queue,
        {"CollectionId": Member(Kind.STRING), "MaxResults": Member(Kind.INTEGER), "NextToken": Member(Kind.STRING)},
    ),
)
