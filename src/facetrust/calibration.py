"""Score ↔ estimated false-match rate (FMR) ↔ Similarity (0–100).

``Similarity = clip(20·log10(1/FMR), 0, 100)``: 80 means FMR ≈ 1e-4, 99 means FMR ≈ 1.1e-5.
A ``Calibration`` is a monotone table of (raw score, log10 FMR) knots measured on a stated
impostor set; between knots log10 FMR is interpolated linearly in the score. Scores beyond the
last knot get the table's floor FMR, flagged as a bound: no FMR is claimed below what the
impostor set can resolve. How the shipped table was measured: docs/calibration.md.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facetrust.errors import ConfigurationError, InvalidParameterError, NotFoundError
from facetrust.files import read_regular
from facetrust.types import Comparison

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "DEFAULT_THRESHOLD",
    "Calibration",
    "check_similarity_threshold",
    "default_calibration",
    "fit_calibration",
    "fmr_from_similarity",
    "similarity_from_fmr",
]

DEFAULT_THRESHOLD = 80.0
FORMAT = "facetrust-calibration/1"


def _number(value: object, parameter: str) -> float:
    """``value`` as a float: a real number (numpy's too), never a bool, a string or None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParameterError(f"{parameter} must be a number; got {type(value).__name__}", parameter=parameter)
    return float(value)


def check_similarity_threshold(threshold: object) -> float:
    """``threshold`` as a float: a Similarity from 0 to 100 (a real number, numpy's too; never a bool)."""
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise InvalidParameterError(
            f"Similarity threshold must be a number from 0 to 100; got {type(threshold).__name__}",
            parameter="threshold",
        )
    value = float(threshold)
    if not 0.0 <= value <= 100.0:  # NaN fails this too
        raise InvalidParameterError(f"Similarity threshold {threshold!r} is outside 0–100", parameter="threshold")
    return value


def similarity_from_fmr(fmr: float) -> float:
    """``clip(20·log10(1/fmr), 0, 100)``: 100 at a rate of 0, 0 at a rate of 1 or more."""
    rate = _number(fmr, "fmr")
    if math.isnan(rate):
        raise InvalidParameterError("FMR is NaN, not a rate", parameter="fmr")
    if rate <= 0.0:
        return 100.0
    return min(max(20.0 * math.log10(1.0 / rate), 0.0), 100.0)


def fmr_from_similarity(similarity: float) -> float:
    """Inverse of ``similarity_from_fmr`` inside 0–100: ``10^(−similarity/20)``."""
    return float(10.0 ** (-check_similarity_threshold(similarity) / 20.0))


@dataclass(frozen=True)
class Calibration:
    """A measured score → FMR table for one model.

    Attributes:
        model: the model id (``FaceEngine.model_id``) whose scores this table describes.
        scores: raw cosine scores, strictly increasing.
        log10_fmr: log10 of the fraction of impostor pairs scoring at or above each score.
        floor_fmr: the smallest FMR the impostor set resolves (``min_count / pairs``).
        impostor_pairs: how many impostor pairs were scored.
        dataset: what the impostor pairs were (free text, shown in reports).
        provenance: how and when the table was made (free-form, JSON-serialisable).
    """

    model: str
    scores: tuple[float, ...]
    log10_fmr: tuple[float, ...]
    floor_fmr: float
    impostor_pairs: int
    dataset: str
    provenance: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if len(self.scores) != len(self.log10_fmr) or len(self.scores) < 2:
            raise ConfigurationError("Calibration needs at least two (score, log10_fmr) knots of equal count")
        if not all(math.isfinite(v) for v in (*self.scores, *self.log10_fmr)):
            raise ConfigurationError("Calibration scores and log10_fmr must be finite numbers")
        if not 0.0 < self.floor_fmr <= 1.0:
            raise ConfigurationError(f"Calibration floor_fmr {self.floor_fmr} must be in (0, 1]")
        if any(b <= a for a, b in zip(self.scores, self.scores[1:])):
            raise ConfigurationError("Calibration scores must be strictly increasing")
        if any(b > a for a, b in zip(self.log10_fmr, self.log10_fmr[1:])):
            raise ConfigurationError("Calibration log10_fmr must not increase with the score")
        if self.log10_fmr[0] > 0.0:
            raise ConfigurationError(f"Calibration log10_fmr {self.log10_fmr[0]} is above 0 (an FMR above 1)")
        if math.log10(self.floor_fmr) > self.log10_fmr[-1] + _ROUNDING:
            raise ConfigurationError(
                f"Calibration floor_fmr {self.floor_fmr} is above the FMR of its last knot "
                f"({10.0 ** self.log10_fmr[-1]:.3g}): scores beyond the table would get a higher FMR"
            )
        if isinstance(self.impostor_pairs, bool) or not isinstance(self.impostor_pairs, int) or self.impostor_pairs < 0:
            raise ConfigurationError(f"Calibration impostor_pairs {self.impostor_pairs!r} must be a count (0 or more)")

    def fmr(self, score: float) -> tuple[float, bool]:
        """Estimated FMR at ``score`` and whether it is only an upper bound (beyond the data)."""
        score = _number(score, "score")
        if not math.isfinite(score):
            raise InvalidParameterError(f"Score {score} is not a finite number", parameter="score")
        if score >= self.scores[-1]:
            return self.floor_fmr, True
        if score <= self.scores[0]:
            return min(1.0, 10.0 ** self.log10_fmr[0]), False
        import bisect

        i = bisect.bisect_right(self.scores, score)
        s0, s1 = self.scores[i - 1], self.scores[i]
        f0, f1 = self.log10_fmr[i - 1], self.log10_fmr[i]
        value = f0 + (f1 - f0) * (score - s0) / (s1 - s0)
        # never below the floor: the stored knots are rounded, the floor is not, and a higher score
        # must never get a higher FMR where the table ends
        return min(1.0, max(10.0**value, self.floor_fmr)), False

    def similarity(self, score: float) -> float:
        return similarity_from_fmr(self.fmr(score)[0])

    @property
    def top_similarity(self) -> float:
        """The highest Similarity any score gets through this table (that of ``floor_fmr``)."""
        return similarity_from_fmr(self.floor_fmr)

    def reaches(self, similarity: float) -> bool:
        """Whether some score gets ``similarity`` through this table: a table made from too few
        impostor pairs never resolves an FMR as low as a high threshold's, and nothing matches there."""
        return self.floor_fmr <= fmr_from_similarity(similarity)

    def compare(self, score: float, threshold: float | None = None) -> Comparison:
        """A ``Comparison`` for a raw score, optionally judged against a similarity threshold."""
        if threshold is not None:
            threshold = check_similarity_threshold(threshold)
        fmr, bound = self.fmr(score)
        return Comparison(
            similarity=round(similarity_from_fmr(fmr), 4),
            fmr=fmr,
            score=float(score),
            fmr_is_bound=bound,
            threshold=threshold,
        )

    def match_score(self, similarity: float) -> float:
        """The raw score from which a pair reaches ``similarity``: ``score_for_similarity``, or
        infinity where no score does (``reaches``), so that nothing matches there, as in ``compare``."""
        return self.score_for_similarity(similarity) if self.reaches(similarity) else math.inf

    def score_for_fmr(self, fmr: float) -> float:
        """The raw score at which the estimated FMR falls to ``fmr`` (clamped to the table: below
        ``floor_fmr`` it is the table's last score, where the FMR is still the floor; ``reaches``)."""
        if not 0.0 < fmr <= 1.0:
            raise InvalidParameterError(f"FMR {fmr} must be in (0, 1]", parameter="fmr")
        target = math.log10(max(fmr, self.floor_fmr))
        if target >= self.log10_fmr[0]:
            return self.scores[0]
        for i in range(1, len(self.scores)):
            f0, f1 = self.log10_fmr[i - 1], self.log10_fmr[i]
            if f1 <= target:
                if f0 == f1:
                    return self.scores[i]
                return self.scores[i - 1] + (self.scores[i] - self.scores[i - 1]) * (f0 - target) / (f0 - f1)
        return self.scores[-1]

    def score_for_similarity(self, similarity: float) -> float:
        return self.score_for_fmr(fmr_from_similarity(similarity))

    def to_json(self) -> str:
        data = asdict(self)
        data["format"] = FORMAT
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, origin: str = "calibration") -> Calibration:
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, got {type(data).__name__}")
            if data.pop("format", None) != FORMAT:
                raise ValueError(f"format is not {FORMAT!r}")
            unknown = sorted(set(data) - _FIELDS)
            if unknown:
                raise ValueError(f"unknown field(s) {', '.join(map(repr, unknown))}")
            return cls(
                model=_text(data["model"], "model"),
                scores=_numbers(data["scores"], "scores"),
                log10_fmr=_numbers(data["log10_fmr"], "log10_fmr"),
                floor_fmr=_file_number(data["floor_fmr"], "floor_fmr"),
                impostor_pairs=_count(data["impostor_pairs"]),
                dataset=_text(data["dataset"], "dataset"),
                provenance=dict(data.get("provenance", {})),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"{origin} is not a valid calibration file: {exc}") from None
        except ConfigurationError as exc:  # the table's own checks (``__post_init__``)
            raise ConfigurationError(f"{origin} is not a valid calibration file: {exc.message}") from None

    @classmethod
    def load(cls, path: Path | str) -> Calibration:
        path = Path(path)
        try:
            text = read_regular(path).decode("utf-8")
        except OSError as exc:
            raise ConfigurationError(f"Cannot read calibration file {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConfigurationError(f"Calibration file {path} is not UTF-8 text (JSON)") from None
        return cls.from_json(text, origin=str(path))


_ROUNDING = 1e-3  # log10 FMR: how far above its last knot a table's floor may be (the knots are rounded)
_FIELDS = {"model", "scores", "log10_fmr", "floor_fmr", "impostor_pairs", "dataset", "provenance"}


def _numbers(values: object, name: str) -> tuple[float, ...]:
    """A calibration file's list of numbers (not a string, not booleans)."""
    if not isinstance(values, list) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise ValueError(f"{name} must be a list of numbers")
    return tuple(float(v) for v in values)


def _file_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} {value!r} must be a number")
    return float(value)


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"impostor_pairs {value!r} must be a whole number")
    return value


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text")
    return value


def _shipped_name(model_id: str) -> str:
    return "calibration-" + model_id.replace(":", "-").replace("+", "-") + ".json"


def default_calibration(model_id: str) -> Calibration:
    """The calibration shipped with facetrust for ``model_id``."""
    name = _shipped_name(model_id)
    ref = resources.files("facetrust.data").joinpath(name)
    if not ref.is_file():
        raise NotFoundError(
            f"No shipped calibration for model {model_id!r}; fit one with bench/calibrate.py or `facetrust calibrate`",
            resource=model_id,
        )
    return Calibration.from_json(ref.read_text(), origin=name)


def fit_calibration(
    impostor_scores: np.ndarray | Sequence[float],
    *,
    model: str,
    dataset: str,
    min_count: int = 10,
    step_decades: float = 0.05,
    provenance: dict[str, Any] | None = None,
) -> Calibration:
    """Fit the score → FMR table from impostor (different-identity) pair scores.

    Knots are placed every ``step_decades`` of FMR from 1 down to ``min_count / n``, where at
    least ``min_count`` impostor pairs still score at or above the knot; that is the floor.
    """
    import numpy as np

    scores = np.sort(np.asarray(impostor_scores, dtype=np.float64).ravel())[::-1]
    n = scores.size
    if n < 100 * min_count:
        raise InvalidParameterError(
            f"Need at least {100 * min_count} impostor scores to calibrate; got {n}", parameter="impostor_scores"
        )
    if not np.isfinite(scores).all():
        raise InvalidParameterError("Impostor scores contain NaN or infinity", parameter="impostor_scores")
    floor = min_count / n
    steps = int(math.floor(-math.log10(floor) / step_decades))
    knots: dict[float, float] = {}
    for j in [*range(steps + 1), None]:
        level = floor if j is None else 10.0 ** (-j * step_decades)
        k = max(min_count, min(n, int(round(level * n))))
        t = float(scores[k - 1])
        if t not in knots:  # keep the lowest FMR for a repeated score: conservative at ties
            knots[t] = math.log10(float((scores >= t).sum()) / n)
    ordered = sorted(knots.items())
    ys = np.minimum.accumulate([f for _, f in ordered])
    # Knots are stored rounded to 6 decimals; scores closer than that would collide and break
    # the strictly increasing table, so keep the first (highest-FMR, conservative) of each.
    rounded: dict[float, float] = {}
    for (x, _), y in zip(ordered, ys, strict=True):
        rounded.setdefault(round(x, 6), round(float(y), 5))
    if len(rounded) < 2:
        raise InvalidParameterError(
            "Impostor scores are (nearly) all equal; cannot fit a score → FMR table", parameter="impostor_scores"
        )
    return Calibration(
        model=model,
        scores=tuple(rounded),
        log10_fmr=tuple(rounded.values()),
        floor_fmr=float(floor),
        impostor_pairs=int(n),
        dataset=dataset,
        provenance=dict(provenance or {}),
    )
