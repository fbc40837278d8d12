"""Rekognition response shapes built from facetrust's result types (boxes and landmarks as ratios).

Attributes facetrust deliberately does not infer (age, gender, emotions, smile, ...) are
never present. Calibrated extras sit next to each ``Similarity`` (see docs/http.md).
"""

from __future__ import annotations

from typing import Any

from facetrust.service.types import ProbeEstimate, StoredFace, UnsuccessfulFace
from facetrust.types import Face, Pose, Quality, RatioBox

__all__ = [
    "ATTRIBUTES",
    "bounding_box",
    "collection_arn",
    "face_detail",
    "landmarks",
    "similarity",
    "stored_face",
    "unsuccessful_face",
]

# Rekognition's Attribute enum: every value is accepted, and the answer is the same for all
# of them: the DEFAULT set (box, landmarks, pose, quality, confidence).
ATTRIBUTES = (
    "DEFAULT",
    "ALL",
    "AGE_RANGE",
    "BEARD",
    "EMOTIONS",
    "EYE_DIRECTION",
    "EYEGLASSES",
    "EYES_OPEN",
    "GENDER",
    "MOUTH_OPEN",
    "MUSTACHE",
    "FACE_OCCLUDED",
    "SMILE",
    "SUNGLASSES",
)


def collection_arn(name: str) -> str:
    """A made-up, local ARN: facetrust has no AWS account or region."""
    return f"arn:facetrust:rekognition:local:collection/{name}"


def bounding_box(box: RatioBox) -> dict[str, float]:
    return {"Width": float(box.width), "Height": float(box.height), "Left": float(box.left), "Top": float(box.top)}


def landmarks(face: Face) -> list[dict[str, Any]]:
    """The five landmarks as ratios of the image size; ``eye_left`` (left in the picture) is ``eyeLeft``."""
    marks = face.landmarks
    named = (
        ("eyeLeft", marks.eye_left),
        ("eyeRight", marks.eye_right),
        ("nose", marks.nose),
        ("mouthLeft", marks.mouth_left),
        ("mouthRight", marks.mouth_right),
    )
    w, h = face.image_width, face.image_height
    return [{"Type": kind, "X": float(p.x) / w, "Y": float(p.y) / h} for kind, p in named]


def pose(p: Pose) -> dict[str, float]:
    return {"Roll": float(p.roll), "Yaw": float(p.yaw), "Pitch": float(p.pitch)}


def quality(q: Quality) -> dict[str, float]:
    return {"Brightness": float(q.brightness), "Sharpness": float(q.sharpness)}


def face_detail(face: Face) -> dict[str, Any]:
    """A ``FaceDetail`` (also a ``ComparedFace``): box, landmarks, pose, quality, confidence; nothing inferred."""
    return {
        "BoundingBox": bounding_box(face.ratio_box),
        "Landmarks": landmarks(face),
        "Pose": pose(face.pose),
        "Quality": quality(face.quality),
        "Confidence": float(face.confidence),
        "DetectorScore": float(face.raw_score),  # facetrust's: the detector's own score × 100
    }


def stored_face(face: StoredFace) -> dict[str, Any]:
    """A ``Face`` record of a collection."""
    out: dict[str, Any] = {
        "FaceId": face.face_id,
        "BoundingBox": bounding_box(face.box),
        "ImageId": face.image_id,
        "Confidence": float(face.confidence),
    }
    if face.external_image_id is not None:
        out["ExternalImageId"] = face.external_image_id
    if face.user_id is not None:
        out["UserId"] = face.user_id
    return out


def similarity(value: float, fmr: float, fmr_is_bound: bool) -> dict[str, Any]:
    """``Similarity`` with facetrust's calibrated extras beside it."""
    return {
        "Similarity": float(value),
        "EstimatedFalseMatchRate": float(fmr),
        "FalseMatchRateIsBound": bool(fmr_is_bound),
    }


def estimate(found: ProbeEstimate) -> dict[str, Any]:
    """How a search estimated its own error rates: facetrust extension fields."""
    out: dict[str, Any] = {
        "EstimateMethod": found.method,
        "EstimateUnreliable": found.unreliable is not None,
    }
    if found.fmr is not None:
        out["ProbeFalseMatchRate"] = float(found.fmr)
    if found.unreliable is not None:
        out["UnreliableReason"] = found.unreliable
    return out


def unsuccessful_face(face: UnsuccessfulFace) -> dict[str, Any]:
    """An ``UnsuccessfulFace{Deletion,Association,Disassociation}``: the face, its user, the reasons."""
    out: dict[str, Any] = {"FaceId": face.face_id, "Reasons": list(face.reasons)}
    if face.user_id is not None:
        out["UserId"] = face.user_id
    return out
