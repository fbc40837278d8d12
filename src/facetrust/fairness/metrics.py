"""Pure error-rate functions over score arrays: FMR, FNMR, failure to detect, thresholds, ratios.

Conventions (ISO/IEC 19795-1): a pair *matches* when its score is at or above the
threshold. FMR is the fraction of non-mated (impostor) pairs that match; FNMR the fraction
of mated pairs that do not; failure to detect (a failure-to-acquire rate) the fraction of
images in which no usable face was found. Rates of an empty set are NaN: "not measured",
never zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facetrust.errors import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from numpy.typing import ArrayLike

__all__ = [
    "Differential",
    "differential",
    "failure_to_detect",
    "false_match_rate",
    "false_non_match_rate",
    "threshold_for_fmr",
]


def _scores(values: ArrayLike, name: str) -> np.ndarray:
    import numpy as np

    arr = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(arr).all():
        raise InvalidParameterError(f"{name} contain NaN or infinity", parameter=name)
    return arr


def false_match_rate(impostor_scores: ArrayLike, threshold: float) -> float:
    """Fraction of impostor scores at or above ``threshold`` (NaN when there are none)."""
    scores = _scores(impostor_scores, "impostor_scores")
    return float((scores >= threshold).mean()) if scores.size else math.nan


def false_non_match_rate(mated_scores: ArrayLike, threshold: float) -> float:
    """Fraction of mated scores below ``threshold`` (NaN when there are none)."""
    scores = _scores(mated_scores, "mated_scores")
    return float((scores < threshold).mean()) if scores.size else math.nan


def failure_to_detect(detected: ArrayLike) -> float:
    """Fraction of images without a usable face, from one boolean per image (NaN for none)."""
    import numpy as np

    flags = np.asarray(detected, dtype=bool).ravel()
    return float((~flags).mean()) if flags.size else math.nan


def threshold_for_fmr(impostor_scores: ArrayLike, target: float) -> float:
    """The lowest threshold at which the FMR over ``impostor_scores`` is at most ``target``.

    With ``n`` scores, at most ``floor(target · n)`` may reach the threshold; the threshold is
    set just above the next-highest score (ties stay below it), by one step of the scores'
    own precision (float32 scores compare in float32). When no score may match, the
    threshold sits just above the highest score. ``target ≥ 1`` gives the lowest score.
    """
    import numpy as np

    if not 0.0 < target <= 1.0:
        raise InvalidParameterError(f"Target FMR {target} must be in (0, 1]", parameter="target")
    single = np.asarray(impostor_scores).dtype == np.float32
    scores = _scores(impostor_scores, "impostor_scores")
    if scores.size == 0:
        raise InvalidParameterError("No impostor scores to set a threshold from", parameter="impostor_scores")
    allowed = math.floor(target * scores.size + 1e-9)
    if allowed >= scores.size:
        return float(scores.min())
    kth = float(-np.partition(-scores, allowed)[allowed])  # the (allowed+1)-th highest score
    if single:  # float32 scores compare with a float threshold in float32: step up in float32
        return float(np.nextafter(np.float32(kth), np.float32(np.inf)))
    return float(np.nextafter(kth, math.inf))


@dataclass(frozen=True)
class Differential:
    """Worst-to-best ratio of one error rate across groups (ISO/IEC 19795-10, NISTIR 8280).

    Attributes:
        worst: the group with the highest rate; best: the one with the lowest.
        worst_rate, best_rate: their rates.
        ratio: ``worst_rate / best_rate``. When the best rate is zero the ratio divides by
            the smallest non-zero rate that group's sample could show (one error in its
            ``count``), at least 1, so it is a lower bound and ``ratio_is_bound`` is True.
            When every rate is zero the ratio is 1: no difference was observed.
    """

    worst: str
    best: str
    worst_rate: float
    best_rate: float
    ratio: float
    ratio_is_bound: bool


def differential(rates: Mapping[str, float], counts: Mapping[str, int | float]) -> Differential:
    """Worst/best ratio over the groups whose rate was measured (NaN rates are left out).

    ``counts`` gives, per group, how many trials (pairs or images) its rate is over.
    """
    measured = {g: r for g, r in rates.items() if not math.isnan(r)}
    if len(measured) < 2:
        raise InvalidParameterError(
            f"A differential needs at least two groups with a measured rate; got {sorted(measured)}",
            parameter="rates",
        )
    worst = max(sorted(measured), key=lambda g: measured[g])
    best = min(sorted(g for g in measured if g != worst), key=lambda g: measured[g])
    hi, lo = measured[worst], measured[best]
    if hi == 0.0:
        return Differential(worst, best, hi, lo, 1.0, False)
    if lo > 0.0:
        return Differential(worst, best, hi, lo, hi / lo, False)
    count = counts.get(best, 0)
    if count <= 0:
        raise InvalidParameterError(f"Group {best!r} has a rate but no count", parameter="counts")
    return Differential(worst, best, hi, lo, max(1.0, hi * count), True)
