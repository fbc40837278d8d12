"""Synthetic faces for the scale benches: seeded random unit templates written straight into a store."""

from __future__ import annotations

import uuid

import numpy as np

from facetrust.store.sqlite import NewFace

DIM = 32  # the fake engine's templates


def new_faces(
    rng: np.random.Generator,
    start: int,
    count: int,
    *,
    external: str | None = None,
    per_subject: int = 1,
    expires_at: float | None = None,
) -> list[NewFace]:
    """Faces ``start`` … ``start + count - 1``: FaceIds from their numbers, image ids ``img-N``, and
    with ``external`` (e.g. ``"Person"``) the ExternalImageId ``{external}-{N // per_subject}``."""
    vectors = rng.standard_normal((count, DIM)).astype("<f4")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        NewFace(
            str(uuid.UUID(int=start + i + 1)),
            f"img-{start + i}",
            None if external is None else f"{external}-{(start + i) // per_subject}",
            (0.3, 0.3, 0.4, 0.4),
            99.0,
            60.0,
            60.0,
            (0.0, 0.0, 0.0),
            v.tobytes(),
            expires_at=expires_at,
        )
        for i, v in enumerate(vectors)
    ]
