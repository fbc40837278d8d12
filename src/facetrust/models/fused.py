"""The 'accurate' profile's recogniser: SFace and dlib fused into one unit vector per face.

A z-score fusion of two cosines, ``w1·(s1−μ1)/σ1 + w2·(s2−μ2)/σ2``, is an affine function of
``a·s1 + b·s2`` with ``a ∝ w1/σ1``, ``b ∝ w2/σ2``. Scaled so ``a + b = 1``, the concatenation
``[√a·u1, √b·u2]`` of the two L2-normalised embeddings is itself a unit vector whose dot
product with another such vector is exactly ``a·s1 + b·s2``. So the fused template is one
vector: the vector indexes, the calibration tables and cohort normalisation work on it as on
any other embedding. ``dlib_share`` is ``b``; it was fitted on LFW (docs/engine.md).
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING

from facetrust.models.dlib import CANVAS, CANVAS_REFERENCE, sface_crops

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    import numpy as np

    from facetrust.models.base import Recogniser

__all__ = [
    "DLIB_SHARE",
    "SFACE_DIM",
    "FusedRecogniser",
    "fuse",
    "fused_model_id",
    "load_fused",
    "sface_part",
    "sface_vectors",
]

NAME = "fused-sface-dlib"
# b, the dlib share of the fused cosine, fitted on LFW View-2 folds 1–2 (bench/accurate.py --fit):
# the best sum of the TARs at FMR 1e-3 and 1e-4 (same-sex impostors); 0.45–0.65 are within 0.1 point
DLIB_SHARE = 0.65
SFACE_DIM = 128  # a fused vector's first SFACE_DIM floats are its SFace part


def fused_model_id(sface_id: str, dlib_id: str, dlib_share: float = DLIB_SHARE) -> str:
    """The fused profile's model id: a hash of both components, the share and the canvas."""
    key = f"{sface_id}|{dlib_id}|{dlib_share:.4f}|canvas{CANVAS}|sface-flip"
    return f"{NAME}:{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def fuse(sface: np.ndarray, dlib: np.ndarray, dlib_share: float) -> np.ndarray:
    """Unit fused vectors from unit SFace and dlib vectors (N, d1), (N, d2) → (N, d1 + d2)."""
    import numpy as np

    if not 0.0 <= dlib_share <= 1.0:
        raise ValueError(f"dlib_share must be within 0–1; got {dlib_share}")
    out = np.concatenate([math.sqrt(1.0 - dlib_share) * sface, math.sqrt(dlib_share) * dlib], axis=1)
    fused: np.ndarray = out.astype(np.float32)
    return fused


def sface_part(fused: np.ndarray, sface_dim: int = SFACE_DIM) -> np.ndarray:
    """The unit SFace embeddings inside fused vectors (N, sface_dim + dlib's dim): their first
    ``sface_dim`` floats, scaled back to unit length. Fusion keeps each part's direction, so a rule
    stated in SFace's cosines (e.g. a near-duplicate at 0.9) can be applied to fused templates."""
    import numpy as np

    fused = np.atleast_2d(np.asarray(fused, dtype=np.float32))
    if fused.shape[1] <= sface_dim:
        raise ValueError(f"fused vectors need more than {sface_dim} floats; got {fused.shape[1]}")
    part = fused[:, :sface_dim]
    out: np.ndarray = part / np.maximum(np.linalg.norm(part, axis=1, keepdims=True), 1e-12)
    return out


def sface_vectors(model_id: str, vectors: np.ndarray) -> np.ndarray:
    """The SFace embeddings in templates of ``model_id``: a fused template's SFace part
    (``sface_part``), any other template itself. Rules stated in SFace's cosines (a near-duplicate
    at 0.9, ``fairness.robustfit``) read these, so both profiles drop the same photos."""
    return sface_part(vectors) if model_id.startswith(NAME + ":") else vectors


class FusedRecogniser:
    """SFace (with its mirrored face averaged in) and dlib on the same YuNet-aligned canvas.

    Takes canvases (N, CANVAS, CANVAS, 3) aligned with ``reference``; returns unit vectors of
    ``sface.dim + dlib.dim`` floats. The model id names both components and the share, so a
    template made with other weights is never compared with these.
    """

    name = NAME
    input_size = CANVAS
    reference = CANVAS_REFERENCE

    def __init__(self, sface: Recogniser, dlib: Recogniser, dlib_share: float = DLIB_SHARE) -> None:
        self.sface = sface
        self.dlib = dlib
        self.dlib_share = float(dlib_share)
        self.dim = sface.dim + dlib.dim
        self.model_id = fused_model_id(sface.model_id, dlib.model_id, self.dlib_share)

    def embed_parts(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The two unit embeddings (SFace mirror-averaged, dlib) of canvases, before fusion."""
        import numpy as np

        if len(crops) == 0:
            return np.zeros((0, self.sface.dim), np.float32), np.zeros((0, self.dlib.dim), np.float32)
        small = sface_crops(crops)
        both = self.sface.embed(np.concatenate([small, small[:, :, ::-1]]))
        s = both[: len(small)] + both[len(small) :]
        s = s / np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-12)
        return s.astype(np.float32), self.dlib.embed(crops)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        sface, dlib = self.embed_parts(crops)
        return fuse(sface, dlib, self.dlib_share)


def load_fused(sface: Recogniser, cache_dir: Path, dlib_share: float = DLIB_SHARE) -> FusedRecogniser:
    """The 'accurate' profile's recogniser over ``sface``, with dlib's files verified against the
    catalog; a ConfigurationError naming the extra when dlib or its weights are not installed."""
    from facetrust.models.catalog import CATALOG
    from facetrust.models.dlib import DlibRecogniser, import_dlib
    from facetrust.models.files import prepared_model_path

    import_dlib()
    dlib = DlibRecogniser(
        prepared_model_path(CATALOG["dlib-resnet-v1"], cache_dir),
        prepared_model_path(CATALOG["dlib-shape5"], cache_dir),
    )
    return FusedRecogniser(sface, dlib, dlib_share)
