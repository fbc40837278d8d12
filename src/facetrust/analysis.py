"""Per-face measurements from the detector's output: pose from landmarks, quality of the region."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from facetrust.types import BoundingBox, Face, Landmarks, Point, Pose, Quality

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.models.base import Detection

__all__ = ["build_face", "estimate_pose", "measure_quality"]

# Geometry of an average frontal face, in units of the distance between the eyes:
# how far the nose tip stands in front of the eye/mouth plane, and where it sits vertically
# between the eye line (0) and the mouth line (1) when the head is level.
_NOSE_DEPTH = 0.6
_NOSE_LEVEL = 0.5
_SHARPNESS_SIGMA = 100.0


def estimate_pose(marks: Landmarks) -> Pose:
    """Roll, yaw and pitch in degrees from five landmarks; a coarse geometric estimate.

    Roll is the angle of the eye line. After undoing roll, yaw comes from the nose tip's
    sideways offset from the eye/mouth mid-line and pitch from its height between the eye line
    and the mouth line, both relative to a frontal average face (docs/engine.md). As good as the
    landmarks: ``FaceEngine.detect`` finds those of a face turned more than 10° in the picture
    again with it turned upright (facetrust/straighten.py; bench/tilt.py measures both).
    """
    el, er, no = marks.eye_left, marks.eye_right, marks.nose
    ml, mr = marks.mouth_left, marks.mouth_right
    roll = math.degrees(math.atan2(er.y - el.y, er.x - el.x))
    cos_r, sin_r = math.cos(math.radians(-roll)), math.sin(math.radians(-roll))

    def rot(p: Point) -> tuple[float, float]:
        return (p.x * cos_r - p.y * sin_r, p.x * sin_r + p.y * cos_r)

    (elx, ely), (erx, ery), (nx, ny) = rot(el), rot(er), rot(no)
    (mlx, mly), (mrx, mry) = rot(ml), rot(mr)
    eye_x, eye_y = (elx + erx) / 2, (ely + ery) / 2
    mouth_x, mouth_y = (mlx + mrx) / 2, (mly + mry) / 2
    span = max(math.hypot(erx - elx, ery - ely), math.hypot(mrx - mlx, mry - mly) * 1.3, 1e-6)
    mid_x = (eye_x + mouth_x) / 2
    yaw = math.degrees(math.atan2(nx - mid_x, _NOSE_DEPTH * span))
    height = max(mouth_y - eye_y, 1e-6)
    level = (ny - eye_y) / height
    pitch = math.degrees(math.atan2((_NOSE_LEVEL - level) * height, _NOSE_DEPTH * span))
    return Pose(roll=round(roll, 2), yaw=round(yaw, 2), pitch=round(pitch, 2))


def measure_quality(image: np.ndarray, box: BoundingBox) -> Quality:
    """Brightness and sharpness (0–100) of the face region; see ``facetrust.types.Quality``."""
    import cv2
    import numpy as np

    height, width = image.shape[:2]
    x0, y0 = max(int(box.left), 0), max(int(box.top), 0)
    x1, y1 = min(int(math.ceil(box.left + box.width)), width), min(int(math.ceil(box.top + box.height)), height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return Quality(brightness=0.0, sharpness=0.0)
    region = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    brightness = float(region.mean()) / 255.0 * 100.0
    small = cv2.resize(region, (112, 112), interpolation=cv2.INTER_AREA)
    variance = float(cv2.Laplacian(small, cv2.CV_64F).var())
    sharpness = 100.0 * (1.0 - math.exp(-variance / _SHARPNESS_SIGMA))
    return Quality(brightness=round(brightness, 2), sharpness=round(sharpness, 2))


def build_face(image: np.ndarray, det: Detection, *, min_face_size: int) -> Face:
    """Turn a raw detection into a ``Face`` with pose, quality and recognisability."""
    height, width = image.shape[:2]
    left, top, w, h = det.box
    box = BoundingBox(left=float(left), top=float(top), width=float(w), height=float(h))
    points = [Point(float(x), float(y)) for x, y in det.landmarks]
    marks = Landmarks(*points)
    size = float(min(w, h))
    raw = min(max(det.score, 0.0), 1.0) * 100.0
    recognisable, reason = True, None
    if size < min_face_size:
        recognisable = False
        reason = f"face is {size:.0f} px across; at least {min_face_size} px is needed to recognise it"
    return Face(
        box=box,
        landmarks=marks,
        confidence=round(raw if det.confidence is None else min(max(det.confidence, 0.0), 100.0), 3),
        pose=estimate_pose(marks),
        quality=measure_quality(image, box),
        size=round(size, 2),
        image_width=width,
        image_height=height,
        recognisable=recognisable,
        reason=reason,
        detector_score=round(raw, 3),
    )
