"""A smooth, low-dimensional 1:1 offset from how typical a face is, beside the shipped cluster offsets (issue 11).

    nice -n 5 .venv/bin/python bench/typicality_variants.py                 # typicality-variants.{json,md}
    nice -n 5 .venv/bin/python bench/typicality_variants.py --split-seed 1  # typicality-variants-split1.*
    nice -n 5 .venv/bin/python bench/typicality_variants.py --only typ-mean # rerun some, keep the rest
    nice -n 5 .venv/bin/python bench/typicality_variants.py --only          # only the typicality medians

The shipped default estimates 63 separate 1e-3 impostor tails, one per k-means cluster, some from few
pairs (5 thin clusters get offset 0). Here the offset is a smooth function of one or two numbers fitted
with all pairs at once. Same split, centroids, pairs, table recipe and held-out measurement as
bench/fsn_variants.py (its ``split_data``, ``label_histograms``, ``offsets``, ``summary``,
``race_ratio_intervals`` and ``render``; ``fairnorm.evaluate``). A face's typicality ``t``:

* ``mean``: ``cos(x, μ)``, μ the unit mean of the two fit halves' mean face vectors (datasets weighted
  equally);
* ``top5``: the mean of the face's 5 largest cosines to the 63 centroids.

Bins: ``BINS`` quantile bins of ``t`` over the fit faces (each dataset's faces weighted equally); each
bin's offset is its 1e-3 threshold (a pair counted in each of its faces' bins, datasets with
20,000 pairs there averaged, as the cluster offsets are) less the overall one; ``f(t)`` interpolates
linearly between the bins' median ``t`` (flat beyond the end bins). Variants:

* ``shipped``: the default (nearest centroid's offset), recomputed as the reference;
* ``typ-mean``, ``typ-top5`` (A): ``s' = s − ½(f(t_a) + f(t_b))``;
* ``typ-mean-5``, ``fsn+typ-mean-5``: with ``BINS_FEW`` bins, so that UTKFace has 20,000 pairs in each
  bin and every bin's offset averages both datasets (with 10, the middle bins are LFW's alone);
* ``typ-mean-iso`` (A): the same with the bin offsets made monotone in ``t`` (pool-adjacent-violators,
  weighted by the bins' pairs, in the direction of their pair-weighted correlation with ``t``);
* ``typ-2d`` (B): ``s' = s − g(t_a, t_b)``, ``g`` each cell's 1e-3 threshold less the overall one in
  ``BINS_2D`` × ``BINS_2D`` cells of (t_a, t_b) (a pair counted once, the cell symmetric), bilinear
  between cell medians; a cell without 20,000 pairs of one dataset takes ``½(f(t_a) + f(t_b))``;
* ``fsn+typ-mean``, ``fsn+typ-2d`` (C): the shipped cluster offsets first, then (A) or (B) fitted on
  the residual (the cluster-normalised scores);
* ``fsn-thin-typ`` (C): the shipped offsets, but a face nearest to a thin cluster takes ``f(t)`` of
  ``typ-mean`` instead of 0.

What would ship is aggregates only: μ (a mean over all fit faces), the bin edges and medians, and one
offset per bin or cell, each over thousands of people (``info.min_people_per_bin``; the rule is ≥ 50).
Each variant gets its own table on the LFW fit half's same-sex pairs, as the default does.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fairnorm as FN
import fsn_fit as F
import fsn_variants as FV
from facetrust.fairness import clusterfit as CF
from facetrust.fairness.datasets import ADULT_BANDS
from facetrust.fairness.embedding import FACE
from host import machine_record, save_result

RESULTS = Path(__file__).resolve().parent / "results"
BINS = 10
BINS_FEW = 5  # every bin with 20,000 UTKFace pairs, so that both datasets count in each
BINS_2D = 6
TOP = 5
ALL = (
    "shipped",
    "typ-mean",
    "typ-mean-iso",
    "typ-mean-5",
    "typ-top5",
    "typ-2d",
    "fsn+typ-mean",
    "fsn+typ-mean-5",
    "fsn+typ-2d",
    "fsn-thin-typ",
)


@dataclass(frozen=True)
class Typicality:
    """``t(x)``: cosine to the mean face (``mu``) or the mean of the top-5 cosines to ``centroids``."""

    mu: np.ndarray | None
    centroids: np.ndarray | None

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        if self.mu is not None:
            out: np.ndarray = vectors @ self.mu
            return out
        assert self.centroids is not None
        sims = vectors @ self.centroids.T
        top: np.ndarray = np.sort(sims, axis=1)[:, -TOP:].mean(axis=1)
        return top


@dataclass(frozen=True)
class Bins:
    """Quantile bins of ``t``: inner ``edges`` and each bin's weighted median ``centres``."""

    edges: np.ndarray
    centres: np.ndarray

    def of(self, t: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.searchsorted(self.edges, t)
        return out

    def weights(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lower centre index, weight of the upper one) for linear interpolation, flat beyond the ends."""
        pos = np.interp(t, self.centres, np.arange(len(self.centres), dtype=float))
        lo = np.minimum(np.floor(pos).astype(np.int64), len(self.centres) - 2)
        return lo, pos - lo


def weighted_quantiles(values: list[np.ndarray], q: np.ndarray) -> np.ndarray:
    """Quantiles of the pooled values, each array's values weighted so that every array counts equally."""
    v = np.concatenate(values)
    w = np.concatenate([np.full(len(x), 1.0 / len(x)) for x in values])
    order = np.argsort(v)
    cum = (np.cumsum(w[order]) - 0.5 * w[order]) / w.sum()
    out: np.ndarray = np.interp(q, cum, v[order])
    return out


def fit_bins(t_fit: list[np.ndarray], n: int) -> Bins:
    return Bins(weighted_quantiles(t_fit, np.arange(1, n) / n), weighted_quantiles(t_fit, (np.arange(n) + 0.5) / n))


def isotonic(y: np.ndarray, w: np.ndarray, increasing: bool) -> np.ndarray:
    """Weighted least-squares monotone fit (pool adjacent violators)."""
    sign = 1.0 if increasing else -1.0
    blocks: list[list[float]] = []  # [value, weight, length]
    for yi, wi in zip(sign * y, w):
        blocks.append([yi, wi, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return sign * np.concatenate([np.full(int(n), v) for v, _, n in blocks])


class Typical:
    """Scores ``s − ½(m_a + m_b) − g(t_a, t_b)``: ``m`` a per-face shift, ``g`` an optional 2-D table."""

    def __init__(self, shift: Any, t: Typicality | None = None, bins: Bins | None = None, table: Any = None) -> None:
        self.shift, self.t, self.bins, self.table = shift, t, bins, table

    def scorer(self, vectors: np.ndarray) -> Any:
        m = self.shift(vectors)
        joint = self.table is not None and self.t is not None and self.bins is not None
        lo, w = self.bins.weights(self.t(vectors)) if joint else (None, None)  # type: ignore[union-attr, misc]
        g = self.table

        def term(r: np.ndarray, c: np.ndarray, outer: bool) -> Any:
            if not joint:
                return 0.0
            lr, wr, lc, wc = lo[r], w[r], lo[c], w[c]
            if outer:
                lr, wr, lc, wc = lr[:, None], wr[:, None], lc[None, :], wc[None, :]
            return (
                (1 - wr) * (1 - wc) * g[lr, lc]
                + (1 - wr) * wc * g[lr, lc + 1]
                + wr * (1 - wc) * g[lr + 1, lc]
                + wr * wc * g[lr + 1, lc + 1]
            )

        class Scorer:
            def block(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
                s = vectors[r] @ vectors[c].T - 0.5 * (m[r][:, None] + m[c][None, :])
                out: np.ndarray = s - term(r, c, True)
                return out

            def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
                s = np.einsum("ij,ij->i", vectors[a], vectors[b]) - 0.5 * (m[a] + m[b])
                out: np.ndarray = s - term(a, b, False)
                return out

        return Scorer()


def fit_faces(fit: dict[str, F.Part]) -> list[np.ndarray]:
    return [p.emb.vectors[p.status == FACE] for p in (fit["lfw"], fit["utk"])]


def people_per_bin(fit: dict[str, F.Part], t: Typicality, bins: Bins) -> int:
    vectors, people = F.cluster_input([fit["lfw"], fit["utk"]])
    label = bins.of(t(vectors))
    return min(len({people[i] for i in np.flatnonzero(label == b)}) for b in range(len(bins.centres)))


def curve(
    t: Typicality, bins: Bins, sets: list[CF.PairSet], shifts: list[np.ndarray], monotone: bool = False
) -> tuple[np.ndarray, dict[str, Any]]:
    """Each bin's offset at FMR 1e-3 (optionally made monotone) and what went into it."""
    labels = [bins.of(t(ps.vectors)) for ps in sets]
    hists = FV.label_histograms(len(bins.centres), sets, shifts, labels)
    raw = FV.offsets(hists, hottest=False)
    if np.isnan(raw).any():
        raise SystemExit(f"a typicality bin has too few pairs for FMR 1e-3: {raw.tolist()}")
    off = raw
    if monotone:
        pairs = hists[0].sum(axis=2).sum(axis=0)
        slope = np.cov(bins.centres, raw, aweights=pairs)[0, 1]
        off = isotonic(raw, pairs, increasing=slope >= 0)
    info = {"centres": np.round(bins.centres, 4).tolist(), "bin_offsets": np.round(off, 4).tolist()}
    return off, info


def joint_table(
    t: Typicality, bins: Bins, f: np.ndarray, sets: list[CF.PairSet], shifts: list[np.ndarray]
) -> tuple[np.ndarray, dict[str, Any]]:
    """``BINS_2D``² cells of (t_a, t_b): each cell's 1e-3 threshold less the overall; thin cells additive."""
    n = len(bins.centres)
    labels = [bins.of(t(ps.vectors)) for ps in sets]
    cells = FV.offsets(FV.label_histograms(n, sets, shifts, labels, joint=True), hottest=False).reshape(n, n)
    upper = np.triu(np.ones((n, n), bool))
    sym = np.where(upper, cells, cells.T)
    additive = 0.5 * (f[:, None] + f[None, :])
    thin = np.isnan(sym)
    table = np.where(thin, additive, sym)
    info = {"thin_cells": int(thin[upper].sum()), "table": np.round(table, 4).tolist()}
    return table, info


def build(
    name: str, fit: dict[str, F.Part], sets: list[CF.PairSet], centroids: np.ndarray
) -> tuple[Typical, dict[str, Any]]:
    """One variant's scorer factory and what was fitted (the shipped recipe's centroids given)."""
    shipped, shipped_info = FV.variant("shipped", centroids, sets)
    if name == "shipped":
        return Typical(lambda v: FV.weights(v, centroids, 0.0) @ shipped.mu), shipped_info
    faces = fit_faces(fit)
    mu = np.mean([x.mean(axis=0) for x in faces], axis=0)
    t = Typicality(None, centroids) if name == "typ-top5" else Typicality(mu / np.linalg.norm(mu), None)
    n = BINS_2D if name.endswith("2d") else BINS_FEW if name.endswith("-5") else BINS
    bins = fit_bins([t(x) for x in faces], n)
    residual = name.startswith("fsn+")
    base = [FV.weights(ps.vectors, centroids, 0.0) @ shipped.mu for ps in sets]
    shifts = base if residual else [np.zeros(len(ps.vectors)) for ps in sets]
    f, info = curve(t, bins, sets, shifts, monotone=name.endswith("-iso"))
    info["min_people_per_bin"] = people_per_bin(fit, t, bins)

    def smooth(v: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.interp(t(v), bins.centres, f)
        return out

    def cluster(v: np.ndarray) -> np.ndarray:
        out: np.ndarray = FV.weights(v, centroids, 0.0) @ shipped.mu
        return out

    if name == "fsn-thin-typ":
        thin = np.zeros(len(centroids), bool)
        thin[shipped_info["thin_clusters"]] = True

        def mixed(v: np.ndarray) -> np.ndarray:
            near = (v @ centroids.T).argmax(axis=1)
            out: np.ndarray = np.where(thin[near], smooth(v), cluster(v))
            return out

        return Typical(mixed), info | {"thin_clusters": shipped_info["thin_clusters"]}
    if name.endswith("2d"):
        table, joint_info = joint_table(t, bins, f, sets, shifts)
        return Typical(cluster if residual else lambda v: np.zeros(len(v)), t, bins, table), info | joint_info
    if residual:
        return Typical(lambda v: cluster(v) + smooth(v)), info
    return Typical(smooth), info


def typicality_by_group(fit: dict[str, F.Part], held: dict[str, F.Part], centroids: np.ndarray) -> dict[str, Any]:
    """Median ``t`` (both definitions) of the held-out faces: LFW, UTKFace adults by race, children 0–12."""
    faces = fit_faces(fit)
    mu = np.mean([x.mean(axis=0) for x in faces], axis=0)
    ts = {"mean": Typicality(mu / np.linalg.norm(mu), None), "top5": Typicality(None, centroids)}
    lfw, utk = held["lfw"], held["utk"]
    groups = {"LFW": np.flatnonzero(lfw.status == FACE)}
    adult = {i for i, r in enumerate(utk.spec.images) if r.groups.get("age_band") in ADULT_BANDS}
    for race in sorted({r.groups["race"] for r in utk.spec.images}):
        groups[f"UTK {race} adults"] = np.array(
            [i for i in sorted(adult) if utk.spec.images[i].groups["race"] == race and utk.status[i] == FACE]
        )
    groups["UTK children 0-12"] = np.array(
        [i for i, r in enumerate(utk.spec.images) if r.groups.get("age_band") == "0-12" and utk.status[i] == FACE]
    )
    return {
        g: {n: round(float(np.median(t((lfw if g == "LFW" else utk).emb.vectors[rows]))), 4) for n, t in ts.items()}
        for g, rows in groups.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=ALL, help="rerun these variants, keep the others' saved results")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from its .json")
    parser.add_argument("--split-seed", type=int, default=F.SEED, help="another split of the halves: a replication")
    args = parser.parse_args()
    stem = "typicality-variants" if args.split_seed == F.SEED else f"typicality-variants-split{args.split_seed}"
    title = "Typicality offsets for 1:1, not shipped (bench/typicality_variants.py)"
    footer = 'Why none is shipped: docs/fairness.md, "A smooth offset from how typical a face is".'
    if not args.render_only:
        run(args.split_seed, args.only, RESULTS / f"{stem}.json")
    result = json.loads((RESULTS / f"{stem}.json").read_text())
    (RESULTS / f"{stem}.md").write_text(FV.render(result, title, footer) + render_typicality(result))


def run(seed: int, only: list[str] | None, path: Path) -> None:
    """Fit and measure ``only`` (all by default; ``[]``: only the typicality medians), saving after each."""
    fit, held, sets = FV.split_data(seed)
    result: dict[str, Any] = {"machine": machine_record(), "split_seed": seed, "variants": {}}
    if only is not None and path.exists():
        saved = json.loads(path.read_text())
        result["variants"] = saved["variants"]
        result["machine"] = saved["machine"] if only == [] else result["machine"]
    vectors, people = F.cluster_input([fit["lfw"], fit["utk"]])
    centroids = CF.fit_centroids(vectors, people, F.K, seed=seed)[0]
    result["median_typicality_held_out"] = typicality_by_group(fit, held, centroids)
    for name in ALL if only is None else only:
        norm, info = build(name, fit, sets, centroids)
        scored = [F.calibration_scores(fit["lfw"], norm.scorer(fit["lfw"].emb.vectors))]
        cal = CF.fit_mixture_calibration(scored, model="variant", dataset="lfw fit half, normalised")
        measured = FN.evaluate(name, norm.scorer, cal, held)
        measured["race_ratio_intervals"] = FV.race_ratio_intervals(
            norm.scorer, measured["threshold"], held["utk"], measured
        )
        result["variants"][name] = {"info": info, "threshold": measured["threshold"], "summary": FV.summary(measured)}
        save_result(path, result)
    result["variants"] = {n: result["variants"][n] for n in ALL if n in result["variants"]}
    if only == []:  # the medians added to a saved run: its machine record (load during the run) kept
        path.write_text(json.dumps(result, indent=1) + "\n")
    else:
        save_result(path, result)


def render_typicality(result: dict[str, Any]) -> str:
    found = result.get("median_typicality_held_out")
    if not found:
        return ""
    lines = ["", "Median typicality of the held-out faces (``mean``: cosine to μ; ``top5``: to the centroids):", ""]
    lines += ["| faces | mean | top5 |", "|---|---|---|"]
    lines += [f"| {g} | {v['mean']:.3f} | {v['top5']:.3f} |" for g, v in found.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
