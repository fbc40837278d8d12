"""The worker's half of ingestion: image bytes → detections and embeddings (no store, no rules)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facetrust.errors import ImageTooLargeError, InvalidImageError, InvalidInputError
from facetrust.service.ingest import PreparedImage, accepted_faces

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.engine import FaceEngine

__all__ = ["EngineFactory", "ImageFailure", "Job", "prepare", "sha256_of"]

EngineFactory = Callable[[], "FaceEngine"]
"""Builds the engine a worker process keeps (picklable: a module-level function or a partial)."""


@dataclass(frozen=True)
class Job:
    """One image to prepare: its bytes and hash, and the options that choose the faces to embed."""

    data: bytes
    sha256: str
    quality_filter: str
    max_faces: int | None


@dataclass(frozen=True)
class ImageFailure:
    """Why an image could not be read (picklable, unlike our exceptions: rebuilt by ``error``)."""

    code: str
    message: str
    limit: int = 0
    actual: int = 0

    def error(self, source: str) -> InvalidImageError | ImageTooLargeError:
        if self.code == ImageTooLargeError.code:
            return ImageTooLargeError(self.message, limit=self.limit, actual=self.actual, source=source)
        return InvalidImageError(self.message, source=source)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def prepare(engine: FaceEngine, job: Job) -> PreparedImage | ImageFailure:
    """Decode, detect, choose the faces IndexFaces would keep, and embed those (batched)."""
    try:
        rgb = engine.load_image(job.data)
    except ImageTooLargeError as exc:
        return ImageFailure(exc.code, exc.message, exc.limit, exc.actual)
    except InvalidInputError as exc:
        return ImageFailure(exc.code, exc.message)
    faces = engine.detect(rgb)
    chosen = accepted_faces(faces, job.quality_filter, job.max_faces)
    embeddings = engine.embed(rgb, chosen) if chosen else []
    return PreparedImage(job.sha256, tuple(faces), tuple(embeddings))
