"""YuNet face detector (OpenCV Zoo, 2023mar) run through OpenCV's FaceDetectorYN."""

from __future__ import annotations

import functools
import json
import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from facetrust.models.base import Detection
from facetrust.models.catalog import CATALOG

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["CONFIDENCE_FILE", "FINEST_FACE", "YuNetDetector", "calibrated_confidence"]

SPEC = CATALOG["yunet-2023mar"]
CONFIDENCE_FILE = "confidence-yunet-2023mar.json"
FINEST_FACE = 40
"""The narrowest face (box width, pixels of the image YuNet is given) ``detect_down_to`` relies on
finding. Measured on LFW faces pasted into 1920×1080 frames: at full size every face of a 32–37 px
box was found (10 of 10), at 4/5 size 1 of 10 faces of a 41 px box was missed; faces of a 26 px box
are found about half the time, none under 16 px (docs/video.md#redaction)."""


class YuNetDetector:
    """Detects faces with YuNet. Large images are scaled down to ``max_side`` first (so a face
    that shrinks below ``FINEST_FACE`` pixels is missed: ``detect_down_to`` finds those too).

    ``score_threshold`` (0–1) drops weaker candidates; ``nms_threshold`` is the IoU above
    which overlapping boxes are merged.
    """

    name = SPEC.name
    model_id = SPEC.model_id

    def __init__(
        self, model_path: Path, *, score_threshold: float = 0.5, nms_threshold: float = 0.3, max_side: int = 640
    ) -> None:
        import cv2

        self._max_side = max_side
        self._nms_threshold = nms_threshold
        self._lock = threading.Lock()
        # OpenCV 5 warns on stderr that its new graph engine ignores the (default) target: noise
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self._net = cv2.FaceDetectorYN.create(str(model_path), "", (320, 320), score_threshold, nms_threshold, 5000)
        finally:
            cv2.utils.logging.setLogLevel(level)

    def detect(self, image: np.ndarray) -> list[Detection]:
        return self._detect(image, self._max_side)

    def detect_down_to(self, image: np.ndarray, smallest_face: float) -> list[Detection]:
        """Every face in ``image`` at least ``smallest_face`` pixels across, however large the image.

        The usual pass (scaled to ``max_side``) finds the large faces; when it shrinks a face of
        ``smallest_face`` below ``FINEST_FACE`` pixels, a second pass runs at the scale where such a
        face is ``FINEST_FACE`` pixels (the full size at most) and the two are merged (NMS). Its cost
        grows with that scale's pixels: at 3840×2160 with faces of 40 px, about 20 times the usual pass.
        """
        longest = max(image.shape[:2])
        coarse = self._detect(image, self._max_side)
        side = min(longest, math.ceil(longest * FINEST_FACE / smallest_face))
        if side <= min(longest, self._max_side):
            return coarse
        return suppress(coarse + self._detect(image, side), self._nms_threshold)

    def _detect(self, image: np.ndarray, max_side: int) -> list[Detection]:
        import cv2

        height, width = image.shape[:2]
        scale = min(1.0, max_side / max(height, width))
        small = image
        if scale < 1.0:  # scale first, so the colour swap copies the small image, not the large one
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        h, w = bgr.shape[:2]
        with self._lock:
            self._net.setInputSize((w, h))
            _, rows = self._net.detect(bgr)
        if rows is None:
            return []
        sx, sy = width / w, height / h
        out = []
        for row in rows:
            x, y, bw, bh = (float(v) for v in row[:4])
            marks = tuple((float(row[4 + 2 * i]) * sx, float(row[5 + 2 * i]) * sy) for i in range(5))
            score = float(row[14])
            out.append(Detection((x * sx, y * sy, bw * sx, bh * sy), marks, score, calibrated_confidence(score)))
        return out


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def suppress(detections: list[Detection], threshold: float) -> list[Detection]:
    """Non-maximum suppression: the best-scored of every group of boxes overlapping above ``threshold`` (IoU)."""
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: d.score, reverse=True):
        if all(_iou(det.box, k.box) <= threshold for k in kept):
            kept.append(det)
    return kept


@functools.cache
def _confidence_map() -> tuple[float, float]:
    """(a, b) of the shipped map, fitted by bench/confidence.py (aggregate numbers only)."""
    from importlib.resources import files

    data = json.loads(files("facetrust.data").joinpath(CONFIDENCE_FILE).read_text())
    return float(data["a"]), float(data["b"])


def calibrated_confidence(score: float) -> float:
    """YuNet's score (0–1) on Rekognition's 0–100 confidence scale: 100·σ(a·logit(score) + b),
    fitted on YuNet's candidates for faces and non-faces (docs/engine.md)."""
    a, b = _confidence_map()
    p = min(max(score, 1e-6), 1 - 1e-6)
    z = a * math.log(p / (1 - p)) + b
    return 100.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
