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

__all__ = ["CONFIDENCE_FILE", "YuNetDetector", "calibrated_confidence"]

SPEC = CATALOG["yunet-2023mar"]
CONFIDENCE_FILE = "confidence-yunet-2023mar.json"


class YuNetDetector:
    """Detects faces with YuNet. Large images are scaled down to ``max_side`` first.

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
        self._lock = threading.Lock()
        # OpenCV 5 warns on stderr that its new graph engine ignores the (default) target: noise
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self._net = cv2.FaceDetectorYN.create(str(model_path), "", (320, 320), score_threshold, nms_threshold, 5000)
        finally:
            cv2.utils.logging.setLogLevel(level)

    def detect(self, image: np.ndarray) -> list[Detection]:
        import cv2

        height, width = image.shape[:2]
        scale = min(1.0, self._max_side / max(height, width))
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
