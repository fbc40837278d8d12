"""Per-face tail normalisation: a face's own impostor tail, mapped onto the global calibration.

A face ``x`` compared with a cohort of ``N`` faces of (mostly) other people has ``N`` impostor
scores; their top ``K`` are the upper tail of *its* impostor distribution. Two numbers
describe where that tail lies and how fast it falls: ``u(x)``, its ``K``-th highest score
(a fraction ``K/N`` of strangers reach it), and ``m(x)``, the median of the top ``K`` scores'
excesses over ``u`` (half of those ``K`` reach ``u + m``; a median, so a few mates of ``x`` in
the cohort do not move it). The global calibration ``G`` (score → FMR over a whole population)
has the same two numbers at the same fraction: ``c = G⁻¹(K/N)`` and ``m_G = G⁻¹(K/2N) − c``.

A raw score ``s`` of ``x`` is mapped onto the global scale by matching them:

    s' = c + (s − u(x)) · m_G / m(x)

and the FMR is read off ``G`` at ``s'``. A face whose tail matches the population's gets its
score back unchanged; a face in a crowded region (children; groups a model separates less
well) has a high ``u`` and needs a higher raw score for the same Similarity; the tail's shape
beyond the top ``K`` is the calibration's, measured on many pairs, not a parametric guess
extrapolated from ``K`` points (an exponential tail read from the top 50 of a few thousand
scores overstated the FMR of light-tailed scores several-fold). No label is used, and nothing
depends on the model beyond its calibration.

A probe searched against a gallery uses its own side (the gallery is its cohort); the mean of
both sides' mapped scores (symmetric) was measured in bench/tail1n.py and is not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.calibration import Calibration

__all__ = ["TailStats", "anchor", "mapped", "top_scores_stats"]

MIN_EXCESS = 1e-4


@dataclass(frozen=True)
class TailStats:
    """Per face: ``u`` (K-th highest cohort score), ``m`` (median excess of the top K over
    ``u``) and ``size`` (cohort faces compared, the face itself left out)."""

    u: np.ndarray
    m: np.ndarray
    size: np.ndarray
    k: int


def top_scores_stats(top: Any, cohort_size: Any) -> TailStats:
    """Tail statistics from each row's top-K scores (any order)."""
    import numpy as np

    top = np.atleast_2d(np.asarray(top, dtype=np.float64))
    u = top.min(axis=1)
    m = np.maximum(np.median(top - u[:, None], axis=1), MIN_EXCESS)
    size = np.broadcast_to(np.asarray(cohort_size, dtype=np.int64), u.shape).copy()
    return TailStats(u, m, size, top.shape[1])


def anchor(calibration: Calibration, k: int, size: int) -> tuple[float, float]:
    """``(c, m_G)``: the global score a fraction ``k/size`` of impostors reach, and the median
    excess over it of those that do."""
    frac = min(1.0, k / max(size, k))
    c = calibration.score_for_fmr(frac)
    return c, max(calibration.score_for_fmr(frac / 2.0) - c, MIN_EXCESS)


def mapped(score: Any, u: Any, m: Any, c: Any, m_global: Any) -> Any:
    """The raw ``score`` of faces with tail statistics (u, m), on the global scale."""
    return c + (score - u) * m_global / m
