"""The audit's result records: frozen dataclasses, plain data (JSON-ready through ``report.plain``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from facetrust.fairness.bootstrap import Interval
from facetrust.fairness.datasets import Analysis
from facetrust.fairness.metrics import Differential

__all__ = [
    "AnalysisResult",
    "AuditOptions",
    "DatasetAudit",
    "GroupResult",
    "OperatingPoint",
    "Rate",
    "RatioResult",
]


@dataclass(frozen=True)
class AuditOptions:
    """How an audit samples and reports.

    Attributes:
        seed: seeds the mated-pair sampling and the bootstrap.
        replicates: bootstrap replicates per group.
        level: confidence level of every interval.
        max_per_identity: images per identity used for mated pairs.
        impostor_max_per_identity: images per identity used for impostor pairs (``None``: every
            image). A person photographed hundreds of times otherwise takes part in most of a
            group's impostor pairs, and a group's FMR follows a few such people.
        similarity: the default operating point, as a Similarity (0–100).
        target_fmr: the second operating point: overall FMR over the analysis's impostors.
        min_images: groups with fewer images with a face found get their failure to detect
            measured but not their match rates (listed in ``AnalysisResult.unmeasured``).
    """

    seed: int = 0
    replicates: int = 1000
    level: float = 0.95
    max_per_identity: int = 20
    impostor_max_per_identity: int | None = None
    similarity: float = 80.0
    target_fmr: float = 1e-3
    min_images: int = 10


@dataclass(frozen=True)
class OperatingPoint:
    """A score threshold and how it was chosen."""

    key: str
    label: str
    threshold: float


@dataclass(frozen=True)
class Rate:
    """An error rate with its counts and its bootstrap interval."""

    value: float
    errors: int
    trials: int
    interval: Interval


@dataclass(frozen=True)
class GroupResult:
    """One group of one analysis."""

    group: str
    images: int
    identities: int
    failure_to_detect: Rate
    impostor_pairs: int
    mated_pairs: int
    fmr: Mapping[str, Rate]
    fnmr: Mapping[str, Rate]
    det: tuple[tuple[float, float], ...] = ()
    impostor_histogram: tuple[int, ...] = ()
    mated_histogram: tuple[int, ...] = ()


def one_line(name: str) -> str:
    """A group name as printed on one line: each unprintable character (a newline from a CSV cell)
    as its escape, the rest as it is."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name)


@dataclass(frozen=True)
class RatioResult:
    """Worst/best ratio of one metric at one operating point, with its bootstrap interval."""

    metric: str
    point: str
    differential: Differential
    interval: Interval
    open_because: str = ""  # why the interval has no upper end ("" where it has one)

    @property
    def interval_text(self) -> str:
        """``0.85–2.40``; ``1.20–unbounded (…)`` or ``unbounded (…)`` with the reason where the data
        put no upper end on the ratio."""
        if self.open_because:
            if self.interval.low > 0.0:
                return f"{self.interval.low:.2f}–unbounded ({self.open_because})"
            return f"unbounded ({self.open_because})"
        return f"{self.interval.low:.2f}–{self.interval.high:.2f}"


@dataclass(frozen=True)
class AnalysisResult:
    """Every group of one analysis, the ratios between them and the pooled rates."""

    analysis: Analysis
    points: tuple[OperatingPoint, ...]
    groups: tuple[GroupResult, ...]
    ratios: tuple[RatioResult, ...]
    overall_fmr: Mapping[str, Rate]
    overall_fnmr: Mapping[str, Rate]
    histogram_edges: tuple[float, ...]
    unmeasured: tuple[str, ...] = ()  # groups whose match rates were not measured (too few faces found)


@dataclass(frozen=True)
class DatasetAudit:
    """The audit of one dataset."""

    name: str
    kind: str
    fingerprint: str
    images: int
    unreadable: int
    has_identities: bool
    notes: tuple[str, ...]
    analyses: tuple[AnalysisResult, ...]
    extra: Mapping[str, object] = field(default_factory=dict)
