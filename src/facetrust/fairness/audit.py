"""The audit runner: per-group FMR, FNMR and failure to detect, with identity-bootstrap intervals.

``audit_dataset`` takes a dataset spec, its embeddings and a pair scorer, and for every
analysis of the spec (e.g. sex; race among adults) measures each group at two operating
points: the engine's default threshold (Similarity 80 through its calibration) and the
threshold at which the analysis's pooled same-group impostor pairs have FMR 1e-3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from facetrust.fairness.bootstrap import (
    Interval,
    identity_weights,
    impostor_replicates,
    per_identity_replicates,
    percentile_interval,
    rates,
)
from facetrust.fairness.datasets import Analysis, DatasetSpec
from facetrust.fairness.embedding import FACE, NO_FACE, UNREADABLE, DatasetEmbeddings
from facetrust.fairness.metrics import differential, threshold_for_fmr
from facetrust.fairness.pairs import (
    GroupPairs,
    PairScorer,
    at_most_per_identity,
    build_group_pairs,
    false_match_pairs,
)
from facetrust.fairness.results import (
    AnalysisResult,
    AuditOptions,
    DatasetAudit,
    GroupResult,
    OperatingPoint,
    Rate,
    RatioResult,
    one_line,
)

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "AnalysisResult",
    "AuditOptions",
    "DatasetAudit",
    "Group",
    "GroupResult",
    "OperatingPoint",
    "Rate",
    "RatioResult",
    "audit_dataset",
    "groups_of",
]


@dataclass(frozen=True)
class Group:
    """A group's images before scoring: dataset rows, identity per image, face found, cell."""

    name: str
    rows: np.ndarray
    identity: np.ndarray
    has_face: np.ndarray
    cell: np.ndarray


def groups_of(spec: DatasetSpec, status: np.ndarray, analysis: Analysis, *, everyone: bool = False) -> list[Group]:
    """The analysis's groups (sorted by name): readable images with the column's label passing ``where``.

    ``everyone`` puts every readable image in one group named "all" (no group column).
    """
    import numpy as np

    by_group: dict[str, list[int]] = {}
    for i, rec in enumerate(spec.images):
        value = "all" if everyone else rec.groups.get(analysis.column)
        if value is None or status[i] == UNREADABLE:
            continue
        if any(rec.groups.get(col) not in allowed for col, allowed in analysis.where.items()):
            continue
        by_group.setdefault(value, []).append(i)
    out = []
    for name in sorted(by_group):
        rows = np.array(by_group[name])
        people = [spec.images[i].identity or f"\0{i}" for i in rows]
        _, identity = np.unique(people, return_inverse=True)
        cells = ["\t".join(spec.images[i].groups.get(c, "") for c in analysis.match_on) for i in rows]
        _, cell = np.unique(cells, return_inverse=True)
        out.append(Group(name, rows, identity.astype(np.int64), status[rows] == FACE, cell.astype(np.int64)))
    return out


def _interval(num: np.ndarray, den: np.ndarray, errors: int, units: int, level: float) -> Interval:
    return percentile_interval(rates(num, den), level=level, errors=errors, units=units)


def _det(pairs: GroupPairs) -> tuple[tuple[float, float], ...]:
    """(FMR, FNMR) at thresholds giving FMR 1e-6 … 1 (as far as the impostor count resolves)."""
    import numpy as np

    imp, mat = pairs.impostor_scores, pairs.mated_scores
    if imp.size == 0 or mat.size == 0:
        return ()
    out = []
    for level in 10.0 ** np.linspace(-6, 0, 49):
        if level * imp.size < 1:
            continue
        t = threshold_for_fmr(imp, float(level))
        out.append((float((imp >= t).mean()), float((mat < t).mean())))
    return tuple(out)


@dataclass
class _Replicates:
    """Bootstrap (errors, trials) per replicate, per metric key ("ftd", "fmr:<point>", ...)."""

    by_key: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def _measure(
    scorer: PairScorer,
    g: Group,
    pairs: GroupPairs,
    points: tuple[OperatingPoint, ...],
    weights: np.ndarray,
    level: float,
) -> tuple[GroupResult, _Replicates]:
    import numpy as np

    n_ids = weights.shape[1]
    reps = _Replicates()
    trials = np.bincount(g.identity, minlength=n_ids)
    missed = np.bincount(g.identity, weights=(~g.has_face).astype(np.float64), minlength=n_ids)
    reps.by_key["ftd"] = per_identity_replicates(weights, trials, missed)
    ftd = Rate(float(missed.sum() / trials.sum()), int(missed.sum()), int(trials.sum()), Interval(0, 0, level))
    ftd = Rate(ftd.value, ftd.errors, ftd.trials, _interval(*reps.by_key["ftd"], ftd.errors, n_ids, level))
    imp, mat = pairs.impostor_scores, pairs.mated_scores
    fmr: dict[str, Rate] = {}
    fnmr: dict[str, Rate] = {}
    mated_trials = np.bincount(pairs.mated_identity, minlength=n_ids)
    for point in points:
        t = point.threshold
        if imp.size:
            ea, eb = false_match_pairs(scorer, pairs, t)
            reps.by_key["fmr:" + point.key] = impostor_replicates(weights, pairs.cell_sizes(), ea, eb)
            errors = int((imp >= t).sum())
            box = _interval(*reps.by_key["fmr:" + point.key], errors, n_ids, level)
            fmr[point.key] = Rate(errors / imp.size, errors, int(imp.size), box)
        if mat.size:
            wrong = np.bincount(pairs.mated_identity, weights=(mat < t).astype(np.float64), minlength=n_ids)
            reps.by_key["fnmr:" + point.key] = per_identity_replicates(weights, mated_trials, wrong)
            errors = int(wrong.sum())
            box = _interval(*reps.by_key["fnmr:" + point.key], errors, int((mated_trials > 0).sum()), level)
            fnmr[point.key] = Rate(errors / mat.size, errors, int(mat.size), box)
    result = GroupResult(
        group=g.name,
        images=len(g.rows),
        identities=n_ids,
        failure_to_detect=ftd,
        impostor_pairs=int(imp.size),
        mated_pairs=int(mat.size),
        fmr=fmr,
        fnmr=fnmr,
        det=_det(pairs),
    )
    return result, reps


def _ratio(
    metric: str, key: str, point: str, groups: list[GroupResult], reps: list[_Replicates], level: float
) -> RatioResult | None:
    import numpy as np

    def rate_of(g: GroupResult) -> Rate | None:
        if metric == "ftd":
            return g.failure_to_detect
        return (g.fmr if metric == "fmr" else g.fnmr).get(point)

    found = [(g, rate_of(g), r.by_key.get(key)) for g, r in zip(groups, reps)]
    usable = [(g, rate, rep) for g, rate, rep in found if rate is not None and rep is not None]
    if len(usable) < 2:
        return None
    diff = differential({g.group: rate.value for g, rate, _ in usable}, {g.group: rate.trials for g, rate, _ in usable})
    # The interval is of the ratio between the two groups the point estimate names (worst over
    # best), replicate by replicate: it may reach below 1 when their order is uncertain.
    by_name = {g.group: (rate, rep) for g, rate, rep in usable}
    _, worst_rep = by_name[diff.worst]
    best_rate, best_rep = by_name[diff.best]
    unbounded = Interval(0.0, math.inf, level)
    if diff.worst_rate == 0.0:  # no group made an error: the rates allow any ratio at all
        return RatioResult(metric, point, diff, unbounded, "no group made an error")
    if diff.best_rate == 1.0:  # every trial an error in every group (a threshold nothing reaches)
        return RatioResult(metric, point, diff, unbounded, "every group erred on every trial")
    if any(_one_unit(by_name[name][0]) for name in (diff.worst, diff.best)):  # its replicates never vary
        return RatioResult(metric, point, diff, unbounded, "a group's errors come from too few people to resample")
    worst, best = rates(*worst_rep), np.maximum(rates(*best_rep), 1.0 / max(best_rate.trials, 1))
    ratio = np.where(worst > 0, worst / best, 0.0)
    tail = (1.0 - level) / 2.0
    low, high = np.nanquantile(ratio, [tail, 1.0 - tail])
    if diff.ratio_is_bound:  # the best group made no error: its rate may be as near 0 as it likes
        return RatioResult(
            metric, point, diff, Interval(float(low), math.inf, level), f"{one_line(diff.best)} made no error"
        )
    return RatioResult(metric, point, diff, Interval(float(low), float(high), level))


def _one_unit(rate: Rate) -> bool:
    """Whether ``rate``'s errors came from a single person (its interval is then all of [0, 1])."""
    return rate.errors > 0 and (rate.interval.low, rate.interval.high) == (0.0, 1.0)


def _overall(metric: str, point: str, groups: list[GroupResult], reps: list[_Replicates], level: float) -> Rate | None:
    """Pooled rate over the groups; stratified bootstrap (replicate i of every group summed)."""
    rates_ = [(g.fmr if metric == "fmr" else g.fnmr).get(point) for g in groups]
    pairs = [(rate, r.by_key[f"{metric}:{point}"]) for rate, r in zip(rates_, reps) if rate is not None]
    if not pairs:
        return None
    errors = sum(rate.errors for rate, _ in pairs)
    trials = sum(rate.trials for rate, _ in pairs)
    num = sum(rep[0] for _, rep in pairs)
    den = sum(rep[1] for _, rep in pairs)
    units = sum(g.identities for g, rate in zip(groups, rates_) if rate is not None)  # the people measured
    return Rate(errors / trials, errors, trials, _interval(num, den, errors, units, level))  # type: ignore[arg-type]


def _histograms(
    results: list[GroupResult], pairs: list[GroupPairs], bins: int = 80
) -> tuple[list[GroupResult], tuple[float, ...]]:
    import dataclasses

    import numpy as np

    pooled = [p.impostor_scores for p in pairs] + [p.mated_scores for p in pairs]
    values = np.concatenate([v for v in pooled if v.size]) if any(v.size for v in pooled) else np.zeros(0)
    if values.size == 0:
        return results, ()
    edges = np.linspace(float(values.min()), float(values.max()) + 1e-6, bins + 1)
    out = [
        dataclasses.replace(
            r,
            impostor_histogram=tuple(int(c) for c in np.histogram(p.impostor_scores, edges)[0]),
            mated_histogram=tuple(int(c) for c in np.histogram(p.mated_scores, edges)[0]),
        )
        for r, p in zip(results, pairs)
    ]
    return out, tuple(float(e) for e in edges)


def _pairs(scorer: PairScorer, g: Group, mated: bool, options: AuditOptions) -> GroupPairs:
    import numpy as np

    keep = np.flatnonzero(g.has_face)
    if options.impostor_max_per_identity is not None:
        keep = keep[at_most_per_identity(g.identity[keep], options.impostor_max_per_identity, options.seed)]
    return build_group_pairs(
        scorer,
        g.name,
        g.rows[keep],
        g.identity[keep],
        g.cell[keep],
        mated=mated,
        max_per_identity=options.max_per_identity,
        seed=options.seed,
    )


def _no_pairs(g: Group) -> GroupPairs:
    """No pairs of ``g``: a group whose match rates are not measured."""
    import numpy as np

    none = np.zeros(0, np.int64)
    return GroupPairs(g.name, none, none, none, 0, np.zeros(0, np.float32), np.zeros(0, np.float32), none)


def _points(all_impostors: np.ndarray, default_threshold: float, options: AuditOptions) -> tuple[OperatingPoint, ...]:
    from facetrust.calibration import fmr_from_similarity

    sim = options.similarity
    about = (
        f"calibrated FMR {fmr_from_similarity(sim):.0e}"
        if math.isfinite(default_threshold)
        else "out of the calibration's reach: nothing matches"
    )
    points = [OperatingPoint("similarity", f"Similarity {sim:g} ({about})", default_threshold)]
    if all_impostors.size:
        t = threshold_for_fmr(all_impostors, options.target_fmr)
        points.append(OperatingPoint("fmr", f"FMR {options.target_fmr:.0e} over these impostor pairs", t))
    return tuple(points)


def audit_analysis(
    spec: DatasetSpec,
    emb: DatasetEmbeddings,
    scorer: PairScorer,
    analysis: Analysis,
    default_threshold: float,
    options: AuditOptions,
    index: int = 0,
) -> AnalysisResult:
    """Measure every group of ``analysis`` (see the module docstring)."""
    import numpy as np

    groups = groups_of(spec, emb.status, analysis)
    # Too few faces found withholds a group's match rates, never its failure to detect: the worse
    # the detector does on a group, the likelier that group falls below ``min_images``.
    matched = [int(g.has_face.sum()) >= options.min_images for g in groups]
    unmeasured = tuple(g.name for g, ok in zip(groups, matched) if not ok)
    pairs = [_pairs(scorer, g, spec.has_identities, options) if ok else _no_pairs(g) for g, ok in zip(groups, matched)]
    impostors = [p.impostor_scores for p in pairs if p.impostor_scores.size]
    points = _points(np.concatenate(impostors) if impostors else np.zeros(0), default_threshold, options)
    results, reps = [], []
    for k, (g, p, ok) in enumerate(zip(groups, pairs, matched)):
        weights = identity_weights(
            int(g.identity.max()) + 1, options.replicates, np.random.default_rng([options.seed, index, k])
        )
        result, rep = _measure(scorer, g, p, points if ok else (), weights, options.level)
        results.append(result)
        reps.append(rep)
    ratios = [_ratio("ftd", "ftd", "", results, reps, options.level)]
    for point in points:
        for metric in ("fmr", "fnmr"):
            ratios.append(_ratio(metric, f"{metric}:{point.key}", point.key, results, reps, options.level))
    overall_fmr = {pt.key: r for pt in points if (r := _overall("fmr", pt.key, results, reps, options.level))}
    overall_fnmr = {pt.key: r for pt in points if (r := _overall("fnmr", pt.key, results, reps, options.level))}
    results, edges = _histograms(results, pairs)
    return AnalysisResult(
        analysis=analysis,
        points=points,
        groups=tuple(results),
        ratios=tuple(r for r in ratios if r is not None),
        overall_fmr=overall_fmr,
        overall_fnmr=overall_fnmr,
        histogram_edges=edges,
        unmeasured=unmeasured,
    )


def audit_dataset(
    spec: DatasetSpec,
    emb: DatasetEmbeddings,
    scorer: PairScorer,
    default_threshold: float,
    options: AuditOptions | None = None,
) -> DatasetAudit:
    """Every analysis of ``spec`` over its embeddings (``emb``, one row per image of the spec)."""
    options = options or AuditOptions()
    analyses = tuple(
        audit_analysis(spec, emb, scorer, a, default_threshold, options, index=i) for i, a in enumerate(spec.analyses)
    )
    return DatasetAudit(
        name=spec.name,
        kind=spec.kind,
        fingerprint=spec.fingerprint(),
        images=len(spec.images),
        unreadable=int((emb.status == UNREADABLE).sum()),
        has_identities=spec.has_identities,
        notes=spec.notes,
        analyses=analyses,
        extra={"no_face": int((emb.status == NO_FACE).sum()), "embeddings_cached": emb.cached},
    )
