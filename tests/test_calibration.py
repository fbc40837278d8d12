"""Calibration: Similarity ↔ FMR, fitting a table from impostor scores, and its file format."""

from __future__ import annotations

import json
import math
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from facetrust.calibration import (
    Calibration,
    default_calibration,
    fit_calibration,
    fmr_from_similarity,
    similarity_from_fmr,
)
from facetrust.errors import ConfigurationError, InvalidParameterError, NotFoundError

# -- the Similarity scale -------------------------------------------------------------------


@pytest.mark.parametrize(("fmr", "similarity"), [(1e-4, 80.0), (1e-2, 40.0), (1.0, 0.0), (1e-5, 100.0)])
def test_similarity_from_fmr_is_twenty_times_the_decades(fmr: float, similarity: float) -> None:
    assert similarity_from_fmr(fmr) == pytest.approx(similarity)


def test_similarity_99_corresponds_to_an_fmr_of_about_1_12e_minus_5() -> None:
    assert fmr_from_similarity(99.0) == pytest.approx(1.122e-5, rel=1e-3)
    assert similarity_from_fmr(1.122e-5) == pytest.approx(99.0, abs=0.01)


def test_fmr_from_similarity_80_is_one_in_ten_thousand() -> None:
    assert fmr_from_similarity(80.0) == pytest.approx(1e-4)


@pytest.mark.parametrize("fmr", [1e-6, 1e-12, 0.0])
def test_similarity_from_fmr_clips_at_100(fmr: float) -> None:
    assert similarity_from_fmr(fmr) == 100.0


@pytest.mark.parametrize("fmr", [1.0, 2.0, 1e3])
def test_similarity_from_fmr_clips_at_0(fmr: float) -> None:
    assert similarity_from_fmr(fmr) == 0.0


@pytest.mark.parametrize("similarity", [0.0, 12.5, 50.0, 80.0, 99.0, 100.0])
def test_similarity_and_fmr_are_inverse_inside_0_to_100(similarity: float) -> None:
    assert similarity_from_fmr(fmr_from_similarity(similarity)) == pytest.approx(similarity)


@pytest.mark.parametrize("similarity", [-0.1, 100.5, math.nan])
def test_fmr_from_similarity_refuses_values_outside_0_to_100(similarity: float) -> None:
    with pytest.raises(InvalidParameterError, match="outside 0–100") as info:
        fmr_from_similarity(similarity)
    assert info.value.parameter == "threshold"


# -- fitting ----------------------------------------------------------------------------------

N_IMPOSTORS = 200_000


@pytest.fixture(scope="module")
def impostors() -> np.ndarray:
    return np.random.default_rng(2024).normal(0.0, 0.1, N_IMPOSTORS)


@pytest.fixture(scope="module")
def fitted(impostors: np.ndarray) -> Calibration:
    return fit_calibration(impostors, model="m:1", dataset="synthetic normal", provenance={"seed": 2024})


@pytest.mark.parametrize("threshold", [-0.1, 0.0, 0.1, 0.2, 0.25, 0.3, 0.35])
def test_fit_calibration_estimates_the_empirical_fmr(
    impostors: np.ndarray, fitted: Calibration, threshold: float
) -> None:
    empirical = float((impostors >= threshold).mean())
    estimate, bound = fitted.fmr(threshold)
    assert not bound
    # Knots are 0.05 decades apart; between them the empirical fraction can move by at most that.
    assert math.log10(estimate) == pytest.approx(math.log10(empirical), abs=0.05)


def test_fit_calibration_fmr_never_increases_with_the_score(fitted: Calibration) -> None:
    grid = np.linspace(-0.6, 0.6, 2001)
    values = [fitted.fmr(float(s))[0] for s in grid]
    assert all(b <= a for a, b in pairwise(values))
    assert values[0] == 1.0


def test_fit_calibration_table_is_strictly_increasing_in_score(fitted: Calibration) -> None:
    assert all(b > a for a, b in pairwise(fitted.scores))
    assert all(b <= a for a, b in pairwise(fitted.log10_fmr))


def test_fit_calibration_floor_is_min_count_over_the_pair_count(fitted: Calibration) -> None:
    assert fitted.floor_fmr == pytest.approx(10 / N_IMPOSTORS)
    assert fitted.impostor_pairs == N_IMPOSTORS
    assert fitted.log10_fmr[-1] == pytest.approx(math.log10(fitted.floor_fmr), abs=1e-4)


def test_fit_calibration_honours_min_count(impostors: np.ndarray) -> None:
    table = fit_calibration(impostors, model="m", dataset="d", min_count=100)
    assert table.floor_fmr == pytest.approx(100 / N_IMPOSTORS)


def test_fmr_beyond_the_last_knot_is_the_floor_flagged_as_a_bound(fitted: Calibration) -> None:
    for score in (fitted.scores[-1], fitted.scores[-1] + 0.01, 0.99):
        fmr, bound = fitted.fmr(score)
        assert bound
        assert fmr == fitted.floor_fmr


def test_fmr_never_rises_where_the_table_ends_though_its_knots_are_rounded() -> None:
    table = Calibration("m", (0.0, 0.5), (0.0, -6.75391), 1.7623526646737041e-07, 56_742_332, "d")
    below, at = table.fmr(0.5 - 1e-9)[0], table.fmr(0.5)[0]
    assert below >= at == table.floor_fmr


def test_fmr_just_below_the_last_knot_is_an_estimate(fitted: Calibration) -> None:
    fmr, bound = fitted.fmr(fitted.scores[-1] - 1e-4)
    assert not bound
    assert fmr >= fitted.floor_fmr


def test_fmr_below_the_first_knot_is_one(fitted: Calibration) -> None:
    assert fitted.fmr(-5.0) == (1.0, False)


@pytest.mark.parametrize("score", [math.nan, math.inf, -math.inf])
def test_fmr_refuses_a_score_that_is_not_finite(fitted: Calibration, score: float) -> None:
    with pytest.raises(InvalidParameterError, match="not a finite number"):
        fitted.fmr(score)


@pytest.mark.parametrize("fmr", [0.5, 1e-1, 1e-2, 1e-3, 1e-4])
def test_score_for_fmr_is_the_inverse_of_fmr(fitted: Calibration, fmr: float) -> None:
    score = fitted.score_for_fmr(fmr)
    assert fitted.fmr(score)[0] == pytest.approx(fmr, rel=1e-3)


def test_score_for_fmr_rises_as_the_fmr_falls(fitted: Calibration) -> None:
    scores = [fitted.score_for_fmr(10.0**-k) for k in (1, 2, 3, 4)]
    assert scores == sorted(scores)
    assert len(set(scores)) == 4


def test_score_for_fmr_clamps_below_the_floor_to_the_last_knot(fitted: Calibration) -> None:
    assert fitted.score_for_fmr(1e-9) == pytest.approx(fitted.scores[-1])


@pytest.mark.parametrize("fmr", [0.0, -0.1, 1.5])
def test_score_for_fmr_refuses_an_fmr_outside_0_to_1(fitted: Calibration, fmr: float) -> None:
    with pytest.raises(InvalidParameterError, match="must be in"):
        fitted.score_for_fmr(fmr)


def test_score_for_similarity_80_is_the_score_at_fmr_1e_minus_4(fitted: Calibration) -> None:
    assert fitted.score_for_similarity(80.0) == pytest.approx(fitted.score_for_fmr(1e-4))
    assert fitted.similarity(fitted.score_for_similarity(80.0)) == pytest.approx(80.0, abs=0.01)


def test_compare_reports_similarity_fmr_and_the_match_decision(fitted: Calibration) -> None:
    high = fitted.compare(0.9, threshold=80.0)
    assert high.is_match
    assert high.fmr_is_bound
    assert high.similarity == pytest.approx(similarity_from_fmr(fitted.floor_fmr), abs=1e-3)
    assert high.score == 0.9
    low = fitted.compare(0.1, threshold=80.0)
    assert not low.is_match
    assert low.similarity < 80.0
    assert not fitted.compare(0.9).is_match  # no threshold, no decision


def test_fit_calibration_refuses_too_few_scores() -> None:
    with pytest.raises(InvalidParameterError, match="at least 1000") as info:
        fit_calibration(np.zeros(999), model="m", dataset="d")
    assert info.value.parameter == "impostor_scores"


def test_fit_calibration_refuses_nan_scores() -> None:
    scores = np.random.default_rng(0).normal(size=2000)
    scores[5] = np.nan
    with pytest.raises(InvalidParameterError, match="NaN"):
        fit_calibration(scores, model="m", dataset="d")


def test_fit_calibration_gives_distinct_knots_when_scores_crowd_within_rounding() -> None:
    # Distinct knots closer than the 6 decimals the table keeps must not collide.
    scores = 0.3 + 1e-6 * np.random.default_rng(5).normal(size=5000)
    table = fit_calibration(scores, model="m", dataset="d")
    assert all(b > a for a, b in pairwise(table.scores))
    assert all(b <= a for a, b in pairwise(table.log10_fmr))


def test_fit_calibration_refuses_scores_that_are_all_equal() -> None:
    with pytest.raises(InvalidParameterError, match="all equal"):
        fit_calibration(np.full(5000, 0.25), model="m", dataset="d")


def test_fit_calibration_knot_fmr_is_the_fraction_at_or_above_even_with_ties() -> None:
    # Scores on a coarse grid: many ties. Each knot's FMR counts every pair tied with it.
    scores = np.round(np.random.default_rng(9).normal(0, 0.1, 50_000), 2)
    table = fit_calibration(scores, model="m", dataset="d")
    assert len(table.scores) > 10
    for knot, log10_fmr in zip(table.scores, table.log10_fmr, strict=True):
        assert 10**log10_fmr == pytest.approx((scores >= knot).mean(), rel=1e-3)


# -- file format ------------------------------------------------------------------------------


def test_calibration_survives_a_json_round_trip(fitted: Calibration) -> None:
    again = Calibration.from_json(fitted.to_json())
    assert again == fitted
    assert again.provenance == {"seed": 2024}
    assert again.fmr(0.2) == fitted.fmr(0.2)


def test_calibration_loads_from_a_file(tmp_path: Path, fitted: Calibration) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(fitted.to_json())
    assert Calibration.load(path) == fitted


def test_calibration_json_names_its_format(fitted: Calibration) -> None:
    assert json.loads(fitted.to_json())["format"] == "facetrust-calibration/1"


def valid_data() -> dict[str, object]:
    return {
        "format": "facetrust-calibration/1",
        "model": "m",
        "scores": [0.0, 0.5],
        "log10_fmr": [0.0, -3.0],
        "floor_fmr": 1e-3,
        "impostor_pairs": 10_000,
        "dataset": "d",
    }


def test_calibration_from_valid_data_loads() -> None:
    table = Calibration.from_json(json.dumps(valid_data()))
    assert table.fmr(0.25)[0] == pytest.approx(10**-1.5)


@pytest.mark.parametrize(
    "change",
    [
        {"format": "facetrust-calibration/2"},
        {"format": None},
        {"model": None, "scores": "abc"},
        {"scores": [0.0]},
        {"scores": [0.5, 0.0]},
        {"scores": [0.0, 0.0]},
        {"scores": [0.0, "NaN"]},
        {"log10_fmr": [-3.0, 0.0]},
        {"log10_fmr": [0.0, -3.0, -4.0]},
        {"floor_fmr": 0.0},
        {"floor_fmr": "low"},
        {"impostor_pairs": None},
        {"impostor_pairs": -5},
        {"impostor_pairs": True},
        {"floor_fmr": 0.5},  # above the last knot's FMR: a higher score would get a higher FMR
        {"log10_fmr": [1.0, -3.0]},  # an FMR above 1
        {"scores": "05"},  # a string is not a list of numbers
        {"scores": [False, True]},
        {"flor_fmr": 1e-3},  # a misspelt field is not ignored
    ],
)
def test_calibration_refuses_an_invalid_table_as_a_configuration_error(change: dict[str, object]) -> None:
    data = valid_data()
    data.update(change)
    if change.get("format", "keep") is None:
        del data["format"]
    with pytest.raises(ConfigurationError):
        Calibration.from_json(json.dumps(data))


@pytest.mark.parametrize("key", ["model", "scores", "log10_fmr", "floor_fmr", "impostor_pairs", "dataset"])
def test_calibration_refuses_a_file_missing_a_field_naming_it(key: str) -> None:
    data = valid_data()
    del data[key]
    with pytest.raises(ConfigurationError, match=key):
        Calibration.from_json(json.dumps(data), origin="cal.json")


@pytest.mark.parametrize("text", ["", "{", "[]", "null", "1", '"text"'])
def test_calibration_refuses_text_that_is_not_a_json_object(text: str) -> None:
    with pytest.raises(ConfigurationError, match=r"cal\.json is not a valid calibration file"):
        Calibration.from_json(text, origin="cal.json")


def test_a_table_failing_its_own_checks_is_refused_naming_the_file() -> None:
    data = valid_data()
    data["log10_fmr"] = list(reversed(data["log10_fmr"]))  # the FMR rising with the score
    with pytest.raises(ConfigurationError, match=r"^cal\.json is not a valid calibration file: .*must not increase"):
        Calibration.from_json(json.dumps(data), origin="cal.json")


def test_reaches_says_which_similarities_some_score_gets() -> None:
    short = Calibration("m", (0.0, 0.5), (0.0, -2.0), 1e-2, 1_000, "a small site")
    assert short.top_similarity == pytest.approx(40.0)
    assert short.reaches(40.0) and not short.reaches(40.5) and not short.reaches(80.0)
    assert max(short.similarity(s) for s in (0.5, 0.9, 1.0)) == pytest.approx(40.0)
    exact = Calibration("m", (0.0, 0.5), (0.0, -4.0), 1e-4, 10**5, "just enough")
    assert exact.reaches(80.0) and exact.compare(0.5, 80.0).similarity == 80.0
    # the score a threshold starts at: the table's last score would be a lie where it never reaches it
    assert exact.match_score(80.0) == 0.5 and short.match_score(40.0) == 0.5
    assert short.match_score(80.0) == math.inf and short.score_for_similarity(80.0) == 0.5


def test_calibration_load_refuses_a_missing_file_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(ConfigurationError, match=r"absent\.json"):
        Calibration.load(path)


def test_default_calibration_refuses_an_unknown_model() -> None:
    with pytest.raises(NotFoundError, match="No shipped calibration for model 'nobody:0'") as info:
        default_calibration("nobody:0")
    assert info.value.resource == "nobody:0"


# -- the shipped raw tables: one recipe for every profile ---------------------------------------

SHIPPED_MODELS = ["sface-2021dec:fb143eea0783", "sface-2021dec:fb143eea0783+flip", "fused-sface-dlib:a5ff4225b9ac"]


@pytest.mark.parametrize("model", SHIPPED_MODELS)
def test_every_shipped_table_is_fitted_by_the_same_recipe_on_all_of_lfw(model: str) -> None:
    cal = default_calibration(model)
    prov = cal.provenance
    assert prov["script"] == "bench/calibrate.py"
    assert prov["duplicate_cosine"] == 0.9 and prov["duplicates_dropped"] >= 0
    assert prov["images"] > 13_000  # all of LFW's images with a face and a sex label
    assert cal.dataset.startswith("LFW (grayscale copy, 250x250): all ")


@pytest.mark.parametrize("model", SHIPPED_MODELS)
def test_every_shipped_table_records_an_interval_around_each_threshold(model: str) -> None:
    cal = default_calibration(model)
    assert cal.provenance["bootstrap"]["level"] == 0.95
    for similarity, (low, high) in cal.provenance["threshold_intervals"].items():
        assert low <= cal.score_for_similarity(float(similarity)) <= high, similarity


@pytest.mark.parametrize("value", [None, "80", True])
def test_the_scale_functions_refuse_what_is_not_a_number_by_name(value: object) -> None:
    with pytest.raises(InvalidParameterError) as by_similarity:
        fmr_from_similarity(value)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError) as by_fmr:
        similarity_from_fmr(value)  # type: ignore[arg-type]
    assert (by_similarity.value.parameter, by_fmr.value.parameter) == ("threshold", "fmr")


def test_similarity_from_fmr_refuses_nan() -> None:
    with pytest.raises(InvalidParameterError, match="NaN"):
        similarity_from_fmr(math.nan)


def test_a_calibration_refuses_a_score_or_threshold_of_the_wrong_kind() -> None:
    cal = default_calibration("sface-2021dec:fb143eea0783+flip")
    with pytest.raises(InvalidParameterError) as score:
        cal.fmr(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="outside 0–100") as threshold:
        cal.compare(0.5, threshold=500)
    assert (score.value.parameter, threshold.value.parameter) == ("score", "threshold")
    assert cal.compare(0.5, threshold=np.float32(80)).threshold == 80.0


def test_a_calibration_file_loads_from_a_str_path_and_refuses_one_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    path.write_text(default_calibration("sface-2021dec:fb143eea0783+flip").to_json())
    assert Calibration.load(str(path)).model == "sface-2021dec:fb143eea0783+flip"
    path.write_bytes(b"\xff\xfe not text")
    with pytest.raises(ConfigurationError, match="is not UTF-8"):
        Calibration.load(path)
