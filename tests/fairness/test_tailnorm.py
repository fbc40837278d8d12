"""The tail map: a face's own impostor tail against a cohort, mapped onto the global calibration."""

from __future__ import annotations

import numpy as np

from facetrust.calibration import fit_calibration
from facetrust.fairness.tailnorm import anchor, mapped, top_scores_stats


def test_a_face_whose_tail_is_the_populations_keeps_its_score_and_a_crowded_one_loses() -> None:
    rng = np.random.default_rng(3)
    population = rng.normal(0.0, 0.1, 2_000_000)
    cal = fit_calibration(population, model="m", dataset="normal scores")
    size = 20_000
    typical = top_scores_stats(np.sort(rng.normal(0.0, 0.1, size))[-50:], size)
    crowded = top_scores_stats(np.sort(rng.normal(0.15, 0.1, size))[-50:], size)
    c, m_global = anchor(cal, 50, size)
    for s in (0.35, 0.45):
        assert abs(mapped(s, typical.u[0], typical.m[0], c, m_global) - s) < 0.03
        assert mapped(s, crowded.u[0], crowded.m[0], c, m_global) < s - 0.1


def test_the_median_excess_ignores_a_few_mates_at_the_top() -> None:
    rng = np.random.default_rng(4)
    top = np.sort(rng.normal(0.0, 0.1, 10_000))[-50:]
    with_mates = top.copy()
    with_mates[-3:] = [0.9, 0.85, 0.8]  # three photos of the same person among the top 50
    a, b = top_scores_stats(top, 10_000), top_scores_stats(with_mates, 10_000)
    assert a.u[0] == b.u[0] and abs(a.m[0] - b.m[0]) < 0.01
