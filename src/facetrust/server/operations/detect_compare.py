"""DetectFaces and CompareFaces: the engine alone, no collection.

CompareFaces is a biometric comparison, so it is written to the audit log like a search (who,
when, the threshold, how many faces, the similarities; never an image or an embedding).
DetectFaces finds faces without comparing them to anyone and is not logged.
"""

from __future__ import annotations

from typing import Any

from facetrust.errors import InvalidImageError, InvalidParameterError
from facetrust.governance.actor import Actor
from facetrust.governance.recorder import audited
from facetrust.server.operations.base import IMAGE, QUALITY_FILTER, THRESHOLD, Operation
from facetrust.server.protocol import Kind, Member
from facetrust.server.shapes import ATTRIBUTES, bounding_box, face_detail, similarity
from facetrust.service import FaceService
from facetrust.service.quality import rejection_reasons

__all__ = ["OPERATIONS"]

# Rekognition's defaults for CompareFaces.
COMPARE_THRESHOLD = 80.0
COMPARE_QUALITY_FILTER = "NONE"


def detect_faces(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    # Every Attributes value gets the DEFAULT set: facetrust infers no age, gender or emotion.
    return {"FaceDetails": [face_detail(f) for f in service.engine.detect(p["Image"])]}


def _decode(service: FaceService, data: bytes, member: str) -> Any:
    try:
        return service.engine.load_image(data)
    except InvalidImageError as exc:
        raise InvalidImageError(exc.message, source=member) from None


def compare_faces(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    with audited(service.store, actor, "CompareFaces") as rec:
        body = _compare(service, p)
        rec.details = {
            "threshold": p.get("SimilarityThreshold", COMPARE_THRESHOLD),
            "target_faces": len(body["FaceMatches"]) + len(body["UnmatchedFaces"]),
            "similarities": [round(m["Similarity"], 4) for m in body["FaceMatches"]],
        }
    return body


def _compare(service: FaceService, p: dict[str, Any]) -> dict[str, Any]:
    engine = service.engine
    source = _decode(service, p["SourceImage"], "SourceImage")
    target = _decode(service, p["TargetImage"], "TargetImage")
    try:
        result = engine.compare(source, target, threshold=p.get("SimilarityThreshold", COMPARE_THRESHOLD))
    except InvalidImageError:  # both images decoded, so the source has no face to compare
        raise InvalidParameterError("There is no recognisable face in SourceImage", parameter="SourceImage") from None
    level = p.get("QualityFilter", COMPARE_QUALITY_FILTER)
    matches, unmatched = list(result.matches), list(result.unmatched)
    if level != "NONE":
        if rejection_reasons(result.source_face, level):
            raise InvalidParameterError(
                f"The largest face in SourceImage does not pass QualityFilter {level}", parameter="SourceImage"
            )
        matches = [m for m in matches if not rejection_reasons(m.face, level)]
        unmatched = [m for m in unmatched if not rejection_reasons(m.face, level)]
    return {
        "SourceImageFace": {
            "BoundingBox": bounding_box(result.source_face.ratio_box),
            "Confidence": float(result.source_face.confidence),
        },
        "FaceMatches": [
            {
                **similarity(m.comparison.similarity, m.comparison.fmr, m.comparison.fmr_is_bound),
                "Face": face_detail(m.face),
            }
            for m in matches
        ],
        "UnmatchedFaces": [face_detail(m.face) for m in unmatched],
        "FaceModelVersion": result.model,
    }


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
        {"SourceImage": IMAGE, "TargetImage": IMAGE, "SimilarityThreshold": THRESHOLD, "QualityFilter": QUALITY_FILTER},
        images=2,
    ),
)
