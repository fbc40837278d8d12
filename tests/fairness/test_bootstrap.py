"""The identity bootstrap: weights, closed-form pair counts, hand-computed replicates, intervals."""

from __future__ import annotations

import numpy as np
import pytest

from facetrust.errors import InvalidParameterError
from facetrust.fairness.bootstrap import (
    Interval,
    identity_weights,
    impostor_replicates,
    per_identity_replicates,
    percentile_interval,
    rates,
)


def test_identity_weights_draw_each_replicate_with_replacement_and_are_seeded() -> None:
    w = identity_weights(7, 50, np.random.default_rng(3))
    assert w.shape == (50, 7)
    assert (w.sum(axis=1) == 7).all()
    np.testing.assert_array_equal(w, identity_weights(7, 50, np.random.default_rng(3)))


def test_identity_weights_refuse_zero_identities() -> None:
    with pytest.raises(InvalidParameterError):
        identity_weights(0, 10, np.random.default_rng(0))


def test_impostor_pairs_of_a_replicate_follow_the_closed_form() -> None:
    # One cell; identity A has 2 images, B and C one each. Weights: A twice, B never, C once.
    weights = np.array([[2.0, 0.0, 1.0]])
    cells = (np.array([0, 0, 0]), np.array([0, 1, 2]), np.array([2, 1, 1]))
    # Two copies of A (4 images) and one of C: 4 A–C pairs (A–A copies are the same person).
    wrong, total = impostor_replicates(weights, cells, np.array([0]), np.array([2]))
    assert total.tolist() == [4.0]
    assert wrong.tolist() == [2.0]  # the one A–C false match, once per copy of A


def test_unit_weights_reproduce_the_plain_pair_count_over_several_cells() -> None:
    weights = np.ones((1, 4))
    # Cell 0: identities 0 (3 images) and 1 (2 images) → 6 impostor pairs.
    # Cell 1: identities 2, 3 (1 image each) and 0 (1 image) → 3 pairs.
    cells = (np.array([0, 0, 1, 1, 1]), np.array([0, 1, 2, 3, 0]), np.array([3, 2, 1, 1, 1]))
    wrong, total = impostor_replicates(weights, cells, np.array([0, 2]), np.array([1, 3]))
    assert total.tolist() == [9.0]
    assert wrong.tolist() == [2.0]


def test_per_identity_replicates_weight_each_identitys_trials() -> None:
    weights = np.array([[1.0, 1.0, 1.0], [3.0, 0.0, 0.0]])
    wrong, total = per_identity_replicates(weights, np.array([4, 2, 2]), np.array([1, 0, 2]))
    np.testing.assert_allclose(rates(wrong, total), [3 / 8, 3 / 12])


def test_rates_are_nan_where_a_replicate_drew_no_trial() -> None:
    out = rates(np.array([0.0, 1.0]), np.array([0.0, 2.0]))
    assert np.isnan(out[0]) and out[1] == 0.5


def test_percentile_interval_covers_the_middle_of_the_replicates() -> None:
    box = percentile_interval(np.arange(1001) / 1000, level=0.9, errors=5, units=10)
    assert box.low == pytest.approx(0.05)
    assert box.high == pytest.approx(0.95)


def test_with_no_errors_the_upper_end_is_the_rule_of_three_over_identities() -> None:
    box = percentile_interval(np.zeros(100), level=0.95, errors=0, units=100)
    assert box.low == 0.0
    assert box.high == pytest.approx(1 - 0.05 ** (1 / 100))  # ≈ 3/100
    assert box.high == pytest.approx(0.0295, abs=1e-3)


def test_when_every_trial_is_an_error_the_lower_end_is_the_rule_of_three_mirrored() -> None:
    box = percentile_interval(np.ones(100), level=0.95, errors=60, units=20)
    assert box.high == 1.0
    assert box.low == pytest.approx(0.05 ** (1 / 20))  # ≈ 1 - 3/20, not a zero-width [1, 1]


def test_percentile_interval_refuses_a_level_outside_0_1() -> None:
    with pytest.raises(InvalidParameterError, match="Confidence level"):
        percentile_interval(np.zeros(3), level=1.0, errors=1, units=3)


def test_errors_from_one_unit_span_the_whole_range() -> None:
    assert percentile_interval(np.full(100, 0.3), level=0.95, errors=3, units=1) == Interval(0.0, 1.0, 0.95)
    assert percentile_interval(np.full(100, 0.3), level=0.95, errors=3, units=2) == Interval(0.3, 0.3, 0.95)
