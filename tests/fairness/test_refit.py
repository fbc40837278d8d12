"""Refitting the calibration on labelled data, with provenance; the engine then uses it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from facetrust.calibration import Calibration
from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.errors import InvalidParameterError
from facetrust.fairness.datasets import load_csv
from facetrust.fairness.refit import fit_for_datasets
from facetrust.models.fake import FakeDetector, FakeRecogniser, fake_calibration, fake_engine
from facetrust.normalise import CohortNormaliser


@pytest.fixture
def fitted(fake_faces: Callable[..., Path]) -> Calibration:
    spec = load_csv(fake_faces(people=40, per_person=2))
    found = fit_for_datasets(fake_engine(), [spec], cache_dir=None)
    assert isinstance(found, Calibration)
    return found


def test_the_calibration_is_for_the_engines_model_and_records_its_provenance(fitted: Calibration) -> None:
    assert fitted.model == "fake-recogniser:0"
    # Two groups of 20 people with 2 images each; one image of p3 (group "a") has no face.
    # Same-group pairs of different people: a: C(39,2) − 19 mated = 722; b: C(40,2) − 20 = 760.
    assert fitted.impostor_pairs == 722 + 760
    prov = fitted.provenance
    assert prov["made_by"] == "facetrust calibrate" and prov["model"] == "fake-recogniser:0"
    (dataset,) = prov["datasets"]
    assert len(dataset["hash"]) == 64
    assert sum(dataset["pairs"].values()) == fitted.impostor_pairs


def test_an_engine_uses_a_calibration_file_from_the_settings(fitted: Calibration, tmp_path: Path) -> None:
    (tmp_path / "cal.json").write_text(fitted.to_json())
    settings = Settings(flip_augment=False, calibration_file=tmp_path / "cal.json")
    engine = FaceEngine(FakeDetector(), FakeRecogniser(), settings=settings)
    assert engine.calibration == fitted


def test_an_engine_refuses_a_calibration_file_made_for_another_model(fitted: Calibration, tmp_path: Path) -> None:
    data = json.loads(fitted.to_json())
    data["model"] = "sface-2021dec:fb143eea0783+flip"
    (tmp_path / "cal.json").write_text(json.dumps(data))
    settings = Settings(flip_augment=False, calibration_file=tmp_path / "cal.json")
    with pytest.raises(InvalidParameterError, match="Calibration is for model 'sface-2021dec:fb143eea0783\\+flip'"):
        FaceEngine(FakeDetector(), FakeRecogniser(), settings=settings)


def test_with_a_cohort_the_result_is_a_normaliser_calibrated_on_normalised_scores(
    fake_faces: Callable[..., Path],
) -> None:
    spec = load_csv(fake_faces(people=40, per_person=2))
    cohort = np.random.default_rng(0).standard_normal((60, 32)).astype(np.float32)
    cohort /= np.linalg.norm(cohort, axis=1, keepdims=True)
    normaliser = CohortNormaliser("fake-recogniser:0", cohort, top_k=10)

    found = fit_for_datasets(fake_engine(), [spec], cache_dir=None, normaliser=normaliser)

    assert isinstance(found, CohortNormaliser)
    assert found.calibration is not None and found.calibration.model == normaliser.score_id
    settings = Settings(flip_augment=False)
    engine = FaceEngine(
        FakeDetector(), FakeRecogniser(), calibration=fake_calibration(), settings=settings, normaliser=found
    )
    assert engine.normaliser is found
