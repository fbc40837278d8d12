"""IndexFaces' quality filter: which detected faces are not indexed, and why.

Bars per level (a face must meet all of them; AUTO uses the LOW bars). The confidence bar is
on the detector's raw score × 100 (``Face.raw_score``), not the Rekognition-scale confidence:

=========  ==========  =========  ===============  ======  ========
level      detector    sharpness  brightness       |yaw|   |pitch|
=========  ==========  =========  ===============  ======  ========
LOW        ≥ 50        ≥ 5        5 – 98           ≤ 70°   ≤ 50°
MEDIUM     ≥ 70        ≥ 12       10 – 95          ≤ 55°   ≤ 40°
HIGH       ≥ 85        ≥ 25       20 – 90          ≤ 40°   ≤ 30°
=========  ==========  =========  ===============  ======  ========

Whatever the level (NONE included), a face smaller than the engine's minimum size is
refused with SMALL_BOUNDING_BOX, and a face whose landmarks fall outside the image (cut off
by the frame) with LOW_FACE_QUALITY: the recogniser cannot be trusted with either.
On LFW and UTKFace samples the LOW bars refuse under 1 % of faces (docs/collections.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from facetrust.errors import InvalidParameterError
from facetrust.service.types import UnindexedFace
from facetrust.types import Face

__all__ = ["QUALITY_FILTERS", "check_quality_filter", "rejection_reasons", "split_faces"]

QUALITY_FILTERS = ("NONE", "AUTO", "LOW", "MEDIUM", "HIGH")


@dataclass(frozen=True)
class _Bars:
    confidence: float
    sharpness: float
    brightness: tuple[float, float]
    yaw: float
    pitch: float


_BARS = {
    "LOW": _Bars(50.0, 5.0, (5.0, 98.0), 70.0, 50.0),
    "MEDIUM": _Bars(70.0, 12.0, (10.0, 95.0), 55.0, 40.0),
    "HIGH": _Bars(85.0, 25.0, (20.0, 90.0), 40.0, 30.0),
}
_BARS["AUTO"] = _BARS["LOW"]


def check_quality_filter(value: object) -> str:
    if value not in QUALITY_FILTERS:
        raise InvalidParameterError(
            f"QualityFilter {value!r} is invalid; use one of {', '.join(QUALITY_FILTERS)}", parameter="QualityFilter"
        )
    return str(value)


def _cut_off(face: Face) -> bool:
    """A landmark outside the image (or not a number). A plain loop: it runs per face of a bulk write."""
    width, height, marks = face.image_width, face.image_height, face.landmarks
    for p in (marks.eye_left, marks.eye_right, marks.nose, marks.mouth_left, marks.mouth_right):
        if not (0.0 <= p.x < width and 0.0 <= p.y < height):
            return True
    return False


def _passes(face: Face, level: str) -> bool:
    """``not rejection_reasons(face, level)`` without building the list: the same tests, written
    the same way (so a NaN fails or passes each exactly as there), stopping at the first that fails."""
    if not face.recognisable or _cut_off(face):
        return False
    bars = _BARS.get(level)
    if bars is None:
        return True
    quality, pose, (low, high) = face.quality, face.pose, bars.brightness
    return not (
        face.raw_score < bars.confidence
        or quality.sharpness < bars.sharpness
        or not low <= quality.brightness <= high
        or abs(pose.yaw) > bars.yaw
        or abs(pose.pitch) > bars.pitch
    )


def rejection_reasons(face: Face, level: str) -> list[str]:
    """Rekognition reason codes for not indexing ``face`` at quality ``level`` ([] = index it)."""
    reasons = []
    if not face.recognisable:
        reasons.append("SMALL_BOUNDING_BOX")
    if _cut_off(face):
        reasons.append("LOW_FACE_QUALITY")
    bars = _BARS.get(level)
    if bars is None:
        return reasons
    if face.raw_score < bars.confidence:  # the detector's own score: these bars were set on it
        reasons.append("LOW_CONFIDENCE")
    if face.quality.sharpness < bars.sharpness:
        reasons.append("LOW_SHARPNESS")
    low, high = bars.brightness
    if not low <= face.quality.brightness <= high:
        reasons.append("LOW_BRIGHTNESS")
    if abs(face.pose.yaw) > bars.yaw or abs(face.pose.pitch) > bars.pitch:
        reasons.append("EXTREME_POSE")
    return reasons


def split_faces(faces: list[Face], level: str, max_faces: int | None) -> tuple[list[Face], list[UnindexedFace]]:
    """The faces IndexFaces keeps (passing ``level``, at most ``max_faces``, in the order given)
    and those it does not, each with its reasons."""
    accepted: list[Face] = []
    unindexed: list[UnindexedFace] = []
    for face in faces:
        if not _passes(face, level):
            unindexed.append(UnindexedFace(tuple(rejection_reasons(face, level)), face))
        elif max_faces is not None and len(accepted) >= max_faces:
            unindexed.append(UnindexedFace(("EXCEEDS_MAX_FACES",), face))
        else:
            accepted.append(face)
    return accepted, unindexed
