"""The rows the store reads and writes (collections, faces, users), and how they are read back.

Plain frozen dataclasses, with the SQL that reads them in the table modules (``faces.py``,
``users.py``, ``collections.py``, ``records.py``); their ``IN (…)`` queries go through
``inlist.py``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facetrust.errors import ConfigurationError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["CollectionRow", "FaceRow", "NewFace", "UserRow", "vector_from_blob"]

_FACE_COLUMNS = (
    "id, face_id, image_id, external_image_id, user_id, box_left, box_top, box_width, box_height, "
    "confidence, brightness, sharpness, roll, yaw, pitch, created_at, expires_at, retained_until"
)


@dataclass(frozen=True)
class CollectionRow:
    id: int
    name: str
    model: str
    purpose: str
    created_at: float


@dataclass(frozen=True)
class FaceRow:
    """One stored face (without its embedding)."""

    key: int
    face_id: str
    image_id: str
    external_image_id: str | None
    user_id: str | None
    box: tuple[float, float, float, float]  # left, top, width, height as ratios
    confidence: float
    brightness: float
    sharpness: float
    pose: tuple[float, float, float]  # roll, yaw, pitch
    created_at: float
    expires_at: float | None
    retained_until: float | None = None  # the end of its retention, fixed at enrolment (None: not recorded)


@dataclass(frozen=True)
class NewFace:
    """A face to insert."""

    face_id: str
    image_id: str
    external_image_id: str | None
    box: tuple[float, float, float, float]
    confidence: float
    brightness: float
    sharpness: float
    pose: tuple[float, float, float]
    embedding: bytes
    expires_at: float | None = None
    retained_until: float | None = None  # the end of its retention (default: ``expires_at``)


@dataclass(frozen=True)
class UserRow:
    user_id: str
    created_at: float
    face_count: int


def _face(row: sqlite3.Row) -> FaceRow:
    return FaceRow(
        key=row[0],
        face_id=row[1],
        image_id=row[2],
        external_image_id=row[3],
        user_id=row[4],
        box=(row[5], row[6], row[7], row[8]),
        confidence=row[9],
        brightness=row[10],
        sharpness=row[11],
        pose=(row[12], row[13], row[14]),
        created_at=row[15],
        expires_at=row[16],
        retained_until=row[17],
    )


def vector_from_blob(blob: bytes, dim: int) -> np.ndarray:
    import numpy as np

    vec = np.frombuffer(blob, dtype=np.float32)
    if vec.size != dim:
        raise ConfigurationError(f"Stored embedding has {vec.size} values; expected {dim}")
    return vec
