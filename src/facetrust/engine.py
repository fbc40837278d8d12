"""FaceEngine: decode → detect → align → embed → compare, over pluggable models."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from facetrust.align import REFERENCE_112, align_face
from facetrust.analysis import build_face
from facetrust.budget import DecodeBudget
from facetrust.calibration import DEFAULT_THRESHOLD, Calibration, check_similarity_threshold, default_calibration
from facetrust.config import Settings, settings_or_default
from facetrust.errors import ConfigurationError, InvalidImageError, InvalidParameterError
from facetrust.images import ImageSource, load_image, named_image
from facetrust.models.base import ShrinkingDetector
from facetrust.straighten import straightened
from facetrust.types import Comparison, Face, FaceEmbedding, FaceMatch, ImageComparison, Landmarks

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    import numpy as np

    from facetrust.clusternorm import ClusterNormaliser
    from facetrust.models.base import Detector, Recogniser
    from facetrust.normalise import CohortNormaliser

__all__ = ["FaceEngine", "check_engine", "engine_or_default", "load_engine"]

log = logging.getLogger(__name__)


MAX_TARGET_FACES = 100  # CompareFaces compares "each of the 100 largest faces detected in the target"


class FaceEngine:
    """The face pipeline over one detector, one recogniser and one calibration.

    Build the default one with ``FaceEngine.load()`` (or ``load_engine()``); tests and other
    models plug in any ``Detector``/``Recogniser`` (``facetrust.models.fake`` has doubles).
    Safe to share between threads: each model serialises its own inference.

    The calibration is, in order: the ``calibration`` argument, ``settings.calibration_file``,
    the shipped table. 1:1 comparisons are judged through a normaliser when there is one: the
    ``normaliser`` argument, else ``settings.normaliser_file`` (a cluster normaliser fitted on the
    deployment's own faces, ``facetrust.fairness.normfit``), else ``settings.cohort_file``
    (AS-norm), else, when no raw calibration was chosen and ``settings.score_normalisation`` is on
    (the default), the cluster normaliser shipped for the model (``facetrust.clusternorm``). A
    normaliser is judged by its own calibration; ``calibration`` stays the raw-score table
    (1:N searches use it).
    """

    def __init__(
        self,
        detector: Detector,
        recogniser: Recogniser,
        *,
        calibration: Calibration | None = None,
        settings: Settings | None = None,
        normaliser: CohortNormaliser | ClusterNormaliser | None = None,
    ) -> None:
        settings = settings_or_default(settings)
        for name, model, needs in (("detector", detector, "detect"), ("recogniser", recogniser, "embed")):
            if not callable(getattr(model, needs, None)):
                raise InvalidParameterError(
                    f"{name} must be a {name} model (with .{needs}()); got {type(model).__name__}", parameter=name
                )
        self.settings = settings
        self.detector = detector
        self.recogniser = recogniser
        self.model_id = recogniser.model_id + ("+flip" if self.settings.flip_augment else "")
        chosen = calibration is not None or self.settings.calibration_file is not None
        if calibration is None and self.settings.calibration_file is not None:
            calibration = Calibration.load(self.settings.calibration_file)
        self.calibration = calibration if calibration is not None else default_calibration(self.model_id)
        if self.calibration.model != self.model_id:
            raise InvalidParameterError(
                f"Calibration is for model {self.calibration.model!r}, but the engine embeds with {self.model_id!r}",
                parameter="calibration",
            )
        self.normaliser = normaliser if normaliser is not None else self._load_normaliser(shipped=not chosen)
        self.budget = DecodeBudget(self.settings.decode_budget_pixels)

    @classmethod
    def load(cls, settings: Settings | None = None, *, calibration: Calibration | None = None) -> FaceEngine:
        """The engine of ``settings.profile``, verified against the catalog, no network.

        "default": YuNet + SFace. "accurate": YuNet + SFace fused with dlib's recogniser
        (``facetrust.models.fused``; it averages SFace's mirrored face itself, so the engine's
        ``flip_augment`` is off for it).
        """
        from facetrust.models.catalog import CATALOG
        from facetrust.models.files import prepared_model_path
        from facetrust.models.sface import SFaceRecogniser
        from facetrust.models.yunet import YuNetDetector

        settings = settings_or_default(settings)
        if settings.profile == "accurate":
            from facetrust.models.dlib import import_dlib

            import_dlib()  # before anything is loaded: a ConfigurationError naming the extra
            settings = settings.replace(flip_augment=False)
        if settings.threads:
            import cv2

            cv2.setNumThreads(settings.threads)
        cache = settings.resolved_cache_dir
        detector = YuNetDetector(
            prepared_model_path(CATALOG["yunet-2023mar"], cache),
            score_threshold=settings.detection_threshold,
            max_side=settings.detector_max_side,
        )
        recogniser: Recogniser = SFaceRecogniser(prepared_model_path(CATALOG["sface-2021dec"], cache))
        if settings.profile == "accurate":
            from facetrust.models.fused import load_fused

            recogniser = load_fused(recogniser, cache)
        return cls(detector, recogniser, calibration=calibration, settings=settings)

    @property
    def normalisation(self) -> str:
        """How 1:1 scores are normalised: "cluster" (the shipped normaliser or ``normaliser_file``),
        "cohort" (AS-norm) or "none"."""
        if self.normaliser is None:
            return "none"
        return "cohort" if hasattr(self.normaliser, "cohort") else "cluster"

    @property
    def score_id(self) -> str:
        """The id of the scale 1:1 comparisons are judged on: the normaliser's ``score_id`` (its
        centroids and offsets, or its cohort, and its calibration), else the raw table's model id."""
        if self.normaliser is not None and self.normaliser.calibration is not None:
            return self.normaliser.score_id
        return self.calibration.model

    def _load_normaliser(self, *, shipped: bool) -> CohortNormaliser | ClusterNormaliser | None:
        if self.settings.normaliser_file is not None:
            return self._normaliser_file(self.settings.normaliser_file)
        path = self.settings.cohort_file
        if path is None:
            if not (shipped and self.settings.score_normalisation):
                return None  # a chosen raw calibration describes raw scores: no normaliser on top
            from facetrust.clusternorm import shipped_normaliser

            return shipped_normaliser(self.model_id)
        from facetrust.normalise import CohortNormaliser

        found = CohortNormaliser.load(path)
        if found.model != self.model_id:
            raise InvalidParameterError(
                f"Cohort file {path} is for model {found.model!r}, but the engine embeds with {self.model_id!r}",
                parameter="cohort_file",
            )
        if found.cohort.shape[1] != self.recogniser.dim:
            raise InvalidParameterError(
                f"Cohort file {path} holds {found.cohort.shape[1]}-dimensional embeddings, but the engine's "
                f"are {self.recogniser.dim}-dimensional",
                parameter="cohort_file",
            )
        if found.calibration is None:
            raise InvalidParameterError(
                f"Cohort file {path} has no calibration of normalised scores; "
                "make it with `facetrust calibrate --cohort`",
                parameter="cohort_file",
            )
        return found

    def _normaliser_file(self, path: Path) -> ClusterNormaliser:
        """The cluster normaliser of ``settings.normaliser_file`` (a file, or a folder with one file per
        model: ``clusternorm.normaliser_files``) made for this engine's model."""
        from facetrust.clusternorm import normaliser_files

        if self.settings.cohort_file is not None:
            raise ConfigurationError(
                "Set cohort_file or normaliser_file, not both: 1:1 scores are normalised one way",
                setting="normaliser_file",
            )
        every = normaliser_files(path)
        found = every.get(self.model_id)
        if found is None and not path.is_dir():
            raise InvalidParameterError(
                f"Normaliser file {path} is for model {next(iter(every))!r}, but the engine embeds with "
                f"{self.model_id!r}",
                parameter="normaliser_file",
            )
        if found is None:
            raise InvalidParameterError(
                f"The folder {path} holds no normaliser file for model {self.model_id!r} (it holds files for "
                f"{', '.join(map(repr, sorted(every)))})",
                parameter="normaliser_file",
            )
        if found.calibration is None:
            raise InvalidParameterError(
                f"Normaliser file {path} has no calibration of normalised scores; "
                "make it with `facetrust calibrate --normaliser`",
                parameter="normaliser_file",
            )
        return found

    # -- images and detection -------------------------------------------------------------

    def load_image(self, source: ImageSource) -> np.ndarray:
        """Decode ``source`` with this engine's byte and pixel limits, within its decode budget
        (shared by every thread using this engine: the pixels stay reserved while the array lives)."""
        return load_image(
            source,
            max_bytes=self.settings.max_image_bytes,
            max_pixels=self.settings.max_image_pixels,
            budget=self.budget,
        )

    def detect(self, image: ImageSource, *, smallest_face: int | None = None, straighten: bool = True) -> list[Face]:
        """All faces in ``image``, largest first. No face → an empty list.

        A face turned in the picture has its landmarks found again turned upright (straighten.py);
        ``straighten=False`` skips that for callers that use the boxes only (redaction).

        The detector sees large images scaled down (``detector_max_side``), which is fast but misses
        faces that shrink too far. ``smallest_face`` (pixels) asks for every face at least that wide
        in the image as given, at the cost of looking at a finer scale too (redaction passes
        ``min_face_size``: every face the engine could recognise). A detector that does not scale
        images down finds them already.
        """
        rgb = self.load_image(image)
        if smallest_face is None:
            found = self.detector.detect(rgb)
        elif isinstance(smallest_face, bool) or not isinstance(smallest_face, int) or smallest_face < 1:
            raise InvalidParameterError(
                f"smallest_face {smallest_face!r} is invalid: give a face width in pixels (1 or more)",
                parameter="smallest_face",
            )
        elif isinstance(self.detector, ShrinkingDetector):
            found = self.detector.detect_down_to(rgb, smallest_face)
        else:
            found = self.detector.detect(rgb)
        # a face turned in the picture: its landmarks found again with it turned upright (straighten.py)
        if straighten:
            found = [straightened(self.detector, rgb, det) for det in found]
        faces = [build_face(rgb, det, min_face_size=self.settings.min_face_size) for det in found]
        faces.sort(key=lambda f: f.box.area, reverse=True)
        return faces

    # -- embedding ------------------------------------------------------------------------

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Embeddings (N, dim) of aligned crops, batched; mirrored copies averaged when enabled."""
        import numpy as np

        size = self.settings.batch_size
        out = []
        for start in range(0, len(crops), size):
            batch = crops[start : start + size]
            if self.settings.flip_augment:  # the crops and their mirror images in one network run
                both = self.recogniser.embed(np.concatenate([batch, batch[:, :, ::-1]]))
                vec = both[: len(batch)] + both[len(batch) :]
                vec = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
            else:
                vec = self.recogniser.embed(batch)
            out.append(vec.astype(np.float32))
        if not out:
            return np.zeros((0, self.recogniser.dim), dtype=np.float32)
        return np.concatenate(out)

    def align(self, rgb: np.ndarray, landmarks: Landmarks) -> np.ndarray:
        """The crop of one face that this engine's recogniser takes (its size, its template:
        the 'accurate' profile's recogniser wants a wider one than SFace's 112×112)."""
        reference = getattr(self.recogniser, "reference", REFERENCE_112)
        return align_face(rgb, landmarks, size=self.recogniser.input_size, reference=reference)

    def embed(self, image: ImageSource, faces: Sequence[Face] | None = None) -> list[FaceEmbedding]:
        """Embeddings of the recognisable faces in ``image`` (detected unless ``faces`` given)."""
        import numpy as np

        rgb = self.load_image(image)
        if faces is None:
            faces = self.detect(rgb)
        if any(not isinstance(f, Face) for f in faces):
            raise InvalidParameterError("faces must be Face objects (as detect() returns them)", parameter="faces")
        usable = [f for f in faces if f.recognisable]
        if not usable:
            return []
        crops = np.stack([self.align(rgb, f.landmarks) for f in usable])
        vectors = self.embed_crops(crops)
        return [FaceEmbedding(vector=v, model=self.model_id, face=f) for v, f in zip(vectors, usable)]

    def embed_largest(self, image: ImageSource) -> FaceEmbedding | None:
        """The embedding of the largest recognisable face, or None when there is none."""
        rgb = self.load_image(image)
        faces = self.detect(rgb)
        usable = [f for f in faces if f.recognisable][:1]
        found = self.embed(rgb, usable) if usable else []
        return found[0] if found else None

    # -- comparison -----------------------------------------------------------------------

    def compare_embeddings(
        self, a: FaceEmbedding, b: FaceEmbedding, *, threshold: float = DEFAULT_THRESHOLD
    ) -> Comparison:
        """Calibrated comparison of two embeddings made by this engine's model."""
        import numpy as np

        threshold = check_similarity_threshold(threshold)
        for e in (a, b):
            vector = getattr(e, "vector", None)
            if not isinstance(e, FaceEmbedding) or not isinstance(vector, np.ndarray) or vector.ndim != 1:
                raise InvalidParameterError(
                    f"Compare FaceEmbeddings (as embed() makes them); got {type(e).__name__}", parameter="embedding"
                )
            if e.model != self.model_id:
                raise InvalidParameterError(
                    f"Embedding was made by model {e.model!r}; this engine compares {self.model_id!r} only",
                    parameter="embedding",
                )
        if a.vector.shape != b.vector.shape:
            raise InvalidParameterError(
                f"Embeddings of {a.vector.shape[0]} and {b.vector.shape[0]} values cannot be compared",
                parameter="embedding",
            )
        if self.normaliser is not None and self.normaliser.calibration is not None:
            import dataclasses

            raw, normalised = self.normaliser.score(a.vector, b.vector)
            judged = self.normaliser.calibration.compare(normalised, threshold)
            return dataclasses.replace(judged, score=raw)
        score = float(np.dot(a.vector, b.vector))
        return self.calibration.compare(score, threshold)

    def unreliable_reasons(self, probe: FaceEmbedding, candidates: list[FaceEmbedding]) -> list[str | None]:
        """Per candidate, why its comparison with ``probe`` has an unreliable false-match estimate
        (a face in a cluster the normaliser marks unreliable), or None. Only the cluster
        normaliser marks regions; with another normaliser or none, every entry is None."""
        import numpy as np

        from facetrust.clusternorm import ClusterNormaliser, unreliable_reason

        if not isinstance(self.normaliser, ClusterNormaliser) or not candidates:
            return [None] * len(candidates)
        flags = self.normaliser.unreliable_of(np.stack([probe.vector] + [c.vector for c in candidates]))
        return [unreliable_reason(bool(flags[0]), bool(f)) for f in flags[1:]]

    def compare(
        self, source: ImageSource, target: ImageSource, *, threshold: float = DEFAULT_THRESHOLD
    ) -> ImageComparison:
        """Compare the largest face of ``source`` with every recognisable face among the
        ``MAX_TARGET_FACES`` (100) largest of ``target``, as Rekognition's CompareFaces does.

        Raises ``InvalidImageError`` naming the image when the source has no recognisable face.
        A target without faces gives a result with no matches. Each ``FaceMatch.unreliable``
        says why that pair's estimate should not be trusted (``unreliable_reasons``), or None.
        """
        threshold = check_similarity_threshold(threshold)
        with named_image("source image"):
            probe = self.embed_largest(source)
        if probe is None:
            raise InvalidImageError("no recognisable face found in the source image", source="source")
        matches: list[FaceMatch] = []
        unmatched: list[FaceMatch] = []
        with named_image("target image"):
            rgb = self.load_image(target)
            largest = self.detect(rgb)[:MAX_TARGET_FACES]  # as Rekognition: the 100 largest faces
            candidates = self.embed(rgb, largest) if largest else []
        reasons = self.unreliable_reasons(probe, candidates)
        for cand, reason in zip(candidates, reasons):
            assert cand.face is not None  # embed() always attaches the face
            comparison = self.compare_embeddings(probe, cand, threshold=threshold)
            result = FaceMatch(face=cand.face, comparison=comparison, unreliable=reason)
            (matches if result.comparison.is_match else unmatched).append(result)
        matches.sort(key=lambda m: (m.comparison.similarity, m.comparison.score), reverse=True)  # as reported
        assert probe.face is not None
        return ImageComparison(
            source_face=probe.face,
            matches=tuple(matches),
            unmatched=tuple(unmatched),
            threshold=threshold,
            model=self.model_id,
            normalisation=self.normalisation,
        )


_ENGINES: dict[Settings, FaceEngine] = {}
_ENGINES_LOCK = threading.Lock()


def load_engine(settings: Settings | None = None) -> FaceEngine:
    """A shared default engine per ``Settings`` value (models are loaded once per process)."""
    key = settings_or_default(settings)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = FaceEngine.load(key)
        return engine


def check_engine(engine: object) -> FaceEngine:
    """``engine``, refused by name unless it is a ``FaceEngine``."""
    if not isinstance(engine, FaceEngine):
        raise InvalidParameterError(
            f"engine must be a FaceEngine (facetrust.load_engine()); got {type(engine).__name__}", parameter="engine"
        )
    return engine


def engine_or_default(engine: object) -> FaceEngine:
    """``engine``, or the shared default one for None (``check_engine`` otherwise)."""
    return load_engine() if engine is None else check_engine(engine)


def iter_image_paths(paths: Iterable[str]) -> list[str]:
    """Expand folders into the JPEG/PNG files below them (sorted); files are kept as given. A folder
    that cannot be read (its permissions) is an error naming it, not a silent gap; so is, when read,
    a name with an image suffix that is no regular file (a broken link, a loop of links, a FIFO). An
    empty path is refused, not read as the current folder."""
    import os
    from pathlib import Path

    from facetrust.errors import InvalidParameterError

    def unreadable(exc: OSError) -> None:
        raise InvalidParameterError(
            f"Cannot read the folder {exc.filename}: {exc.strerror or exc}", parameter="images"
        ) from None

    out: list[str] = []
    for raw in paths:
        if raw == "":  # Path("") is the current folder: an unset shell variable would index all of it
            raise InvalidParameterError("An image path is empty; give a file or a folder", parameter="images")
        p = Path(raw)
        if p.is_dir():
            found = [
                Path(top) / name
                for top, _, names in os.walk(p, onerror=unreadable)
                for name in names
                if Path(name).suffix.lower() in {".jpg", ".jpeg", ".png"}
            ]
            out.extend(str(f) for f in sorted(found) if not f.is_dir())
        else:
            out.append(str(p))
    return out
