"""Landmarks of a face turned in the picture, found again with the face turned upright.

The detector's landmarks lean towards an upright face: on a head turned 30° in the picture, the eye
line it reports is turned about 13°, and the crop aligned on those landmarks is still turned
(``bench/tilt.py``: 17 % of LFW photos turned 30° no longer matched themselves at Similarity 80,
81 % at 45°). So for a face whose eye line is turned more than ``STRAIGHTEN_ABOVE_DEG``, a patch
around it is turned upright by that angle and the detector looks again; the landmarks it finds
there, mapped back into the picture, are closer to the face's own, and the eye line they give is
turned further. Twice, or until what is left is under ``RESIDUAL_DEG``. The face's box and score
stay the first detection's. A face nearer upright (on LFW and UTKFace, all but about 0.5 %) is
left as the detector found it, so that embeddings and the tables fitted on them stay as they were.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from facetrust.models.base import Detection, Detector

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["RESIDUAL_DEG", "ROUNDS", "STRAIGHTEN_ABOVE_DEG", "eye_line_deg", "straightened"]

STRAIGHTEN_ABOVE_DEG = 10.0  # an eye line turned more than this is looked at again, turned upright
RESIDUAL_DEG = 2.0  # what is left after a round under this: done
ROUNDS = 2  # at most this many looks again
_PATCH = 2.2  # the patch's side, in face sizes: the face with some of its surroundings
MAX_PATCH = 640  # pixels: a larger face's patch is scaled down to this (the detector scales to it anyway)


def eye_line_deg(landmarks: tuple[tuple[float, float], ...]) -> float:
    """The angle of the eye line, in degrees: positive when the right eye (in the picture) is lower,
    as ``Pose.roll``."""
    (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
    return math.degrees(math.atan2(ry - ly, rx - lx))


def straightened(detector: Detector, rgb: np.ndarray, det: Detection) -> Detection:
    """``det`` with its landmarks found again on a patch turned upright, when its eye line is turned
    more than ``STRAIGHTEN_ABOVE_DEG``; ``det`` itself otherwise, or when the detector finds no face
    at the patch's centre."""
    import cv2
    import numpy as np

    marks = np.asarray(det.landmarks, dtype=np.float64)
    angle = eye_line_deg(det.landmarks)
    if abs(angle) <= STRAIGHTEN_ABOVE_DEG:
        return det
    left, top, width, height = det.box
    reach = _PATCH * max(width, height)
    scale = min(1.0, MAX_PATCH / reach)  # never a patch larger than the detector looks at
    side = max(32, int(round(reach * scale)))
    for _ in range(ROUNDS):
        centre = marks.mean(axis=0)
        # counter-clockwise by the tilt, scaled, the face's centre at the patch's
        turn = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
        turn[:, 2] += side / 2.0 - centre
        patch = cv2.warpAffine(rgb, turn, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        found = _at_centre(detector.detect(np.ascontiguousarray(patch)), side, width * scale)
        if found is None:
            break
        back = cv2.invertAffineTransform(turn)
        points = np.asarray(found.landmarks, dtype=np.float64) @ back[:, :2].T + back[:, 2]
        mx, my = points.mean(axis=0)
        if not (left <= mx <= left + width and top <= my <= top + height):  # another face's: keep these
            break
        marks = points
        angle = eye_line_deg(tuple(map(tuple, marks)))
        if abs(angle) < RESIDUAL_DEG:
            break
    if np.array_equal(marks, np.asarray(det.landmarks, dtype=np.float64)):
        return det
    return Detection(det.box, tuple((float(x), float(y)) for x, y in marks), det.score, det.confidence)


def _at_centre(found: list[Detection], side: int, width: float) -> Detection | None:
    """The face the patch was centred on: of the detections whose box holds the patch's centre and
    whose width is within half to twice the face's (``width``, in patch pixels), the one whose box
    centre is nearest the patch's (not the largest: a head behind the face holds the centre too);
    None if there is none."""
    middle = side / 2.0

    def off(d: Detection) -> float:
        return (d.box[0] + d.box[2] / 2.0 - middle) ** 2 + (d.box[1] + d.box[3] / 2.0 - middle) ** 2

    holding = [
        d
        for d in found
        if d.box[0] <= middle <= d.box[0] + d.box[2]
        and d.box[1] <= middle <= d.box[1] + d.box[3]
        and 0.5 * width <= d.box[2] <= 2.0 * width
    ]
    return min(holding, key=off) if holding else None
