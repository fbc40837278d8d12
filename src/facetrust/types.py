"""Frozen result types: boxes, landmarks, pose, quality, faces, embeddings, comparisons."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "BoundingBox",
    "Comparison",
    "Face",
    "FaceEmbedding",
    "FaceMatch",
    "ImageComparison",
    "Landmarks",
    "Point",
    "Pose",
    "Quality",
    "RatioBox",
]


@dataclass(frozen=True)
class Point:
    """A pixel position (x to the right, y down)."""

    x: float
    y: float


@dataclass(frozen=True)
class RatioBox:
    """A box as fractions of the image width and height, as Rekognition reports it."""

    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class BoundingBox:
    """A face box in pixels of the (orientation-corrected) image."""

    left: float
    top: float
    width: float
    height: float

    def ratios(self, image_width: int, image_height: int) -> RatioBox:
        """The box as fractions of the image size (Rekognition's ``BoundingBox``)."""
        return RatioBox(*self.ratio_tuple(image_width, image_height))

    def ratio_tuple(self, image_width: int, image_height: int) -> tuple[float, float, float, float]:
        """``ratios`` as a plain (left, top, width, height) tuple: what a stored row holds."""
        if not (image_width > 0 and image_height > 0):
            from facetrust.errors import InvalidParameterError

            raise InvalidParameterError(
                f"An image's size must be positive; got {image_width}x{image_height}", parameter="image_size"
            )
        return (
            self.left / image_width,
            self.top / image_height,
            self.width / image_width,
            self.height / image_height,
        )

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)


@dataclass(frozen=True)
class Landmarks:
    """The five landmarks, named from the viewer's side of the image.

    ``eye_left`` is the eye on the left of the picture (the subject's right eye).
    """

    eye_left: Point
    eye_right: Point
    nose: Point
    mouth_left: Point
    mouth_right: Point

    def as_list(self) -> list[tuple[float, float]]:
        return [(p.x, p.y) for p in (self.eye_left, self.eye_right, self.nose, self.mouth_left, self.mouth_right)]


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees, estimated from the five landmarks (see docs/engine.md).

    roll: in-plane rotation, positive when the face is tilted clockwise in the picture.
    yaw: left/right turn, positive when the nose points to the right of the picture.
    pitch: up/down, positive when the face looks up.
    """

    roll: float
    yaw: float
    pitch: float


@dataclass(frozen=True)
class Quality:
    """Image quality of the face region on 0–100 scales (see docs/engine.md).

    brightness: mean luminance of the face region, 0 black … 100 white.
    sharpness: 100·(1 − exp(−v/σ)) of the variance v of the Laplacian of the face resized to
    112×112 pixels, σ = 100; blurred faces score low, crisp ones approach 100.
    """

    brightness: float
    sharpness: float


@dataclass(frozen=True)
class Face:
    """One detected face.

    ``recognisable`` is False (with ``reason`` saying why) for faces the recogniser should not
    be trusted with, e.g. faces smaller than the minimum size. Such faces are still reported.

    ``confidence`` (0–100) is on Rekognition's scale: the detector's score mapped through its
    calibrated confidence map (docs/engine.md), so a clear face gets ≥ 99. ``detector_score``
    is the detector's raw score × 100, which the quality filters and ``detection_threshold``
    use (None for a face built without one: ``confidence`` then stands for it).
    """

    box: BoundingBox
    landmarks: Landmarks
    confidence: float
    pose: Pose
    quality: Quality
    size: float
    image_width: int
    image_height: int
    recognisable: bool = True
    reason: str | None = None
    detector_score: float | None = None

    @property
    def raw_score(self) -> float:
        """The detector's own score × 100: ``detector_score``, or ``confidence`` when it is unknown."""
        return self.confidence if self.detector_score is None else self.detector_score

    @property
    def ratio_box(self) -> RatioBox:
        return self.box.ratios(self.image_width, self.image_height)


@dataclass(frozen=True, eq=False)
class FaceEmbedding:
    """An L2-normalised float32 embedding of one face and the model that produced it.

    ``vector`` is a read-only view: nothing can write through a result (the array it was made
    from stays as writable as it was).
    """

    vector: np.ndarray = field(repr=False)
    model: str
    face: Face | None = None

    def __post_init__(self) -> None:
        view = getattr(self.vector, "view", None)
        if view is not None:
            frozen = view()
            frozen.flags.writeable = False
            object.__setattr__(self, "vector", frozen)


@dataclass(frozen=True)
class Comparison:
    """A calibrated comparison of two faces.

    similarity: 0–100, ``clip(20·log10(1/fmr), 0, 100)``; 80 ⇔ fmr ≈ 1e-4.
    fmr: estimated false-match rate at this score (see docs/calibration.md).
    fmr_is_bound: True when the score is beyond what the calibration data can resolve, so
    ``fmr`` is an upper bound, not an estimate.
    score: the raw cosine similarity of the two embeddings.
    """

    similarity: float
    fmr: float
    score: float
    fmr_is_bound: bool = False
    threshold: float | None = None

    @property
    def is_match(self) -> bool:
        """True when ``similarity`` reaches the threshold the comparison was made with."""
        return self.threshold is not None and self.similarity >= self.threshold


@dataclass(frozen=True)
class FaceMatch:
    """A target face and its comparison with the source face.

    unreliable: why this pair's false-match estimate should not be trusted (one of its faces lies
    in a region the cluster normaliser marks unreliable), or None.
    """

    face: Face
    comparison: Comparison
    unreliable: str | None = None


@dataclass(frozen=True)
class ImageComparison:
    """Result of comparing the largest face of a source image with every face of a target.

    normalisation: how the scores were normalised before calibration: "cluster" (the shipped
    cluster normaliser, the default), "cohort" (AS-norm, ``cohort_file``) or "none".
    """

    source_face: Face
    matches: tuple[FaceMatch, ...]
    unmatched: tuple[FaceMatch, ...]
    threshold: float
    model: str
    normalisation: str = "none"

    @property
    def is_match(self) -> bool:
        return bool(self.matches)
