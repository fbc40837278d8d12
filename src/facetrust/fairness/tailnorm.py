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

For a pair, the symmetric score is the mean of both sides' mapped scores; a probe searched
against a gallery uses its own side only (the gallery is its cohort).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from facetrust.errors import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.calibration import Calibration

__all__ = ["TailScorer", "TailStats", "anchor", "mapped", "tail_stats", "top_scores_stats"]

MIN_EXCESS = 1e-4
SELF_MATCH = 0.9999


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


def tail_stats(vectors: np.ndarray, cohort: np.ndarray, top_k: int = 50, chunk: int = 2048) -> TailStats:
    """Tail statistics of each row of ``vectors`` against ``cohort`` (the face itself left out)."""
    import numpy as np

    if top_k < 4 or len(cohort) <= top_k:
        raise InvalidParameterError(
            f"Tail statistics need top_k ≥ 4 and a cohort larger than it; got {top_k} and {len(cohort)}",
            parameter="top_k",
        )
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    tops, sizes = [], []
    for start in range(0, len(vectors), chunk):
        scores = vectors[start : start + chunk] @ cohort.T
        self_hit = scores >= SELF_MATCH
        scores[self_hit] = -1.0
        tops.append(-np.partition(-scores, top_k - 1, axis=1)[:, :top_k])
        sizes.append(len(cohort) - self_hit.sum(axis=1))
    return top_scores_stats(np.concatenate(tops), np.concatenate(sizes))


def anchor(calibration: Calibration, k: int, size: int) -> tuple[float, float]:
    """``(c, m_G)``: the global score a fraction ``k/size`` of impostors reach, and the median
    excess over it of those that do."""
    frac = min(1.0, k / max(size, k))
    c = calibration.score_for_fmr(frac)
    return c, max(calibration.score_for_fmr(frac / 2.0) - c, MIN_EXCESS)


def mapped(score: Any, u: Any, m: Any, c: Any, m_global: Any) -> Any:
    """The raw ``score`` of faces with tail statistics (u, m), on the global scale."""
    return c + (score - u) * m_global / m


class TailScorer:
    """A ``PairScorer`` of symmetric tail-normalised scores (on the global calibration's scale)."""

    def __init__(self, vectors: np.ndarray, cohort: np.ndarray, calibration: Calibration, top_k: int = 50) -> None:
        import numpy as np

        self.vectors = vectors
        stats = tail_stats(vectors, cohort, top_k)
        anchors = {int(n): anchor(calibration, top_k, int(n)) for n in np.unique(stats.size)}
        self.u, self.m = stats.u, stats.m
        self.c = np.array([anchors[int(n)][0] for n in stats.size])
        self.mg = np.array([anchors[int(n)][1] for n in stats.size])

    def side(self, raw: np.ndarray, idx: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Mapped scores of ``raw`` seen from the faces ``idx`` (reshaped to broadcast)."""
        parts = (self.u, self.m, self.c, self.mg)
        u, m, c, mg = (p[idx].reshape(shape) for p in parts)
        out: np.ndarray = mapped(raw, u, m, c, mg)
        return out

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        import numpy as np

        raw = (self.vectors[rows] @ self.vectors[cols].T).astype(np.float64)
        out: np.ndarray = 0.5 * (self.side(raw, rows, (-1, 1)) + self.side(raw, cols, (1, -1)))
        return out

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        import numpy as np

        raw = np.einsum("ij,ij->i", self.vectors[a], self.vectors[b]).astype(np.float64)
        out: np.ndarray = 0.5 * (self.side(raw, a, (-1,)) + self.side(raw, b, (-1,)))
        return out
