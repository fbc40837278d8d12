"""Fitting the cluster normaliser (``facetrust.clusternorm``): centroids that may be
shipped, per-cluster offsets, and a table over several populations.

* ``fit_centroids``: seeded spherical k-means whose every centroid averages at least
  ``MIN_PEOPLE`` distinct people with none above ``MAX_PERSON_SHARE`` of its faces
  (``check_privacy``);
* ``cluster_offsets``: each cluster's score at a target FMR over the impostor pairs it takes
  part in, less the same over all pairs;
* ``fit_mixture_calibration``: a score → FMR table of an equal-weight mixture of impostor sets;
* ``unreliable_clusters``: the clusters whose pairs still match far more often than promised
  at a normalised threshold (the lower end of a 95 % Wilson interval above a tolerance).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from facetrust.calibration import Calibration
from facetrust.errors import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "MAX_PERSON_SHARE",
    "MIN_PEOPLE",
    "PairSet",
    "capped_rows",
    "check_privacy",
    "cluster_offsets",
    "fit_centroids",
    "fit_mixture_calibration",
    "tail_counts",
    "unreliable_clusters",
    "wilson_low",
]

MIN_PEOPLE = 50
MAX_PERSON_SHARE = 0.10
GRID = 4001  # score histogram bins over [-1, 1] for the per-cluster thresholds


def _unit(x: np.ndarray) -> np.ndarray:
    import numpy as np

    out: np.ndarray = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return out


def _lloyd(vectors: np.ndarray, centroids: np.ndarray, iterations: int) -> np.ndarray:
    """Spherical k-means iterations (cosine assignment, normalised means)."""
    import numpy as np

    for _ in range(iterations):
        label = np.argmax(vectors @ centroids.T, axis=1)
        sums = np.zeros_like(centroids)
        np.add.at(sums, label, vectors)
        used = np.bincount(label, minlength=len(centroids)) > 0
        centroids = _unit(np.where(used[:, None], sums, centroids))
    return centroids


def _plus_plus(vectors: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    import numpy as np

    chosen = [int(rng.integers(len(vectors)))]
    dist = 1.0 - vectors @ vectors[chosen[0]]
    for _ in range(1, k):
        p = np.maximum(dist, 0.0)
        chosen.append(int(rng.choice(len(vectors), p=p / p.sum())))
        dist = np.minimum(dist, 1.0 - vectors @ vectors[chosen[-1]])
    return vectors[chosen].copy()


def check_privacy(
    centroids: np.ndarray,
    vectors: np.ndarray,
    people: Sequence[str],
    *,
    min_people: int = MIN_PEOPLE,
    max_share: float = MAX_PERSON_SHARE,
) -> list[int]:
    """Clusters whose members (the ``vectors`` nearest to them) break the shipping rule.

    A centroid may be shipped only when it averages at least ``min_people`` distinct people
    and no person is more than ``max_share`` of its members.
    """
    import numpy as np

    label = np.argmax(vectors @ centroids.T, axis=1)
    bad = []
    for c in range(len(centroids)):
        who = Counter(people[int(i)] for i in np.flatnonzero(label == c))
        members = sum(who.values())
        if len(who) < min_people or max(who.values(), default=0) > max_share * members:
            bad.append(c)
    return bad


def capped_rows(people: Sequence[str], cap: int, seed: int = 0) -> np.ndarray:
    """Rows to cluster: every person's rows, at most ``cap`` of them (a seeded choice), in order."""
    import numpy as np

    by_person: dict[str, list[int]] = {}
    for i, who in enumerate(people):
        by_person.setdefault(who, []).append(i)
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for who in sorted(by_person):
        rows = by_person[who]
        keep.extend(rng.choice(rows, cap, replace=False).tolist() if len(rows) > cap else rows)
    out: np.ndarray = np.sort(np.asarray(keep, dtype=np.int64))
    return out


def fit_centroids(
    vectors: np.ndarray,
    people: Sequence[str],
    k: int,
    *,
    seed: int = 0,
    iterations: int = 30,
    min_people: int = MIN_PEOPLE,
    max_share: float = MAX_PERSON_SHARE,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded spherical k-means whose every centroid passes ``check_privacy``: (centroids, rows).

    ``people[i]`` names the person of row ``i`` (a unique name per image without identity).
    Each person contributes at most ``floor(max_share · min_people)`` rows (``rows``: the ones
    clustered), so a cluster of ``min_people`` people can never be one person's; clusters
    that still break the rule are dropped, smallest first, and the rest refitted.
    """
    import math

    import numpy as np

    if len(people) != len(vectors):
        raise InvalidParameterError("people must name the person of every row", parameter="people")
    if k < 1 or len(set(people)) < min_people:
        raise InvalidParameterError(f"Need k ≥ 1 and at least {min_people} people; got k={k}", parameter="k")
    rows = capped_rows(people, max(1, math.floor(max_share * min_people)), seed)
    data = np.ascontiguousarray(vectors[rows], dtype=np.float32)
    who = [people[int(i)] for i in rows]
    centroids = _lloyd(data, _plus_plus(data, min(k, len(data)), np.random.default_rng(seed)), iterations)
    while bad := check_privacy(centroids, data, who, min_people=min_people, max_share=max_share):
        if len(bad) == len(centroids):
            raise InvalidParameterError(
                f"No cluster of these faces averages {min_people} people with none above {max_share:.0%}",
                parameter="k",
            )
        counts = np.bincount(np.argmax(data @ centroids.T, axis=1), minlength=len(centroids))
        worst = min(bad, key=lambda c: counts[c])  # the smallest offender first: its faces move elsewhere
        centroids = _lloyd(data, np.delete(centroids, worst, axis=0), iterations)
    return centroids, rows


@dataclass(frozen=True)
class PairSet:
    """Impostor pairs (rows ``a[i]``, ``b[i]`` of ``vectors``) of one dataset, for fitting."""

    name: str
    vectors: np.ndarray
    a: np.ndarray
    b: np.ndarray


def _bins(scores: np.ndarray) -> np.ndarray:
    import numpy as np

    out: np.ndarray = np.clip(((scores + 1.0) * ((GRID - 1) / 2.0)).astype(np.int64), 0, GRID - 1)
    return out


def _tail(counts: np.ndarray) -> np.ndarray:
    """Fraction of pairs at or above each grid score (rows of a count histogram)."""
    import numpy as np

    out: np.ndarray = np.cumsum(counts[..., ::-1], axis=-1)[..., ::-1] / np.maximum(
        counts.sum(axis=-1, keepdims=True), 1.0
    )
    return out


def _threshold(tail: np.ndarray, fmr: float) -> float:
    """Lowest grid score at which the fraction of pairs at or above is at most ``fmr``."""
    import numpy as np

    return -1.0 + 2.0 * int(np.argmax(tail <= fmr)) / (GRID - 1)


def _histograms(centroids: np.ndarray, ps: PairSet, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """(per-cluster, overall) score histograms of one set's pairs; a pair counts for both its clusters."""
    import numpy as np

    k = len(centroids)
    counts = np.zeros(k * GRID)
    overall = np.zeros(GRID)
    cluster = np.argmax(ps.vectors @ centroids.T, axis=1)
    for s in range(0, len(ps.a), chunk):
        a, b = ps.a[s : s + chunk], ps.b[s : s + chunk]
        pos = _bins(np.einsum("ij,ij->i", ps.vectors[a], ps.vectors[b]))
        ca, cb = cluster[a], cluster[b]
        counts += np.bincount(ca * GRID + pos, minlength=k * GRID)
        counts += np.bincount((cb * GRID + pos)[cb != ca], minlength=k * GRID)  # inside one cluster: once
        overall += np.bincount(pos, minlength=GRID)
    return counts.reshape(k, GRID), overall


def cluster_offsets(
    centroids: np.ndarray,
    pair_sets: Sequence[PairSet],
    *,
    fmr: float = 1e-3,
    min_tail: int = 20,
    balance: bool = False,
    strictest: bool = False,
    min_coverage: float = 0.0,
    uncovered: Literal["raise", "overall", "strictest"] = "raise",
    chunk: int = 4_000_000,
) -> np.ndarray:
    """``δ_c = t_c − t``: each cluster's score at ``fmr`` over the impostor pairs it takes part in,
    less the same over all pairs. Pairs are pooled over ``pair_sets``; with ``balance`` each
    set's fraction counts equally instead (in a cluster, the mean over the sets with at least
    ``min_tail / fmr`` pairs there; overall, the mean over the sets with that many pairs in all),
    so a small population is not drowned by a large one. With ``strictest`` (and ``balance``), a
    cluster's score is the highest of those sets' own scores instead of that of their mean tail,
    and so is the overall one: a cluster is as strict as its most crowded set needs. A cluster
    with too few pairs gets no offset (0): the threshold over all pairs.

    With ``min_coverage`` (and ``balance``), a cluster whose measured sets (those with the pairs
    above) hold less than that fraction of its faces (a set's faces: those in its pairs, each
    nearest one centroid) is treated as ``uncovered`` says: a few faces of one set, in thousands of
    pairs each, would otherwise set the offset of a region that is mostly another set's, whose tail
    was not measured there.

    * ``"raise"``: the sets not measured there, largest first, are added until the sets counted
      hold ``min_coverage`` of its faces, each at its overall threshold (the strictest, 0, for a set
      too small to be measured overall), and the cluster becomes as strict as the strictest of
      them; a cluster with no measured set keeps 0. Never less strict than without the rule.
    * ``"overall"``: the same, but a cluster with no measured set takes the added sets' overall
      thresholds too (so it may become less strict than 0).
    * ``"strictest"``: the cluster gets 0.
    """
    import numpy as np

    if not 0.0 <= min_coverage <= 1.0:
        raise InvalidParameterError(
            f"min_coverage must be a share of faces, 0 to 1, not {min_coverage}", parameter="min_coverage"
        )
    if uncovered not in ("raise", "overall", "strictest"):
        raise InvalidParameterError(
            f"uncovered must be raise, overall or strictest, not {uncovered!r}", parameter="uncovered"
        )
    hist = [_histograms(centroids, ps, chunk) for ps in pair_sets]
    counts = np.stack([h[0] for h in hist])  # (sets, k, grid)
    overall = np.stack([h[1] for h in hist])
    if not balance:
        counts, overall = counts.sum(axis=0, keepdims=True), overall.sum(axis=0, keepdims=True)
    measured = overall.sum(axis=1) * fmr >= min_tail  # a set that can count in no cluster: not overall either
    base = _combined(_tail(overall[measured] if measured.any() else overall), fmr, strictest)
    usable = counts.sum(axis=2) * fmr >= min_tail  # (sets, k)
    tails = _tail(counts)
    out = np.zeros(len(centroids), dtype=np.float32)
    for c in range(len(centroids)):
        if usable[:, c].any():
            out[c] = _combined(tails[usable[:, c], c], fmr, strictest) - base
    if min_coverage > 0 and balance:
        faces = np.stack([_faces_per_cluster(centroids, ps) for ps in pair_sets])  # (sets, k)
        own = [_threshold(t, fmr) - base if m else 0.0 for t, m in zip(_tail(overall), measured, strict=True)]
        for u in np.flatnonzero((faces * usable).sum(axis=0) < min_coverage * faces.sum(axis=0)):
            if uncovered == "strictest" or (uncovered == "raise" and not usable[:, u].any()):
                out[u] = 0.0
            else:
                out[u] = _filled(faces[:, u], usable[:, u], own, min_coverage, float(out[u]))
    return out


def _filled(faces: np.ndarray, usable: np.ndarray, own: list[float], min_coverage: float, measured: float) -> float:
    """A cluster's offset from its measured sets (``measured``, if any) and its largest unmeasured
    sets at their overall offsets (``own``), added until they hold ``min_coverage`` of its faces."""
    import numpy as np

    offset = measured if usable.any() else -np.inf
    held = float(faces[usable].sum())
    for j in np.argsort(-faces, kind="stable"):
        if held >= min_coverage * faces.sum():
            break
        if not usable[j] and faces[j]:
            offset, held = max(offset, own[j]), held + float(faces[j])
    return float(offset)


def _faces_per_cluster(centroids: np.ndarray, ps: PairSet) -> np.ndarray:
    """How many of a set's faces (those in its pairs) are nearest each centroid."""
    import numpy as np

    faces = np.unique(np.concatenate([ps.a, ps.b]))
    nearest = np.argmax(ps.vectors[faces] @ centroids.T, axis=1)
    return np.bincount(nearest, minlength=len(centroids))


def _combined(tails: np.ndarray, fmr: float, strictest: bool) -> float:
    """The threshold at ``fmr`` of several sets' tails (rows): the highest of their own, or that of their mean."""
    if strictest:
        return max(_threshold(t, fmr) for t in tails)
    return _threshold(tails.mean(axis=0), fmr)


def fit_mixture_calibration(
    score_sets: Sequence[np.ndarray],
    *,
    model: str,
    dataset: str,
    min_count: int = 10,
    step_decades: float = 0.05,
    provenance: dict[str, Any] | None = None,
) -> Calibration:
    """A score → FMR table of the equal-weight mixture of several impostor populations.

    FMR(t) is the mean over ``score_sets`` of the fraction of each set's pairs scoring at or
    above ``t``, so a small colour dataset counts as much as a large grayscale one. The floor
    is the largest ``min_count / n`` share any one set contributes: below it, some population
    is no longer resolved.
    """
    import math

    import numpy as np

    sets = [np.sort(np.asarray(s, dtype=np.float64).ravel()) for s in score_sets]
    if not sets or min(s.size for s in sets) < 100 * min_count:
        raise InvalidParameterError(
            f"Need at least {100 * min_count} impostor scores in every set", parameter="score_sets"
        )
    weight = 1.0 / len(sets)

    def fmr_at(t: float) -> float:
        return sum(weight * (s.size - np.searchsorted(s, t, side="left")) / s.size for s in sets)

    floor = max(weight * min_count / s.size for s in sets)
    merged = np.sort(np.concatenate(sets))[::-1]
    share = np.concatenate([np.full(s.size, weight / s.size) for s in sets])
    cum = np.cumsum(share[np.argsort(-np.concatenate(sets), kind="stable")])
    knots: dict[float, float] = {}
    for j in [*range(int(math.floor(-math.log10(floor) / step_decades)) + 1), None]:
        level = floor if j is None else 10.0 ** (-j * step_decades)
        t = float(merged[min(int(np.searchsorted(cum, level, side="left")), merged.size - 1)])
        if round(t, 6) not in knots:
            knots[round(t, 6)] = round(math.log10(max(fmr_at(t), floor)), 5)
    ordered = sorted(knots.items())
    ys = np.minimum.accumulate([f for _, f in ordered])
    return Calibration(
        model=model,
        scores=tuple(x for x, _ in ordered),
        log10_fmr=tuple(float(y) for y in ys),
        floor_fmr=float(floor),
        impostor_pairs=int(sum(s.size for s in sets)),
        dataset=dataset,
        provenance=dict(provenance or {}),
    )


def tail_counts(
    nearest: np.ndarray, scores: np.ndarray, a: np.ndarray, b: np.ndarray, threshold: float, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster: (pairs one of its faces takes part in, those scoring at or above ``threshold``).

    ``nearest`` is each face's cluster, ``scores`` the pairs' (normalised) scores; a pair inside
    one cluster counts once there."""
    import numpy as np

    ca, cb = nearest[a], nearest[b]
    hit = scores >= threshold
    other = cb != ca
    n = np.bincount(ca, minlength=k) + np.bincount(cb[other], minlength=k)
    high = np.bincount(ca[hit], minlength=k) + np.bincount(cb[other & hit], minlength=k)
    return n, high


def wilson_low(high: np.ndarray, n: np.ndarray, z: float = 1.96) -> np.ndarray:
    """Lower ends of the Wilson score intervals of ``high / n`` (0 where ``n`` is 0)."""
    import numpy as np

    n_ = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    p = np.asarray(high, dtype=np.float64) / n_
    centre = p + z * z / (2 * n_)
    spread = z * np.sqrt(p * (1 - p) / n_ + z * z / (4 * n_ * n_))
    out: np.ndarray = np.where(np.asarray(n) > 0, np.maximum((centre - spread) / (1 + z * z / n_), 0.0), 0.0)
    return out


def unreliable_clusters(n: np.ndarray, high: np.ndarray, tolerance: float) -> tuple[int, ...]:
    """Clusters whose false-match rate is above ``tolerance`` even at the low end of its 95 % interval.

    Pairs share faces, so the interval treats correlated pairs as independent and is too
    narrow; the low end is a conservative flag only in the sense that a cluster of a few
    unlucky pairs is not flagged."""
    import numpy as np

    return tuple(int(c) for c in np.flatnonzero(wilson_low(high, n) > tolerance))
