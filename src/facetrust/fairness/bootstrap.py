"""Confidence intervals by the identity bootstrap.

Pairs that share a person (or an image) are not independent: one look-alike pair of people
produces many false matches, and one hard-to-recognise person many false non-matches. So the
unit resampled is the **identity**: each replicate draws the group's identities with
replacement (a multinomial count ``w_k`` per identity) and keeps all their pairs, weighted:
a mated pair of identity ``k`` counts ``w_k`` times, an impostor pair of identities ``k`` and
``l`` counts ``w_k · w_l`` times (every copy of one with every copy of the other). Where a
dataset has no identities (UTKFace), each image is its own identity: pairs that share an
image stay correlated and are resampled together.

Impostor pairs are all pairs of images of different identities within a *cell* (the same
group, and the same values of any matching columns), so the weighted number of impostor
pairs in a cell has a closed form: ``½[(Σ_k w_k n_k)² − Σ_k w_k² n_k²]`` with ``n_k`` the
identity's images in the cell. Only the erroneous pairs need listing.

Intervals are percentile intervals of the replicates. When no error was observed the
percentile interval collapses to 0, so the upper end is instead the "rule of three" over
the independent units: ``1 − (1 − level)^(1/identities)``. Errors from a single unit (one
person) cannot be resampled into anything but themselves, so their interval is all of [0, 1]
rather than the zero-width one the replicates would give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facetrust.errors import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "Interval",
    "identity_weights",
    "impostor_replicates",
    "per_identity_replicates",
    "percentile_interval",
    "rates",
]


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval ``[low, high]`` at ``level`` (e.g. 0.95)."""

    low: float
    high: float
    level: float


def identity_weights(identities: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """(replicates, identities) resampling counts: each row draws ``identities`` with replacement."""
    import numpy as np

    if identities < 1 or replicates < 1:
        raise InvalidParameterError(
            f"Need at least one identity and one replicate; got {identities} and {replicates}", parameter="identities"
        )
    counts = rng.multinomial(identities, np.full(identities, 1.0 / identities), size=replicates)
    out: np.ndarray = counts.astype(np.float64)
    return out


def per_identity_replicates(
    weights: np.ndarray, trials: np.ndarray, errors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(errors, trials) per replicate when each identity owns its trials (mated pairs, images)."""
    import numpy as np

    return weights @ np.asarray(errors, dtype=np.float64), weights @ np.asarray(trials, dtype=np.float64)


def rates(errors: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """errors / trials, NaN where a replicate drew no trial."""
    import numpy as np

    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = np.where(trials > 0, errors / np.where(trials > 0, trials, 1.0), np.nan)
    return out


def impostor_replicates(
    weights: np.ndarray,
    cells: tuple[np.ndarray, np.ndarray, np.ndarray],
    error_a: np.ndarray,
    error_b: np.ndarray,
    chunk: int = 8192,
) -> tuple[np.ndarray, np.ndarray]:
    """(false matches, impostor pairs) per replicate.

    ``cells`` lists (cell index, identity index, images of that identity in that cell), one
    entry per pair of them; ``error_a``/``error_b`` give the identity indices of each false
    match (impostor pair at or above the threshold).
    """
    import numpy as np

    cell, ident, count = (np.asarray(a) for a in cells)
    order = np.argsort(cell, kind="stable")
    cell, ident, count = cell[order], ident[order], count[order].astype(np.float64)
    starts = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
    wn = weights[:, ident] * count
    total = 0.5 * (np.add.reduceat(wn, starts, axis=1) ** 2 - np.add.reduceat(wn * wn, starts, axis=1)).sum(axis=1)
    wrong = np.zeros(weights.shape[0])
    for start in range(0, len(error_a), chunk):
        a, b = error_a[start : start + chunk], error_b[start : start + chunk]
        wrong += (weights[:, a] * weights[:, b]).sum(axis=1)
    return wrong, total


def percentile_interval(replicates: np.ndarray, *, level: float, errors: int, units: int) -> Interval:
    """Percentile interval of ``replicates``; with no observed ``errors``, rule of three over ``units``
    (and its mirror when every trial was an error); with errors from fewer than two units, [0, 1]
    (one unit says nothing of how the rate varies)."""
    import numpy as np

    if not 0.0 < level < 1.0:
        raise InvalidParameterError(f"Confidence level {level} must be in (0, 1)", parameter="level")
    if errors == 0:
        high = 1.0 - (1.0 - level) ** (1.0 / units) if units > 0 else 1.0
        return Interval(0.0, float(high), level)
    if units < 2:
        return Interval(0.0, 1.0, level)
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return Interval(math.nan, math.nan, level)
    if float(finite.min()) == 1.0:  # every trial of every replicate an error: the rule of three, mirrored
        return Interval(float((1.0 - level) ** (1.0 / units)), 1.0, level)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return Interval(float(low), float(high), level)
