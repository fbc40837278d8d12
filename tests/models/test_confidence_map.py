"""YuNet's score on Rekognition's confidence scale: the shipped map, and how a Face carries both."""

from __future__ import annotations

import itertools
import json
from importlib.resources import files

import numpy as np
import pytest

from facetrust.analysis import build_face
from facetrust.models.base import Detection
from facetrust.models.yunet import CONFIDENCE_FILE, calibrated_confidence

MARKS = ((40.0, 50.0), (70.0, 50.0), (55.0, 65.0), (45.0, 80.0), (65.0, 80.0))


def test_the_shipped_map_holds_aggregate_parameters_only() -> None:
    data = json.loads(files("facetrust.data").joinpath(CONFIDENCE_FILE).read_text())

    assert set(data) == {"model", "form", "a", "b", "fitted_on", "made_by"}
    assert data["made_by"] == "bench/confidence.py" and data["a"] > 0


def test_the_map_is_increasing_and_bounded() -> None:
    scores = np.linspace(0.0, 1.0, 101)
    mapped = [calibrated_confidence(float(s)) for s in scores]

    assert all(0.0 <= m <= 100.0 for m in mapped)
    assert all(a <= b for a, b in itertools.pairwise(mapped))


def test_a_typical_clear_face_score_reaches_99_and_a_weak_candidate_stays_low() -> None:
    assert calibrated_confidence(0.93) >= 99.0  # the median YuNet score of an LFW/UTKFace face
    assert calibrated_confidence(0.3) < 50.0


def test_a_face_carries_the_calibrated_confidence_and_the_raw_score() -> None:
    image = np.full((200, 200, 3), 128, dtype=np.uint8)
    det = Detection((20.0, 20.0, 70.0, 80.0), MARKS, 0.93, calibrated_confidence(0.93))

    face = build_face(image, det, min_face_size=40)

    assert face.confidence == pytest.approx(calibrated_confidence(0.93), abs=1e-3)
    assert face.detector_score == pytest.approx(93.0) and face.raw_score == pytest.approx(93.0)


def test_a_detector_without_a_map_reports_its_score_as_the_confidence() -> None:
    image = np.full((200, 200, 3), 128, dtype=np.uint8)
    face = build_face(image, Detection((20.0, 20.0, 70.0, 80.0), MARKS, 0.8), min_face_size=40)

    assert face.confidence == pytest.approx(80.0) and face.detector_score == pytest.approx(80.0)
