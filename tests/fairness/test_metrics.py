"""Metric functions against hand-computed values on small score sets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facetrust.errors import InvalidParameterError
from facetrust.fairness.metrics import (
    differential,
    failure_to_detect,
    false_match_rate,
    false_non_match_rate,
    threshold_for_fmr,
)

IMPOSTORS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
MATED = [0.3, 0.5, 0.7, 0.9]


def test_fmr_counts_impostor_scores_at_or_above_the_threshold() -> None:
    assert false_match_rate(IMPOSTORS, 0.7) == pytest.approx(4 / 10)  # 0.7, 0.8, 0.9, 0.95
    assert false_match_rate(IMPOSTORS, 0.96) == 0.0
    assert false_match_rate(IMPOSTORS, 0.0) == 1.0


def test_fnmr_counts_mated_scores_below_the_threshold() -> None:
    assert false_non_match_rate(MATED, 0.7) == pytest.approx(2 / 4)  # 0.3, 0.5; 0.7 matches
    assert false_non_match_rate(MATED, 0.3) == 0.0


def test_rates_of_an_empty_set_are_nan_not_zero() -> None:
    assert math.isnan(false_match_rate([], 0.5))
    assert math.isnan(false_non_match_rate([], 0.5))
    assert math.isnan(failure_to_detect([]))


def test_failure_to_detect_is_the_fraction_without_a_face() -> None:
    assert failure_to_detect([True, False, True, True]) == pytest.approx(0.25)


def test_scores_with_nan_are_refused() -> None:
    with pytest.raises(InvalidParameterError, match="NaN"):
        false_match_rate([0.1, float("nan")], 0.5)


def test_threshold_for_fmr_allows_floor_target_times_n_false_matches() -> None:
    t = threshold_for_fmr(IMPOSTORS, 0.2)  # 2 of 10 may match: 0.9 and 0.95
    assert 0.8 < t <= 0.9
    assert false_match_rate(IMPOSTORS, t) == pytest.approx(0.2)


def test_threshold_for_fmr_keeps_ties_below_the_threshold() -> None:
    scores = [0.1, 0.5, 0.5, 0.5, 0.9]
    t = threshold_for_fmr(scores, 0.4)  # 2 may match, but three tie at 0.5: only 0.9 matches
    assert false_match_rate(scores, t) == pytest.approx(0.2)
    assert t > 0.5


def test_threshold_for_fmr_below_one_pair_sits_just_above_the_highest_score() -> None:
    t = threshold_for_fmr(IMPOSTORS, 1e-6)
    assert t > 0.95
    assert t == pytest.approx(0.95)
    assert false_match_rate(IMPOSTORS, t) == 0.0


def test_threshold_for_fmr_of_one_is_the_lowest_score() -> None:
    assert threshold_for_fmr(IMPOSTORS, 1.0) == pytest.approx(0.1)


@pytest.mark.parametrize("target", [0.0, -0.1, 1.5])
def test_threshold_for_fmr_refuses_a_target_outside_0_1(target: float) -> None:
    with pytest.raises(InvalidParameterError, match="Target FMR"):
        threshold_for_fmr(IMPOSTORS, target)


def test_threshold_for_fmr_refuses_no_scores() -> None:
    with pytest.raises(InvalidParameterError, match="No impostor scores"):
        threshold_for_fmr(np.zeros(0), 0.1)


def test_differential_is_worst_over_best() -> None:
    d = differential({"female": 3e-4, "male": 1e-4, "x": 2e-4}, {"female": 10, "male": 10, "x": 10})
    assert (d.worst, d.best) == ("female", "male")
    assert d.ratio == pytest.approx(3.0)
    assert not d.ratio_is_bound


def test_differential_with_a_zero_best_rate_divides_by_one_error_and_is_a_bound() -> None:
    d = differential({"a": 0.02, "b": 0.0}, {"a": 100, "b": 200})
    assert d.ratio == pytest.approx(0.02 / (1 / 200))  # = 4
    assert d.ratio_is_bound


def test_differential_of_all_zero_rates_is_one() -> None:
    d = differential({"a": 0.0, "b": 0.0}, {"a": 5, "b": 5})
    assert d.ratio == 1.0
    assert d.worst != d.best


def test_differential_leaves_out_unmeasured_groups() -> None:
    d = differential({"a": 0.2, "b": 0.1, "c": math.nan}, {"a": 1, "b": 1, "c": 0})
    assert d.ratio == pytest.approx(2.0)


def test_differential_needs_two_measured_groups() -> None:
    with pytest.raises(InvalidParameterError, match="at least two groups"):
        differential({"a": 0.1, "b": math.nan}, {"a": 1, "b": 1})


def test_threshold_for_float32_scores_holds_when_compared_in_float32() -> None:
    scores = np.random.default_rng(0).standard_normal(22922).astype(np.float32)
    t = threshold_for_fmr(scores, 1e-3)
    assert int((scores >= t).sum()) == 22  # floor(1e-3 · 22922); numpy compares float32 with a float in float32


def test_a_bounded_differential_is_never_below_one() -> None:
    d = differential({"a": 0.001, "b": 0.0}, {"a": 1000, "b": 10})  # b cannot resolve below 0.1
    assert d.ratio == 1.0
    assert d.ratio_is_bound
