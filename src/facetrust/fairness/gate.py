"""The audit gate: bounds like ``fmr_ratio<=2,fnmr_ratio<=1.5`` checked against an audit.

Grammar: clauses separated by commas, each ``METRIC[@POINT] OP NUMBER`` with OP one of
``<=``, ``<``, ``>=``, ``>``. Metrics: ``fmr_ratio``, ``fnmr_ratio``, ``ftd_ratio`` (worst/best
group ratios), ``fmr``, ``fnmr``, ``ftd`` (the worst group's rate). POINT is ``similarity``
(the default operating point, Similarity 80; the default) or ``fmr`` (the threshold for
overall FMR 1e-3). A bound is checked against every analysis of every dataset that
measured it, and must hold for each (the worst value is reported). A bound that no analysis
measured fails: a gate that cannot be evaluated should not pass silently.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from facetrust.errors import InvalidParameterError
from facetrust.fairness.audit import AnalysisResult, DatasetAudit
from facetrust.fairness.results import one_line

__all__ = ["METRICS", "POINTS", "Bound", "GateCheck", "check_gate", "parse_gate"]

METRICS = ("fmr_ratio", "fnmr_ratio", "ftd_ratio", "fmr", "fnmr", "ftd")
POINTS = ("similarity", "fmr")
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}
_CLAUSE = re.compile(r"\s*([a-z_]+)(?:@([A-Za-z0-9_.-]+))?\s*(<=|>=|<|>)\s*([0-9.eE+-]+)\s*")


@dataclass(frozen=True)
class Bound:
    """One clause of a gate."""

    metric: str
    point: str
    op: str
    limit: float
    text: str


@dataclass(frozen=True)
class GateCheck:
    """A bound and the worst value found for it (NaN: nothing measured it)."""

    bound: Bound
    value: float
    where: str
    passed: bool

    def describe(self) -> str:
        b = self.bound
        if math.isnan(self.value):
            return f"{b.text}: not measured by any analysis"
        verdict = "ok" if self.passed else "FAILED"
        name = b.metric if b.metric.startswith("ftd") else f"{b.metric}@{b.point}"
        return f"{b.text}: {name} = {self.value:.4g} ({one_line(self.where)}) {verdict}"


def parse_gate(expr: str) -> tuple[Bound, ...]:
    """Parse a gate expression; an InvalidParameterError names the clause it cannot read."""
    bounds = []
    for clause in expr.split(","):
        found = _CLAUSE.fullmatch(clause)
        problem = None
        if not clause.strip():
            problem = "is empty"
        elif found is None:
            problem = "is not METRIC[@POINT]<=NUMBER (or <, >=, >)"
        elif found.group(1) not in METRICS:
            problem = f"has unknown metric {found.group(1)!r}; known: {', '.join(METRICS)}"
        elif found.group(2) is not None and found.group(2) not in POINTS:
            problem = f"has unknown operating point {found.group(2)!r}; known: {', '.join(POINTS)}"
        else:
            try:
                limit = float(found.group(4))
            except ValueError:
                problem = f"has a bad number {found.group(4)!r}"
            else:
                if not math.isfinite(limit):
                    problem = f"has a bad number {found.group(4)!r}"
        if problem or found is None:
            raise InvalidParameterError(f"Gate clause {clause.strip()!r} {problem}", parameter="--gate")
        metric, point, op = found.group(1), found.group(2) or "similarity", found.group(3)
        bounds.append(Bound(metric, point, op, limit, clause.strip()))
    return tuple(bounds)


def _values(bound: Bound, result: AnalysisResult) -> list[tuple[float, str]]:
    """Every value of the bound's metric in one analysis, with the group it belongs to."""
    base = bound.metric.removesuffix("_ratio")
    if bound.metric.endswith("_ratio"):
        point = "" if base == "ftd" else bound.point
        return [
            (r.differential.ratio, f"{r.differential.worst}/{r.differential.best}")
            for r in result.ratios
            if r.metric == base and r.point == point
        ]
    out = []
    for g in result.groups:
        rate = g.failure_to_detect if base == "ftd" else (g.fmr if base == "fmr" else g.fnmr).get(bound.point)
        if rate is not None and not math.isnan(rate.value):
            out.append((rate.value, g.group))
    return out


def check_gate(bounds: Sequence[Bound], datasets: Sequence[DatasetAudit]) -> tuple[GateCheck, ...]:
    """Check every bound; each check reports the value furthest on the failing side."""
    checks = []
    for bound in bounds:
        found = [
            (value, f"{d.name}, {a.analysis.label}, {who}")
            for d in datasets
            for a in d.analyses
            for value, who in _values(bound, a)
        ]
        if not found:
            checks.append(GateCheck(bound, math.nan, "", False))
            continue
        pick = max if bound.op in ("<=", "<") else min
        value, where = pick(found, key=lambda v: v[0])
        checks.append(GateCheck(bound, value, where, _OPS[bound.op](value, bound.limit)))
    return tuple(checks)
