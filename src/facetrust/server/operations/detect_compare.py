"""DetectFaces and CompareFaces: the engine alone, no collection.

CompareFaces is a biometric comparison: the service runs it under a purpose and writes it to the
audit log like a search (facetrust.service.compare). DetectFaces finds faces without comparing
them to anyone and is not logged.
"""

from __future__ import annotations

from typing import Any

from facetrust.config import PROFILES
from facetrust.governance.actor import Actor
from facetrust.server.operations.base import IMAGE, QUALITY_FILTER, THRESHOLD, Operation
from facetrust.server.protocol import Kind, Member
from facetrust.server.shapes import ATTRIBUTES, bounding_box, face_detail, similarity
from facetrust.service import FaceService

__all__ = ["OPERATIONS"]

MAX_DETECTED_FACES = 100  # DetectFaces "detects the 100 largest faces in the image"

# Rekognition's defaults for CompareFaces.
COMPARE_THRESHOLD = 80.0
COMPARE_QUALITY_FILTER = "NONE"


def detect_faces(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    # Every Attributes value gets the DEFAULT set: facetrust infers no age, gender or emotion. As
    # Rekognition, the 100 largest faces (detect() returns them largest first).
    return {"FaceDetails": [face_detail(f) for f in service.engine.detect(p["Image"])[:MAX_DETECTED_FACES]]}


def compare_faces(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    """On the service's governed path: the purpose is the request's (header x-facetrust-purpose) or the
    policy's default; the service audits it."""
    result = service.compare_faces(
        p["SourceImage"],
        p["TargetImage"],
        threshold=p.get("SimilarityThreshold", COMPARE_THRESHOLD),
        quality_filter=p.get("QualityFilter", COMPARE_QUALITY_FILTER),
        actor=actor,
        profile=p.get("FaceModelProfile"),  # a facetrust extension member (docs/http.md)
    )
    return {
        "SourceImageFace": {
            "BoundingBox": bounding_box(result.source_face.ratio_box),
            "Confidence": float(result.source_face.confidence),
        },
        "FaceMatches": [
            {
                **similarity(m.comparison.similarity, m.comparison.fmr, m.comparison.fmr_is_bound),
                **_unreliable(m.unreliable),
                "Face": face_detail(m.face),
            }
            for m in result.matches
        ],
        "UnmatchedFaces": [face_detail(m.face) for m in result.unmatched],
        "FaceModelVersion": result.model,
        "ScoreNormalisation": result.normalisation,
        **_unreliable(next((m.unreliable for m in result.matches + result.unmatched if m.unreliable), None)),
    }


def _unreliable(reason: str | None) -> dict[str, Any]:
    """facetrust extension fields: whether a comparison's false-match estimate is unreliable, and why."""
    return {"EstimateUnreliable": reason is not None, **({"UnreliableReason": reason} if reason else {})}


OPERATIONS = (
    Operation(
        "DetectFaces",
        detect_faces,
        {"Image": IMAGE, "Attributes": Member(Kind.STRINGS, choices=ATTRIBUTES)},
        images=1,
    ),
    Operation(
        "CompareFaces",
        compare_faces,
        {
            "SourceImage": IMAGE,
            "TargetImage": IMAGE,
            "SimilarityThreshold": THRESHOLD,
            "QualityFilter": QUALITY_FILTER,
            "FaceModelProfile": Member(Kind.STRING, choices=PROFILES),
        },
        images=2,
    ),
)
