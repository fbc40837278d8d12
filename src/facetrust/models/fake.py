"""Deterministic test doubles for the two model roles; fast, tiny, no model files.

``FakeDetector`` finds "faces" drawn as filled near-white squares (every channel ≥ 240) on a
darker background, one face per connected square, with landmarks placed where a frontal face
would have them. ``FakeRecogniser`` embeds a crop by a fixed random projection of its
downsampled pixels, so the same picture always gives the same vector and different patterns
give different ones. ``fake_engine()`` builds a ``FaceEngine`` over both with a linear
calibration, ``draw_face`` draws a face such tests can find, and ``face_png`` draws several
into PNG bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from facetrust.align import REFERENCE_112
from facetrust.models.base import Detection

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.calibration import Calibration
    from facetrust.config import Settings
    from facetrust.engine import FaceEngine

__all__ = [
    "FakeDetector",
    "FakeRecogniser",
    "draw_face",
    "face_png",
    "fake_calibration",
    "fake_engine",
    "flagged_fake_engine",
]


class FakeDetector:
    name = "fake-detector"
    model_id = "fake-detector:0"

    def __init__(self, score: float = 0.99) -> None:
        self.score = score

    def detect(self, image: np.ndarray) -> list[Detection]:
        import cv2
        import numpy as np

        mask = (image.min(axis=2) >= 240).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
        out = []
        for i in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[i])
            if w < 4 or h < 4 or area < 0.5 * w * h:
                continue
            marks = tuple((x + px / 112.0 * w, y + py / 112.0 * h) for px, py in REFERENCE_112)
            out.append(Detection((float(x), float(y), float(w), float(h)), marks, self.score))
        return out


class FakeRecogniser:
    name = "fake-recogniser"
    model_id = "fake-recogniser:0"
    input_size = 112
    dim = 32

    def __init__(self) -> None:
        import numpy as np

        self._projection = np.random.default_rng(1234).standard_normal((8 * 8 * 3, self.dim)).astype(np.float32)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        import cv2
        import numpy as np

        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        small = np.stack([cv2.resize(c, (8, 8), interpolation=cv2.INTER_AREA) for c in crops]).astype(np.float32)
        flat = small.reshape(len(crops), -1)
        flat = flat - flat.mean(axis=1, keepdims=True)
        out = flat @ self._projection
        normalised: np.ndarray = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return normalised


def fake_calibration(model: str = FakeRecogniser.model_id) -> Calibration:
    """log10 FMR falls linearly from 0 at cosine 0 to -6 at cosine 0.9 (floor 1e-6)."""
    from facetrust.calibration import Calibration

    return Calibration(
        model=model,
        scores=(0.0, 0.9),
        log10_fmr=(0.0, -6.0),
        floor_fmr=1e-6,
        impostor_pairs=10_000_000,
        dataset="synthetic (test double)",
    )


def fake_engine(settings: Settings | None = None) -> FaceEngine:
    """A ``FaceEngine`` over the fakes (flip augmentation off unless settings say otherwise)."""
    from facetrust.config import Settings
    from facetrust.engine import FaceEngine

    settings = settings or Settings(flip_augment=False)
    model = FakeRecogniser.model_id + ("+flip" if settings.flip_augment else "")
    return FaceEngine(FakeDetector(), FakeRecogniser(), calibration=fake_calibration(model), settings=settings)


def flagged_fake_engine(crowded: int, plain: int) -> FaceEngine:
    """The fake engine with a calibrated cluster normaliser of two regions, around fake person
    ``crowded``'s face and ``plain``'s, the first marked unreliable (zero offsets)."""
    import numpy as np

    from facetrust.calibration import Calibration
    from facetrust.clusternorm import ClusterNormaliser
    from facetrust.engine import FaceEngine

    plain_engine = fake_engine()
    centres = [plain_engine.embed_largest(face_png((20, 20, 100, p))) for p in (crowded, plain)]
    centroids = np.stack([c.vector for c in centres if c is not None])
    normaliser = ClusterNormaliser(FakeRecogniser.model_id, centroids, np.zeros(2, np.float32), unreliable=(0,))
    table = Calibration(normaliser.score_id, (0.0, 0.9), (0.0, -6.0), 1e-6, 10**7, "synthetic (test double)")
    return FaceEngine(
        FakeDetector(),
        FakeRecogniser(),
        calibration=fake_calibration(),
        settings=plain_engine.settings,
        normaliser=normaliser.with_calibration(table),
    )


def draw_face(image: np.ndarray, left: int, top: int, size: int, pattern: int = 0) -> np.ndarray:
    """Draw a face the fake detector finds: a white square with dark dots inside.

    Different ``pattern`` values give different fake identities. Returns ``image``.
    """
    import numpy as np

    image[top : top + size, left : left + size] = 255
    rng = np.random.default_rng(pattern)
    cell = max(size // 8, 1)
    for _ in range(6):
        cx, cy = rng.integers(1, 7, size=2)
        shade = np.array([int(v) for v in rng.integers(0, 200, size=3)], dtype=np.uint8)
        image[top + cy * cell : top + (cy + 1) * cell, left + cx * cell : left + (cx + 1) * cell] = shade
    return image


def face_png(*faces: tuple[int, int, int, int], width: int = 400, height: int = 300) -> bytes:
    """PNG bytes of a grey picture with fake faces drawn as ``(left, top, size, pattern)``;
    the same pattern is the same fake person."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.full((height, width, 3), 60, np.uint8)
    for left, top, size, pattern in faces:
        draw_face(pixels, left, top, size, pattern)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()
