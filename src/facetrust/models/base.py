"""The two model roles as protocols, and the raw detection record detectors return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["Detection", "Detector", "Recogniser", "ShrinkingDetector"]


@dataclass(frozen=True)
class Detection:
    """A detector's raw output for one face, in pixels of the image it was given."""

    box: tuple[float, float, float, float]  # left, top, width, height
    landmarks: tuple[tuple[float, float], ...]  # five (x, y): eyes, nose, mouth corners
    score: float  # 0–1, the detector's own
    confidence: float | None = None  # 0–100 on Rekognition's scale, when the detector has a calibrated map


@runtime_checkable
class Detector(Protocol):
    """Finds faces in an RGB uint8 image."""

    name: str
    model_id: str

    def detect(self, image: np.ndarray) -> list[Detection]: ...


@runtime_checkable
class ShrinkingDetector(Detector, Protocol):
    """A detector that scales large images down before it looks (so small faces in them vanish),
    and can be asked instead for every face down to a size (in pixels of the image given)."""

    def detect_down_to(self, image: np.ndarray, smallest_face: float) -> list[Detection]: ...


@runtime_checkable
class Recogniser(Protocol):
    """Turns aligned RGB uint8 crops (N, size, size, 3) into (N, dim) float32 embeddings."""

    name: str
    model_id: str
    input_size: int
    dim: int

    def embed(self, crops: np.ndarray) -> np.ndarray: ...
