"""IndexFaces for an image whose faces were detected and embedded elsewhere (bulk ingestion).

The detections and embeddings may come from another process (a Ray worker); the write takes
the very path ``faces.index_faces`` takes (``faces.enrol``, on the governed path, as the
operation IndexFaces): role, the collection's purpose and model, the parameters, consent
(before and inside the transaction), retention, the audit entry (refusals included). The
quality filter and MaxFaces are re-applied to the detections, and the embeddings must be
those of exactly the faces that pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from facetrust.errors import InvalidParameterError
from facetrust.governance.actor import Actor
from facetrust.service.faces import Enrolment, enrol
from facetrust.service.quality import check_quality_filter, split_faces
from facetrust.types import Face, FaceEmbedding

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.engine import FaceEngine
    from facetrust.images import ImageSource
    from facetrust.service.context import ServiceContext
    from facetrust.service.types import IndexResult, UnindexedFace

__all__ = ["PreparedImage", "accepted_faces", "index_prepared"]


@dataclass(frozen=True)
class PreparedImage:
    """One image's faces as a worker found them: every detection (largest first) and the
    embeddings of the faces ``accepted_faces`` keeps, in that order. ``sha256`` is the hash
    of the image's bytes (the resume record); the image itself is never kept."""

    sha256: str
    faces: tuple[Face, ...]
    embeddings: tuple[FaceEmbedding, ...]


def accepted_faces(faces: Sequence[Face], quality_filter: str, max_faces: int | None) -> list[Face]:
    """The faces IndexFaces would embed and store: those passing the filter, at most ``max_faces``."""
    return split_faces(list(faces), check_quality_filter(quality_filter), max_faces)[0]


def _check_prepared(engine: FaceEngine, prepared: PreparedImage, accepted: list[Face]) -> None:
    embedded = [e.face for e in prepared.embeddings]
    if embedded != accepted:
        raise InvalidParameterError(
            f"The prepared image has {len(embedded)} embeddings, which are not those of the {len(accepted)} faces "
            "the quality filter and MaxFaces accept; prepare it again with the same options",
            parameter="embeddings",
        )
    for emb in prepared.embeddings:
        if emb.model != engine.model_id:
            raise InvalidParameterError(
                f"Embedding was made by model {emb.model!r}; this collection stores {engine.model_id!r} only",
                parameter="embeddings",
            )


def index_prepared(
    service: ServiceContext, actor: Actor, ask: Enrolment, prepared: PreparedImage, image: ImageSource | None = None
) -> IndexResult:
    """IndexFaces of a prepared image (``FaceService.index_prepared``), recording its hash as
    ingested in the same transaction as its faces. ``image`` is decoded only where the
    collection's purpose keeps face crops."""

    def find(
        level: str, engine: FaceEngine
    ) -> tuple[list[tuple[FaceEmbedding, Face]], list[UnindexedFace], Callable[[], np.ndarray] | None]:
        accepted, unindexed = split_faces(list(prepared.faces), level, ask.max_faces)
        _check_prepared(engine, prepared, accepted)
        pixels = None if image is None else (lambda: engine.load_image(image))
        return list(zip(prepared.embeddings, accepted)), unindexed, pixels

    return enrol(service, actor, replace(ask, sha256=prepared.sha256), find)
