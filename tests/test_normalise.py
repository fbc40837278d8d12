"""Cohort score normalisation: statistics, the formula, its file, and the engine's comparison path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facetrust.calibration import Calibration
from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.errors import ConfigurationError, InvalidParameterError
from facetrust.models.fake import FakeDetector, FakeRecogniser, fake_calibration, fake_engine
from facetrust.normalise import CohortNormaliser
from facetrust.types import FaceEmbedding

MODEL = FakeRecogniser.model_id


def unit_rows(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def linear(model: str) -> Calibration:
    return Calibration(model, (0.0, 6.0), (0.0, -6.0), 1e-6, 1_000_000, "synthetic normalised scores")


def test_stats_are_the_mean_and_std_of_the_top_k_cohort_scores() -> None:
    cohort = np.array([[1, 0], [0.8, 0.6], [0.6, 0.8], [0, 1]], dtype=np.float32)
    n = CohortNormaliser(MODEL, cohort, top_k=2)
    mu, sd = n.stats(np.array([[0.6, 0.8]], dtype=np.float32))
    # scores 0.6, 0.96, 1.0 (itself: left out), 0.8 → top two: 0.96, 0.8
    assert mu[0] == pytest.approx(0.88)
    assert sd[0] == pytest.approx(0.08)


def test_normalise_averages_the_two_z_scores() -> None:
    n = CohortNormaliser(MODEL, unit_rows(10), top_k=3)
    assert n.normalise(0.5, (0.3, 0.1), (0.1, 0.2)) == pytest.approx(0.5 * (2.0 + 2.0))


def test_score_id_names_the_cohort_and_k() -> None:
    a = CohortNormaliser(MODEL, unit_rows(10), top_k=3)
    assert a.score_id == f"{MODEL}+asnorm3-{a.digest}"
    assert CohortNormaliser(MODEL, unit_rows(10, seed=1), top_k=3).score_id != a.score_id


def test_a_calibration_of_other_scores_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not for"):
        CohortNormaliser(MODEL, unit_rows(10), top_k=3, calibration=linear(MODEL))


def test_a_cohort_not_larger_than_k_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="more than top_k"):
        CohortNormaliser(MODEL, unit_rows(3), top_k=3)


def test_the_file_round_trips_owner_only(tmp_path: Path) -> None:
    n = CohortNormaliser(MODEL, unit_rows(10), top_k=3, provenance={"cohort": "x"})
    n = n.with_calibration(linear(n.score_id))
    n.save(tmp_path / "c.npz")
    back = CohortNormaliser.load(tmp_path / "c.npz")
    assert (back.score_id, back.top_k, back.provenance, back.calibration) == (
        n.score_id,
        3,
        {"cohort": "x"},
        n.calibration,
    )
    assert (tmp_path / "c.npz").stat().st_mode & 0o777 == 0o600


def test_a_file_that_is_not_a_cohort_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "c.npz").write_bytes(b"nope")
    with pytest.raises(ConfigurationError, match=r"not an \.npz archive"):
        CohortNormaliser.load(tmp_path / "c.npz")


def _archive(path: Path, meta: object, cohort: np.ndarray) -> Path:
    import json

    np.savez(path, cohort=cohort, meta=np.array(json.dumps(meta)), calibration=np.array(""))
    return path


@pytest.mark.parametrize(
    ("meta", "cohort", "why"),
    [
        ({"format": "facetrust-cohort/1", "model": MODEL}, unit_rows(10), "top_k a whole number"),
        ({"format": "facetrust-cohort/1", "model": MODEL, "top_k": "3"}, unit_rows(10), "top_k a whole number"),
        ({"format": "facetrust-cohort/1", "model": MODEL, "top_k": 3, "provenance": "x"}, unit_rows(10), "provenance"),
        ({"format": "facetrust-cohort/1", "model": MODEL, "top_k": 3}, np.full((10, 32), np.nan), "finite numbers"),
        ({"format": "facetrust-cohort/1", "model": MODEL, "top_k": 30}, unit_rows(10), "more than top_k"),
    ],
    ids=["no-top-k", "text-top-k", "text-provenance", "nan", "small"],
)
def test_a_malformed_cohort_file_is_a_configuration_error_naming_what_is_wrong(
    tmp_path: Path, meta: dict[str, object], cohort: np.ndarray, why: str
) -> None:
    from facetrust.normalise import FORMAT

    meta = {**meta, "format": FORMAT}
    with pytest.raises(ConfigurationError, match=why) as info:
        CohortNormaliser.load(_archive(tmp_path / "c.npz", meta, cohort))
    assert info.value.setting == "cohort_file"


def test_a_single_array_file_is_refused_as_not_a_cohort_archive(tmp_path: Path) -> None:
    np.save(tmp_path / "c.npy", unit_rows(10))
    with pytest.raises(ConfigurationError, match=r"not an \.npz archive"):
        CohortNormaliser.load(tmp_path / "c.npy")


def test_a_cohort_of_embeddings_of_another_length_is_refused_when_the_engine_loads_it(tmp_path: Path) -> None:
    n = CohortNormaliser(MODEL, unit_rows(10, dim=64), top_k=3)
    n.with_calibration(linear(n.score_id)).save(tmp_path / "wide.npz")
    with pytest.raises(InvalidParameterError, match="64-dimensional embeddings"):
        engine_with(Settings(flip_augment=False, cohort_file=tmp_path / "wide.npz"))


def embedding(v: np.ndarray) -> FaceEmbedding:
    return FaceEmbedding(vector=v, model=MODEL, face=None)


def test_the_engine_judges_normalised_scores_by_the_normalisers_calibration_and_reports_the_raw_score() -> None:
    cohort = unit_rows(50)
    n = CohortNormaliser(MODEL, cohort, top_k=5)
    n = n.with_calibration(linear(n.score_id))
    engine = fake_engine()
    engine.normaliser = n
    a, b = unit_rows(2, seed=7)
    raw, z = n.score(a, b)

    result = engine.compare_embeddings(embedding(a), embedding(b))

    assert result.score == pytest.approx(raw)
    assert result.fmr == pytest.approx(linear(n.score_id).fmr(z)[0])


def test_settings_cohort_file_switches_the_engine_on_and_a_foreign_model_is_refused(tmp_path: Path) -> None:
    n = CohortNormaliser(MODEL, unit_rows(10), top_k=3)
    n.with_calibration(linear(n.score_id)).save(tmp_path / "ok.npz")
    settings = Settings(flip_augment=False, cohort_file=tmp_path / "ok.npz")
    engine = engine_with(settings)
    assert engine.normaliser is not None and engine.normaliser.score_id == n.score_id

    other = CohortNormaliser("other:1", unit_rows(10), top_k=3)
    other.with_calibration(linear(other.score_id)).save(tmp_path / "other.npz")
    with pytest.raises(InvalidParameterError, match="is for model 'other:1'"):
        engine_with(Settings(flip_augment=False, cohort_file=tmp_path / "other.npz"))


def test_a_cohort_file_without_calibration_is_refused(tmp_path: Path) -> None:
    CohortNormaliser(MODEL, unit_rows(10), top_k=3).save(tmp_path / "bare.npz")
    with pytest.raises(InvalidParameterError, match="no calibration of normalised scores"):
        engine_with(Settings(flip_augment=False, cohort_file=tmp_path / "bare.npz"))


def engine_with(settings: Settings) -> FaceEngine:
    return FaceEngine(FakeDetector(), FakeRecogniser(), calibration=fake_calibration(MODEL), settings=settings)
