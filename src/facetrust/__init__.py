"""facetrust: accountable, self-hosted face recognition.

Three verbs cover the engine, in the style of face_recognition::

    import facetrust
    faces = facetrust.detect_faces("group.jpg")                 # [] when there is no face
    emb = facetrust.embed_faces("alice.jpg")                     # one FaceEmbedding per usable face
    result = facetrust.compare_faces("alice.jpg", "group.jpg")   # calibrated: similarity and FMR

Heavy libraries (OpenCV, onnx, numpy) are imported only when first needed.
"""

from __future__ import annotations

from facetrust.api import compare_faces, detect_faces, embed_faces
from facetrust.calibration import Calibration, fmr_from_similarity, similarity_from_fmr
from facetrust.config import Settings
from facetrust.engine import FaceEngine, load_engine
from facetrust.errors import (
    ConfigurationError,
    ConflictError,
    FacetrustError,
    ImageTooLargeError,
    InvalidImageError,
    InvalidInputError,
    InvalidParameterError,
    ModelError,
    ModelIntegrityError,
    NotFoundError,
)
from facetrust.images import load_image
from facetrust.types import (
    BoundingBox,
    Comparison,
    Face,
    FaceEmbedding,
    FaceMatch,
    ImageComparison,
    Landmarks,
    Point,
    Pose,
    Quality,
    RatioBox,
)

__version__ = "0.1.0"

__all__ = [
    "BoundingBox",
    "Calibration",
    "Comparison",
    "ConfigurationError",
    "ConflictError",
    "Face",
    "FaceEmbedding",
    "FaceEngine",
    "FaceMatch",
    "FacetrustError",
    "ImageComparison",
    "ImageTooLargeError",
    "InvalidImageError",
    "InvalidInputError",
    "InvalidParameterError",
    "Landmarks",
    "ModelError",
    "ModelIntegrityError",
    "NotFoundError",
    "Point",
    "Pose",
    "Quality",
    "RatioBox",
    "Settings",
    "__version__",
    "compare_faces",
    "detect_faces",
    "embed_faces",
    "fmr_from_similarity",
    "load_engine",
    "load_image",
    "similarity_from_fmr",
]
