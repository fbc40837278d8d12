"""SFace face recogniser (OpenCV Zoo, 2021dec) run through OpenCV's DNN module."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from facetrust.models.catalog import CATALOG

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["SFaceRecogniser"]

SPEC = CATALOG["sface-2021dec"]


class SFaceRecogniser:
    """Embeds aligned 112×112 RGB crops into L2-normalised 128-d float32 vectors.

    The network takes RGB in 0–255 (it normalises inside); feeding BGR silently degrades
    accuracy, so the channel order is fixed here.
    """

    name = SPEC.name
    model_id = SPEC.model_id
    input_size = 112
    dim = 128

    def __init__(self, model_path: Path) -> None:
        import cv2

        self._lock = threading.Lock()
        self._net = cv2.dnn.readNetFromONNX(str(model_path))

    def embed(self, crops: np.ndarray) -> np.ndarray:
        import numpy as np

        if crops.ndim != 4 or crops.shape[1:] != (112, 112, 3):
            raise ValueError(f"crops must be (N, 112, 112, 3); got {crops.shape}")
        if len(crops) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        blob = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
        with self._lock:
            self._net.setInput(blob)
            out = np.array(self._net.forward(), dtype=np.float32, copy=True).reshape(len(crops), self.dim)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        normalised: np.ndarray = out / np.maximum(norms, 1e-12)
        return normalised
