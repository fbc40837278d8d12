"""Faces turned in the picture: their landmarks found again turned upright (facetrust/straighten.py),
on real LFW photos with the real models; behaviour with tolerances (bench/tilt.py measures it)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facetrust import straighten
from facetrust.engine import FaceEngine
from facetrust.models.base import Detection
from facetrust.types import Face

from .test_real_models import first_pairs

TURN = 35.0  # degrees, counter-clockwise in the picture: Roll reads it as -35


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def central(faces: list[Face]) -> Face:
    return min(
        faces, key=lambda f: (f.box.left + f.box.width / 2 - 125) ** 2 + (f.box.top + f.box.height / 2 - 125) ** 2
    )


def turned_photos(engine: FaceEngine, lfw: Path) -> list[tuple[float, float]]:
    """Per photo: the Roll error of the turned face, and its Similarity to the upright photo."""
    out = []
    for path in [a for a, _ in first_pairs(lfw)[0][:12]]:
        upright = Image.open(path).convert("RGB")
        turned = jpeg(upright.rotate(TURN, fillcolor=(128, 128, 128)))
        before, after = central(engine.detect(jpeg(upright))), central(engine.detect(turned))
        error = abs(after.pose.roll - (before.pose.roll - TURN))
        best = engine.compare(jpeg(upright), turned).matches
        out.append((error, best[0].comparison.similarity if best else 0.0))
    return out


@pytest.mark.model
@pytest.mark.data
def test_a_face_turned_35_degrees_is_aligned_upright_and_matches_its_upright_photo(
    engine: FaceEngine, lfw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    straightened = turned_photos(engine, lfw)
    monkeypatch.setattr(straighten, "STRAIGHTEN_ABOVE_DEG", 360.0)  # the detector's landmarks as they come
    as_found = turned_photos(engine, lfw)

    assert np.median([e for e, _ in as_found]) > 12  # the detector's eye line leans upright
    assert np.median([e for e, _ in straightened]) < 8
    assert sum(s >= 80 for _, s in straightened) >= 10  # of 12 (8 as found)
    assert sum(s >= 80 for _, s in straightened) > sum(s >= 80 for _, s in as_found)


class Finds:
    """A detector that answers every patch with ``found``, and counts the looks."""

    name, model_id = "stub", "stub:0"

    def __init__(self, found: list[Detection]) -> None:
        self.found, self.looks = found, 0

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        self.looks += 1
        return self.found


def test_a_face_near_upright_is_left_as_the_detector_found_it() -> None:
    det = Detection((10, 10, 80, 80), ((30, 40), (70, 45), (50, 60), (35, 75), (65, 78)), 0.9)  # eye line ~7°
    stub = Finds([])
    assert straighten.straightened(stub, np.zeros((100, 100, 3), np.uint8), det) is det and stub.looks == 0


def test_a_turned_face_the_detector_does_not_find_again_keeps_its_landmarks() -> None:
    det = Detection((10, 10, 80, 80), ((30, 40), (70, 60), (50, 60), (35, 75), (65, 90)), 0.9)  # eye line ~27°
    stub = Finds([])
    assert straighten.straightened(stub, np.zeros((100, 100, 3), np.uint8), det) is det and stub.looks == 1


def test_landmarks_found_level_in_the_turned_patch_map_back_turned_by_its_angle() -> None:
    """A face found level at the centre of the patch (turned upright by the eye line's angle) is,
    back in the picture, turned by that angle about the face's centre: the inverse of the turn."""
    det = Detection((10, 10, 80, 80), ((30, 40), (70, 60), (50, 60), (35, 75), (65, 90)), 0.9)
    angle = straighten.eye_line_deg(det.landmarks)
    side = round(2.2 * 80)
    c = side / 2
    level = Detection(
        (c - 40, c - 40, 80, 80), ((c - 20, c - 10), (c + 20, c - 10), (c, c), (c - 15, c + 15), (c + 15, c + 15)), 0.9
    )
    found = straighten.straightened(Finds([level]), np.zeros((100, 100, 3), np.uint8), det)

    assert found.box == det.box and found.score == det.score
    assert straighten.eye_line_deg(found.landmarks) == pytest.approx(angle, abs=1e-6)
    eyes = np.asarray(found.landmarks[:2])
    assert np.linalg.norm(eyes[1] - eyes[0]) == pytest.approx(40.0)  # a turn keeps distances
    left, top, width, height = det.box
    middle = np.asarray(found.landmarks, dtype=float).mean(axis=0)
    assert left < middle[0] < left + width and top < middle[1] < top + height  # where the face is


class Sees(Finds):
    """``Finds`` that also keeps the shape of each patch it is shown."""

    def __init__(self, found: list[Detection]) -> None:
        super().__init__(found)
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        self.shapes.append(rgb.shape)
        return super().detect(rgb)


TURNED = ((30.0, 40.0), (70.0, 60.0), (50.0, 60.0), (35.0, 75.0), (65.0, 90.0))  # eye line ~27°


def test_the_face_at_the_patch_centre_is_taken_not_a_larger_head_behind_it() -> None:
    det = Detection((10, 10, 80, 80), TURNED, 0.9)
    side = round(2.2 * 80)
    c = side / 2
    level = ((c - 20, c - 10), (c + 20, c - 10), (c, c), (c - 15, c + 15), (c + 15, c + 15))
    face = Detection((c - 40, c - 40, 80, 80), level, 0.9)
    behind = Detection((c - 70, c - 80, 150, 150), tuple((x + 30, y - 30) for x, y in level), 0.95)  # holds c too
    found = straighten.straightened(Finds([behind, face]), np.zeros((100, 100, 3), np.uint8), det)
    assert straighten.eye_line_deg(found.landmarks) == pytest.approx(straighten.eye_line_deg(det.landmarks), abs=1e-6)
    middle = np.asarray(found.landmarks).mean(axis=0)
    assert 10 < middle[0] < 90 and 10 < middle[1] < 90  # this face's, not the head behind's


def test_landmarks_that_map_back_outside_the_face_are_not_taken() -> None:
    det = Detection((10, 10, 80, 80), TURNED, 0.9)
    side = round(2.2 * 80)
    far = tuple(
        (x, y)
        for x, y in (
            (side - 30, side - 40),
            (side - 2, side - 40),
            (side - 15, side - 25),
            (side - 25, side - 10),
            (side - 5, side - 10),
        )
    )
    elsewhere = Detection(
        (side / 2 - 40, side / 2 - 40, 80, 80), far, 0.9
    )  # its box holds the centre, its landmarks do not
    assert straighten.straightened(Finds([elsewhere]), np.zeros((100, 100, 3), np.uint8), det) is det


def test_a_large_faces_patch_is_scaled_to_what_the_detector_looks_at() -> None:
    big = Detection((100, 100, 2000, 2000), tuple((100 + 25 * x, 100 + 25 * y) for x, y in TURNED), 0.9)
    stub = Sees([])
    straighten.straightened(stub, np.zeros((2400, 2400, 3), np.uint8), big)
    assert stub.shapes and max(stub.shapes[0][:2]) <= straighten.MAX_PATCH  # was 4,400 px a side
