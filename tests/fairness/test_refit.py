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
from facetrust.fairness.datasets import DatasetSpec, ImageRecord, load_csv
from facetrust.fairness.embedding import FACE, NO_FACE
from facetrust.fairness.refit import fit_for_datasets, limit_per_identity
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


def _spec(identities: list[str | None]) -> DatasetSpec:
    images = tuple(ImageRecord(f"i{k}.png", who) for k, who in enumerate(identities))
    return DatasetSpec("data", "csv", images, ())


def test_limit_per_identity_keeps_a_seeded_choice_of_each_persons_faces() -> None:
    spec = _spec(["a"] * 6 + ["b"] * 2 + ["c"] * 5)
    status = np.full(13, FACE)
    status[0] = NO_FACE  # a faceless image is neither kept nor counted as left out

    out, dropped = limit_per_identity(spec, status, 3, seed=1)

    kept = {who: int(((out == FACE) & (np.array([r.identity for r in spec.images]) == who)).sum()) for who in "abc"}
    assert kept == {"a": 3, "b": 2, "c": 3}
    assert dropped == 2 + 2
    assert out[0] == NO_FACE and status[0] == NO_FACE and (status[1:] == FACE).all()  # the input is not changed
    again, _ = limit_per_identity(spec, status, 3, seed=1)
    assert (again == out).all()
    others = {tuple(limit_per_identity(spec, status, 3, seed=s)[0]) for s in range(2, 12)}
    assert len(others) > 1  # the seed decides which faces stay


def test_limit_per_identity_leaves_a_dataset_without_identities_as_it_is() -> None:
    spec = _spec([None] * 5)
    out, dropped = limit_per_identity(spec, np.full(5, FACE), 1)
    assert dropped == 0 and (out == FACE).all()


def test_limit_per_identity_counts_each_image_without_an_identity_as_its_own_person() -> None:
    out, dropped = limit_per_identity(_spec(["a", "a", "a", None, None]), np.full(5, FACE), 1)
    assert dropped == 2 and (out[3:] == FACE).all() and int((out[:3] == FACE).sum()) == 1


def test_limit_per_identity_below_one_names_the_parameter() -> None:
    with pytest.raises(InvalidParameterError, match="max_per_identity must be at least 1") as caught:
        limit_per_identity(_spec(["a", "b"]), np.full(2, FACE), 0)
    assert caught.value.parameter == "max_per_identity"


def test_a_calibration_fitted_with_two_images_per_identity_records_the_limit(fake_faces: Callable[..., Path]) -> None:
    spec = load_csv(fake_faces(people=40, per_person=3))

    found = fit_for_datasets(fake_engine(), [spec], cache_dir=None, max_per_identity=2, replicates=0)

    assert isinstance(found, Calibration)
    # Two faces a person (p3 has only two), 20 people a group: C(40,2) − 20 mated = 760 pairs each.
    assert found.impostor_pairs == 760 + 760
    assert found.provenance["max_per_identity"] == 2 and found.provenance["seed"] == 0
    assert found.provenance["datasets"][0]["over_identity_limit"] == 119 - 80
