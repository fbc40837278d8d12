"""face_recognition-style verbs over a shared default engine; pass ``engine=`` to use another.

These are the engine alone: no policy is read and no audit entry is written. A comparison that
the deployment's purposes govern and its audit log records is ``FaceService.compare_faces``
(which the CLI's ``compare`` and the HTTP ``CompareFaces`` use)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facetrust.calibration import DEFAULT_THRESHOLD
from facetrust.engine import FaceEngine, engine_or_default

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.images import ImageSource
    from facetrust.types import Face, FaceEmbedding, ImageComparison

__all__ = ["compare_faces", "detect_faces", "embed_faces"]


def detect_faces(image: ImageSource, *, engine: FaceEngine | None = None) -> list[Face]:
    """Every face in ``image``, largest first; an empty list when there is none."""
    return engine_or_default(engine).detect(image)


def embed_faces(image: ImageSource, *, engine: FaceEngine | None = None) -> list[FaceEmbedding]:
    """One L2-normalised embedding per recognisable face in ``image``, largest first."""
    return engine_or_default(engine).embed(image)


def compare_faces(
    source: ImageSource,
    target: ImageSource,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    engine: FaceEngine | None = None,
) -> ImageComparison:
    """Compare the largest face in ``source`` with every face in ``target``.

    ``threshold`` is a Similarity (0–100; higher is stricter): 80 accepts matches whose
    estimated false-match rate is at most about 1 in 10,000.
    """
    return engine_or_default(engine).compare(source, target, threshold=threshold)
