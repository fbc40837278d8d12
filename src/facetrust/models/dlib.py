"""dlib's ResNet face recogniser (128-d) with dlib's 5-point alignment, on YuNet-aligned canvases.

The engine aligns every face with YuNet's five landmarks onto a wide *canvas* (``CANVAS``
pixels square, see ``CANVAS_REFERENCE``). dlib's network wants its own face chip (150×150,
padding 0.25), which reaches below the ArcFace-style 112 crop SFace uses, so the canvas
covers the ArcFace template's frame from (-8, -4) to (120, 124). On the canvas the face sits
at a known place: dlib's 5-point shape predictor runs on a fixed rectangle there (where dlib's
own HOG detector puts it, measured on LFW) and ``dlib.get_face_chip`` cuts the chip. Measured
on 40 LFW faces, these embeddings have cosine 0.995 (mean) with dlib's native HOG + shape +
chip pipeline; warping a fixed template square instead gave 0.986.

dlib comes from the optional extra ``facetrust[accurate]`` (PyPI ``dlib-bin`` and
``face_recognition_models``, which carries the pinned weights).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facetrust.align import REFERENCE_112
from facetrust.errors import ConfigurationError
from facetrust.models.catalog import CATALOG

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "CANVAS",
    "CANVAS_REFERENCE",
    "DlibRecogniser",
    "import_dlib",
    "missing_packages",
    "sface_crops",
]

SPEC = CATALOG["dlib-resnet-v1"]
EXTRA = "accurate"

CANVAS = 224
_ORIGIN = (-8.0, -4.0)  # the canvas's top-left corner in the ArcFace 112 template's frame
_SPAN = 128.0  # template units the canvas spans (1.75 canvas pixels per unit at 224)
# REFERENCE_112 moved onto the canvas, in the 112-pixel units that ``align_face`` scales by size/112
CANVAS_REFERENCE: tuple[tuple[float, float], ...] = tuple(
    ((x - _ORIGIN[0]) * 112.0 / _SPAN, (y - _ORIGIN[1]) * 112.0 / _SPAN) for x, y in REFERENCE_112
)
# Where dlib's HOG detector boxes a face, in the template's frame (mean over 40 LFW faces)
_DLIB_BOX = (8.7, 24.8, 94.9, 113.4)


def _to_canvas(value: float, axis: int) -> int:
    return round((value - _ORIGIN[axis]) * CANVAS / _SPAN)


def missing_packages() -> list[str]:
    """The packages of the extra ``facetrust[accurate]`` that are not installed (none: ready)."""
    import importlib.util

    return [p for p in ("dlib", SPEC.carrier_package) if importlib.util.find_spec(p) is None]


def import_dlib() -> Any:
    """The ``dlib`` module, or a ConfigurationError naming the extra that installs it (and the
    package carrying dlib's weights)."""
    missing = missing_packages()
    if missing:
        raise ConfigurationError(
            f"The 'accurate' profile needs {' and '.join(missing)}, not installed: pip install 'facetrust[{EXTRA}]'",
            setting="profile",
        )
    import dlib

    return dlib


def sface_crops(canvases: np.ndarray) -> np.ndarray:
    """The 112×112 ArcFace-template crops (SFace's input) inside canvases (N, CANVAS, CANVAS, 3)."""
    import cv2
    import numpy as np

    x0, y0 = _to_canvas(0.0, 0), _to_canvas(0.0, 1)
    x1, y1 = _to_canvas(112.0, 0), _to_canvas(112.0, 1)
    out = [cv2.resize(c[y0:y1, x0:x1], (112, 112), interpolation=cv2.INTER_AREA) for c in canvases]
    return np.stack(out) if out else np.zeros((0, 112, 112, 3), np.uint8)


class DlibRecogniser:
    """Embeds canvases (N, CANVAS, CANVAS, 3) RGB uint8 into L2-normalised 128-d float32 vectors."""

    name = SPEC.name
    model_id = SPEC.model_id
    input_size = CANVAS
    reference = CANVAS_REFERENCE
    dim = 128

    def __init__(self, model_path: Path, shape_path: Path) -> None:
        dlib = import_dlib()
        self._dlib = dlib
        self._lock = threading.Lock()
        self._net = dlib.face_recognition_model_v1(str(model_path))
        self._shape = dlib.shape_predictor(str(shape_path))
        left, top, right, bottom = _DLIB_BOX
        self._box = dlib.rectangle(_to_canvas(left, 0), _to_canvas(top, 1), _to_canvas(right, 0), _to_canvas(bottom, 1))

    def chips(self, canvases: np.ndarray) -> list[np.ndarray]:
        """dlib's 150×150 face chips, aligned by its 5-point shape predictor on each canvas."""
        import numpy as np

        out = []
        for canvas in canvases:
            image = np.ascontiguousarray(canvas, dtype=np.uint8)
            shape = self._shape(image, self._box)
            out.append(self._dlib.get_face_chip(image, shape, size=150, padding=0.25))
        return out

    def embed(self, crops: np.ndarray) -> np.ndarray:
        import numpy as np

        if crops.ndim != 4 or crops.shape[1:] != (CANVAS, CANVAS, 3):
            raise ValueError(f"crops must be (N, {CANVAS}, {CANVAS}, 3); got {crops.shape}")
        if len(crops) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            chips = self.chips(crops)
            out = np.array([np.array(self._net.compute_face_descriptor(c)) for c in chips], dtype=np.float32)
        normalised: np.ndarray = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return normalised
