"""5-point similarity-transform alignment of a face to the recogniser's 112×112 input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.types import Landmarks

__all__ = ["REFERENCE_112", "align_face", "similarity_transform"]

# Where the five landmarks (viewer's left eye, right eye, nose tip, left and right mouth
# corner) sit in a 112×112 crop: the de-facto standard template of ArcFace-style recognisers,
# which SFace was trained with.
REFERENCE_112: tuple[tuple[float, float], ...] = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) src → dst.

    Umeyama's closed form. ``src`` and ``dst`` are (N, 2); returns the 2×3 affine matrix.
    """
    import numpy as np

    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n = src.shape[0]
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    sc, dc = src - mu_s, dst - mu_d
    var_s = (sc**2).sum() / n
    cov = dc.T @ sc / n
    u, sing, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = (sing * d).sum() / var_s if var_s > 0 else 1.0
    trans = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, trans[:, None]]).astype(np.float64)


def align_face(
    image: np.ndarray,
    landmarks: Landmarks | Sequence[tuple[float, float]],
    size: int = 112,
    reference: Sequence[tuple[float, float]] = REFERENCE_112,
) -> np.ndarray:
    """Warp ``image`` so the five landmarks land on the reference template; returns size×size×3."""
    import cv2
    import numpy as np

    points = landmarks.as_list() if hasattr(landmarks, "as_list") else list(landmarks)
    ref = np.asarray(reference, dtype=np.float64) * (size / 112.0)
    matrix = similarity_transform(np.asarray(points, dtype=np.float64), ref)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
