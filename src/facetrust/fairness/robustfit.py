"""Calibration that duplicates cannot throw off, and that reports its own uncertainty.

* **Duplicates.** Two images of *different* labelled people (or, without identities, any two
  images) whose embeddings have cosine ≥ ``DUPLICATE_COSINE`` (0.9) are the same photo, a
  near-copy, or the same person mislabelled: no pair of different people in LFW comes near
  it (only 18 of 18.3 M same-sex pairs reach 0.6), yet UTKFace holds dozens. Left in, they
  sit exactly where FMR 1e-4 is fitted and move the threshold. ``duplicate_rows`` links such
  images into groups and keeps the first of each; the others are dropped from the fit and
  counted.
* **Uncertainty.** ``threshold_intervals`` bootstraps the fitted thresholds over identities
  (images without identities): each replicate draws every group's identities with
  replacement, weights each impostor pair ``w_a · w_b`` (``fairness.bootstrap``) and reads the
  score at which the weighted fraction of pairs at or above it falls to each target FMR.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facetrust.calibration import fmr_from_similarity
from facetrust.fairness.bootstrap import Interval, identity_weights
from facetrust.fairness.pairs import GroupPairs, PairScorer, impostor_blocks

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["DUPLICATE_COSINE", "INTERVAL_SIMILARITIES", "duplicate_rows", "threshold_intervals"]

DUPLICATE_COSINE = 0.9
INTERVAL_SIMILARITIES = (40.0, 60.0, 80.0, 99.0)
BLOCK = 2048


def _find(parent: dict[int, int], i: int) -> int:
    while parent.get(i, i) != i:
        parent[i] = parent.get(parent[i], parent[i])
        i = parent[i]
    return i


def duplicate_rows(
    vectors: np.ndarray, rows: np.ndarray, identity: Sequence[str | None], threshold: float = DUPLICATE_COSINE
) -> np.ndarray:
    """Rows (of ``rows``) to drop: in each group of linked near-duplicates, all but the first
    and the other images of the first one's person.

    Two rows are linked when their cosine is at least ``threshold`` and they do not carry the
    same identity (``None`` is nobody else's identity); links are followed transitively.
    """
    import numpy as np

    rows = np.asarray(rows, dtype=np.int64)
    ids = [identity[int(r)] for r in rows]
    parent: dict[int, int] = {}
    for start in range(0, len(rows), BLOCK):
        scores = vectors[rows[start : start + BLOCK]] @ vectors[rows].T
        for i, j in zip(*np.nonzero(scores >= threshold), strict=True):
            a, b = start + int(i), int(j)
            if b <= a or (ids[a] is not None and ids[a] == ids[b]):
                continue
            ra, rb = _find(parent, a), _find(parent, b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    drop = sorted(i for i in parent if (root := _find(parent, i)) != i and (ids[i] is None or ids[i] != ids[root]))
    out: np.ndarray = rows[np.asarray(drop, dtype=np.int64)] if drop else np.zeros(0, dtype=np.int64)
    return out


@dataclass(frozen=True)
class _Tail:
    """One group's impostor pairs scoring at or above a low cut: scores and identity indices."""

    scores: np.ndarray
    a: np.ndarray
    b: np.ndarray


def _tail(scorer: PairScorer, pairs: GroupPairs, cut: float) -> _Tail:
    import numpy as np

    s, a, b = [], [], []
    for scores, i, j in impostor_blocks(scorer, pairs.rows, pairs.identity, pairs.cell):
        hit = scores >= cut
        s.append(scores[hit])
        a.append(pairs.identity[i[hit]])
        b.append(pairs.identity[j[hit]])
    if not s:
        return _Tail(np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))
    return _Tail(np.concatenate(s), np.concatenate(a), np.concatenate(b))


def _group_totals(pairs: GroupPairs, weights: np.ndarray) -> np.ndarray:
    """Weighted impostor pair count per replicate (the closed form of ``fairness.bootstrap``)."""
    import numpy as np

    cell, ident, count = pairs.cell_sizes()
    order = np.argsort(cell, kind="stable")
    cell, ident, count = cell[order], ident[order], count[order].astype(np.float64)
    starts = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
    wn = weights[:, ident] * count
    total: np.ndarray = 0.5 * (np.add.reduceat(wn, starts, axis=1) ** 2 - np.add.reduceat(wn * wn, starts, axis=1)).sum(
        axis=1
    )
    return total


def threshold_intervals(
    groups: Sequence[tuple[PairScorer, GroupPairs]],
    cut: float,
    *,
    similarities: Sequence[float] = INTERVAL_SIMILARITIES,
    replicates: int = 200,
    level: float = 0.95,
    seed: int = 0,
    equal_weights: bool = False,
) -> dict[float, Interval]:
    """Percentile interval of the score for each Similarity, over ``replicates`` identity bootstraps.

    ``groups`` are (scorer, group pairs) of every group the calibration pooled; groups are
    resampled independently. With ``equal_weights`` the table being bootstrapped is the
    equal-weight mixture of the groups (``clusterfit.fit_mixture_calibration``): each group's
    weighted tail counts over its own weighted total, and the groups' fractions are averaged.
    ``cut`` is a score below every threshold wanted (pairs under it are only counted, never
    listed); a replicate whose tail does not reach a target FMR gives ``cut`` for it.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    tails = [_tail(scorer, g, cut) for scorer, g in groups]
    order = np.argsort(-np.concatenate([t.scores for t in tails]), kind="stable")
    sorted_scores = np.concatenate([t.scores for t in tails])[order]
    targets = np.array([fmr_from_similarity(s) for s in similarities])
    found = np.empty((replicates, len(targets)))
    for r in range(replicates):
        total, tail_w = 0.0, []
        for (_, g), t in zip(groups, tails, strict=True):
            w = identity_weights(max(g.identities, 1), 1, rng)
            own = float(_group_totals(g, w)[0])
            pair_w = w[0, t.a] * w[0, t.b]
            if equal_weights:  # this group's fraction, one group's share of the mixture
                pair_w = pair_w / (len(groups) * max(own, 1.0))
            total += own
            tail_w.append(pair_w)
        cum = np.cumsum(np.concatenate(tail_w)[order]) / (1.0 if equal_weights else max(total, 1.0))
        at = np.searchsorted(cum, targets, side="left")
        found[r] = np.where(at < len(sorted_scores), sorted_scores[np.minimum(at, len(sorted_scores) - 1)], cut)
    tail = (1.0 - level) / 2.0
    out = {}
    for k, sim in enumerate(similarities):
        low, high = np.quantile(found[:, k], [tail, 1.0 - tail])
        out[float(sim)] = Interval(float(low), float(high), level)
    return out
