"""Variants of the shipped cluster normalisation that were tried for issue 11 and not shipped.

    nice -n 5 .venv/bin/python bench/fsn_variants.py    # writes bench/results/fsn-variants.{json,md}
    nice -n 5 .venv/bin/python bench/fsn_variants.py --only merge k32   # rerun some, keep the rest

Same split, centroids, pairs and held-out measurement as bench/fairnorm.py (its ``evaluate``);
only the way each face's shift is computed changes. The default (``shipped``: each face takes
the offset of its nearest centroid, offsets at FMR 1e-3 with each dataset weighted equally in a
cluster) is recomputed here as the reference. Variants:

* ``soft``: a face's shift is the softmax-weighted mean of the offsets (temperature 0.02 on
  cosine to the centroids) instead of its nearest centroid's;
* ``iterated``: offsets refitted three times on the already-normalised scores and added (a fixed
  point would make every cluster's normalised tail equal); the largest change per round is
  recorded, to show whether it converges;
* ``max``: in a cluster where both datasets have enough pairs, the hotter dataset's threshold
  decides the offset instead of the mean of their tails;
* ``znorm``: each cluster's impostor mean and standard deviation (the datasets' mean in a
  cluster), a pair scored ``(s − ½(μa + μb)) / √(½(σa² + σb²))``, divided by 20 so that the
  table's score grid holds it;

and, for the clusters the default leaves without an offset (no dataset with 20 / 1e-3 = 20,000
pairs in them: offset 0, an arbitrary value rather than an estimate):

* ``shrink-global-2k``, ``shrink-global-20k``, ``shrink-nbr-2k``, ``shrink-nbr-20k``: every cluster's
  offset shrunk toward a prior by its pair count, ``δ = (n·δ_raw + n0·δ_prior) / (n + n0)`` with
  n0 = 2,000 or 20,000 (fixed beforehand: the pairs at which FMR 1e-2 and 1e-3 have 20 pairs above
  them); ``δ_raw`` at 1e-3 where supported, else at 1e-2 less the overall 1e-2 threshold; the prior
  0 (all pairs' offset) or the supported neighbours' offsets weighted by centroid cosine;
* ``merge``: each thin cluster merged into its nearest supported cluster (its faces' pairs count
  there, that offset refitted, and the thin centroid takes it);
* ``k32``, ``k48``: the default recipe with fewer clusters (same privacy rule), so that fewer are thin.

Each variant gets its own table on the LFW fit half's same-sex pairs, as the default does.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fairnorm as FN
import fsn_fit as F
import lfw_data as L
from facetrust.config import Settings, default_cache_dir
from facetrust.engine import FaceEngine
from facetrust.fairness import clusterfit as CF
from facetrust.fairness.audit import AuditOptions, audit_analysis
from facetrust.fairness.datasets import DatasetSpec
from facetrust.fairness.embedding import DatasetEmbeddings
from facetrust.fairness.runner import embed_spec
from host import machine_record, save_result

RESULTS = Path(__file__).resolve().parent / "results"
FMR = 1e-3
MIN_TAIL = 20
CHUNK = 4_000_000
MIN_RACE_IMAGES = 100  # race groups with fewer faces in a held-out half are left out of the ratio


def weights(vectors: np.ndarray, centroids: np.ndarray, tau: float) -> np.ndarray:
    """(n, k) assignment weights: one-hot nearest centroid (tau 0) or a softmax of cosine / tau."""
    sims = vectors @ centroids.T
    if tau == 0:
        out = np.zeros_like(sims)
        out[np.arange(len(sims)), sims.argmax(axis=1)] = 1.0
        return out
    e = np.exp((sims - sims.max(axis=1, keepdims=True)) / tau)
    out_soft: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out_soft


def histograms(
    centroids: np.ndarray, sets: list[CF.PairSet], shifts: list[np.ndarray], merge: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(sets, k, grid) histograms of shifted pair scores, a pair counted once for each of its clusters,
    and (sets, grid) over all pairs, each once (``clusterfit.cluster_offsets``'s). ``merge[c]``: the
    cluster whose pairs a face nearest to centroid ``c`` counts in (itself by default)."""
    labels = []
    for ps in sets:
        cluster = (ps.vectors @ centroids.T).argmax(axis=1)
        labels.append(cluster if merge is None else merge[cluster])
    return label_histograms(len(centroids), sets, shifts, labels)


def label_histograms(
    k: int, sets: list[CF.PairSet], shifts: list[np.ndarray], labels: list[np.ndarray], joint: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``histograms`` over any per-face labels in ``range(k)``: a pair counts once for each of its two
    labels or, ``joint``, once in cell ``min(la, lb) · k + max(la, lb)`` of (sets, k², grid)."""
    cells, out, overall = k * k if joint else k, [], []
    for ps, sh, label in zip(sets, shifts, labels):
        counts, every = np.zeros(cells * CF.GRID), np.zeros(CF.GRID)
        for s in range(0, len(ps.a), CHUNK):
            a, b = ps.a[s : s + CHUNK], ps.b[s : s + CHUNK]
            pos = CF._bins(np.einsum("ij,ij->i", ps.vectors[a], ps.vectors[b]) - 0.5 * (sh[a] + sh[b]))
            ca, cb = label[a], label[b]
            if joint:
                counts += np.bincount(
                    (np.minimum(ca, cb) * k + np.maximum(ca, cb)) * CF.GRID + pos, minlength=cells * CF.GRID
                )
            else:
                counts += np.bincount(ca * CF.GRID + pos, minlength=k * CF.GRID)
                counts += np.bincount((cb * CF.GRID + pos)[cb != ca], minlength=k * CF.GRID)
            every += np.bincount(pos, minlength=CF.GRID)
        out.append(counts.reshape(cells, CF.GRID))
        overall.append(every)
    return np.stack(out), np.stack(overall)


def offsets(hists: tuple[np.ndarray, np.ndarray], hottest: bool, fmr: float = FMR) -> np.ndarray:
    """Each cluster's threshold at ``fmr`` less the overall one (datasets weighted equally); NaN where
    no dataset has ``MIN_TAIL / fmr`` pairs in the cluster (``cluster_offsets`` gives those 0)."""
    counts, overall = hists
    base = CF._threshold(CF._tail(overall).mean(axis=0), fmr)
    usable = counts.sum(axis=2) * fmr >= MIN_TAIL
    tails = CF._tail(counts)
    out = np.full(counts.shape[1], np.nan)
    for c in range(counts.shape[1]):
        sets = np.flatnonzero(usable[:, c])
        if not len(sets):
            continue
        if hottest:
            out[c] = max(CF._threshold(tails[j, c], fmr) for j in sets) - base
        else:
            out[c] = CF._threshold(tails[sets, c].mean(axis=0), fmr) - base
    return out


def supported_pairs(counts: np.ndarray, fmr: float) -> np.ndarray:
    """Per cluster, the pairs of the datasets that have ``MIN_TAIL / fmr`` of them there."""
    n = counts.sum(axis=2)
    out: np.ndarray = np.where(n * fmr >= MIN_TAIL, n, 0).sum(axis=0)
    return out


def shrunk(centroids: np.ndarray, hists: tuple[np.ndarray, np.ndarray], prior: str, n0: float) -> tuple[Any, Any]:
    """Empirical-Bayes offsets: ``δ = (n·δ_raw + n0·δ_prior) / (n + n0)`` for every cluster.

    ``δ_raw`` is read at FMR 1e-3 where a cluster supports it, else at 1e-2 less the overall
    threshold at 1e-2 (the global 1e-2 → 1e-3 gap carried over), else absent (n = 0); ``n`` the pairs
    it was read from. ``prior``: ``global`` (0, the offset of all pairs) or ``neighbours`` (the
    supported clusters' 1e-3 offsets, weighted by a softmax of centroid cosine / 0.05)."""
    fine, coarse = offsets(hists, False, FMR), offsets(hists, False, 10 * FMR)
    raw = np.where(np.isnan(fine), coarse, fine)
    n = np.where(np.isnan(fine), supported_pairs(hists[0], 10 * FMR), supported_pairs(hists[0], FMR))
    n = np.where(np.isnan(raw), 0, n)
    if prior == "global":
        pri = np.zeros(len(centroids))
    else:
        w = np.exp((centroids @ centroids.T - 1.0) / 0.05) * ~np.isnan(fine)[None, :]
        np.fill_diagonal(w, 0.0)
        pri = (w @ np.nan_to_num(fine)) / w.sum(axis=1)
    out = (n * np.nan_to_num(raw) + n0 * pri) / (n + n0)
    thin = np.flatnonzero(np.isnan(fine))
    info = {
        "thin_clusters": thin.tolist(),
        "thin_pairs": n[thin].astype(int).tolist(),
        "thin_raw_at_1e-2": [None if np.isnan(x) else round(float(x), 4) for x in coarse[thin]],
        "thin_offsets": np.round(out[thin], 4).tolist(),
        "largest_change_supported": round(float(np.nanmax(np.abs(out - fine))), 4),
    }
    return out, info


def merged(centroids: np.ndarray, sets: list[CF.PairSet], zero: list[np.ndarray]) -> tuple[Any, Any]:
    """Thin clusters (no dataset with ``MIN_TAIL / FMR`` pairs) merged into their nearest supported
    cluster: their faces' pairs count there, the merged cluster's offset refitted, and they take it."""
    fine = offsets(histograms(centroids, sets, zero), False)
    ok = ~np.isnan(fine)
    target = np.where(ok, np.arange(len(centroids)), np.argmax(np.where(ok[None, :], centroids @ centroids.T, -2), 1))
    off = offsets(histograms(centroids, sets, zero, target), False)[target]
    thin = np.flatnonzero(~ok)
    info = {
        "thin_clusters": thin.tolist(),
        "into": target[thin].tolist(),
        "thin_offsets": np.round(off[thin], 4).tolist(),
    }
    return np.nan_to_num(off), info


class Shifted:
    """Scores ``(s − ½(μa + μb)) / scale``: μ per face from its cluster weights, scale 1 or per face."""

    def __init__(self, centroids: np.ndarray, mu: np.ndarray, tau: float, sd: np.ndarray | None = None) -> None:
        self.centroids, self.mu, self.tau, self.sd = centroids, mu, tau, sd

    def scorer(self, vectors: np.ndarray) -> Any:
        w = weights(vectors, self.centroids, self.tau)
        m = w @ self.mu
        sd = None if self.sd is None else w @ self.sd

        class Scorer:
            def block(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
                s = vectors[r] @ vectors[c].T - 0.5 * (m[r][:, None] + m[c][None, :])
                return s if sd is None else s / np.sqrt(0.5 * (sd[r][:, None] ** 2 + sd[c][None, :] ** 2)) / 20

            def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
                s = np.einsum("ij,ij->i", vectors[a], vectors[b]) - 0.5 * (m[a] + m[b])
                return s if sd is None else s / np.sqrt(0.5 * (sd[a] ** 2 + sd[b] ** 2)) / 20

        return Scorer()


def moments(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster, the datasets' mean impostor mean and standard deviation (sets with enough pairs)."""
    grid = -1.0 + 2.0 * np.arange(CF.GRID) / (CF.GRID - 1)
    n = counts.sum(axis=2)
    mean = (counts * grid).sum(axis=2) / np.maximum(n, 1)
    sd = np.sqrt((counts * (grid[None, None, :] - mean[..., None]) ** 2).sum(axis=2) / np.maximum(n, 1))
    ok = n * FMR >= MIN_TAIL
    mu = np.array([mean[ok[:, c], c].mean() if ok[:, c].any() else np.nan for c in range(counts.shape[1])])
    sig = np.array([sd[ok[:, c], c].mean() if ok[:, c].any() else np.nan for c in range(counts.shape[1])])
    return np.nan_to_num(mu, nan=float(np.nanmedian(mu))), np.nan_to_num(sig, nan=float(np.nanmedian(sig)))


SHRINK = {
    "shrink-global-2k": ("global", 2_000),
    "shrink-global-20k": ("global", 20_000),
    "shrink-nbr-2k": ("neighbours", 2_000),
    "shrink-nbr-20k": ("neighbours", 20_000),
}


def variant(name: str, centroids: np.ndarray, sets: list[CF.PairSet]) -> tuple[Shifted, dict[str, Any]]:
    zero = [np.zeros(len(ps.vectors)) for ps in sets]
    if name in SHRINK:
        off, info = shrunk(centroids, histograms(centroids, sets, zero), *SHRINK[name])
        return Shifted(centroids, off, 0.0), info
    if name == "merge":
        off, info = merged(centroids, sets, zero)
        return Shifted(centroids, off, 0.0), info
    if name.startswith("k") or name == "shipped":  # the shipped recipe on these centroids
        off = offsets(histograms(centroids, sets, zero), hottest=False)
        thin = np.flatnonzero(np.isnan(off))
        return Shifted(centroids, np.nan_to_num(off), 0.0), {"clusters": len(centroids), "thin_clusters": thin.tolist()}
    if name == "znorm":
        mu, sd = moments(histograms(centroids, sets, zero)[0])
        return Shifted(centroids, mu, 0.0, sd), {}
    tau = 0.02 if name == "soft" else 0.0
    off = np.nan_to_num(offsets(histograms(centroids, sets, zero), hottest=name == "max"))
    info: dict[str, Any] = {}
    if name == "iterated":
        info["largest_change_per_round"] = [float(np.abs(off).max())]
        for _ in range(2):
            shifts = [weights(ps.vectors, centroids, 0.0) @ off for ps in sets]
            step = np.nan_to_num(offsets(histograms(centroids, sets, shifts), hottest=False))
            off = off + step
            info["largest_change_per_round"].append(float(np.abs(step).max()))
    return Shifted(centroids, off, tau), info


def summary(r: dict[str, Any]) -> dict[str, Any]:
    sex, ua, un = r["lfw_sex"], r["utk_all"], r["utk_without_same_person"]
    return {
        "lfw_female": sex["groups"]["female"]["fmr"],
        "lfw_male": sex["groups"]["male"]["fmr"],
        "lfw_ratio": sex["ratio"],
        "lfw_ratio_interval": sex.get("ratio_interval"),
        "lfw_tar": sex["tar"],
        "utk_adults": ua["adults"],
        "race_ratio_all": FN.worst_best(ua["race"], 2000),
        "race_ratio_without_same_person": FN.worst_best(un["race"], 2000),
        "race_ratio_intervals": r.get("race_ratio_intervals"),
        "children": ua["age"]["0-12"]["fmr"],
        "children_vs_adults": ua["children_vs_adults"],
        "children_vs_adults_without_same_person": un["children_vs_adults"],
        "race_fmr": {g: [v["fmr"], un["race"][g]["fmr"][0], v["pairs"]] for g, v in ua["race"].items()},
    }


def over_splits(summaries: list[dict[str, Any]]) -> str:
    """The cells "LFW f/m | LFW TAR | race worst/best | children/adults" over several splits'
    ``summary``s: geometric means (the race ratio's over the splits where it is bounded), TAR's mean."""

    def gm(key: str) -> float:  # nan where no split has a value (children/adults when no child matched)
        values = [s[key] for s in summaries if s[key]]
        return math.exp(float(np.mean(np.log(values)))) if values else math.nan

    bounded = sum(1 for s in summaries if s["race_ratio_all"])
    note = "" if bounded == len(summaries) else f" ({bounded} splits; the others unbounded)"
    tar = 100 * float(np.mean([s["lfw_tar"] for s in summaries]))
    return f"{gm('lfw_ratio'):.2f}× | {tar:.2f} % | {gm('race_ratio_all'):.2f}×{note} | {gm('children_vs_adults'):.2f}×"


def splits_table(lead: str, rows: list[str]) -> list[str]:
    """Markdown lines of a table of ``over_splits`` rows, led by the columns ``lead`` ("a | b")."""
    cells = lead.count("|") + 1
    return [
        "",
        "Over the splits (geometric means; TAR: arithmetic):",
        "",
        f"| {lead} | LFW f/m | LFW TAR | race worst/best | children/adults |",
        "|---" * (cells + 4) + "|",
        *rows,
        "",
        "What it means: docs/fairness.md, the accurate profile.",
    ]


def race_ratio_intervals(scorer_of: Any, t80: float, utk: F.Part, measured: dict[str, Any]) -> dict[str, Any]:
    """Bootstrap intervals of the race worst/best ratio over the groups with ≥ 2,000 pairs: the race
    audit rerun with the smaller groups (Black adults, ~50 faces per half) left unmeasured."""
    options = AuditOptions(replicates=FN.OPTIONS.replicates, seed=FN.OPTIONS.seed, min_images=MIN_RACE_IMAGES)
    big = {g for g, v in measured["utk_all"]["race"].items() if v["pairs"] >= 2000}
    out: dict[str, Any] = {}
    for label, wrap in (("all", False), ("without_same_person", True)):
        scorer = scorer_of(utk.emb.vectors)
        scorer = FN.WithoutSamePerson(scorer, utk.emb.vectors) if wrap else scorer
        res = audit_analysis(utk.spec, utk.emb, scorer, utk.spec.analyses[0], t80, options, 1)
        if {g.group for g in res.groups} != big:
            out[label] = None
            continue
        found = [x for x in res.ratios if x.metric == "fmr" and x.point == "similarity"]
        out[label] = [found[0].differential.ratio, found[0].interval.low, found[0].interval.high] if found else None
    return out


def render(
    result: dict[str, Any],
    title: str = "Cluster-normalisation variants not shipped (bench/fsn_variants.py)",
    footer: str = 'Why none is shipped: docs/fairness.md, "Tried for 1:1 and not shipped".',
) -> str:
    def x(v: float | None) -> str:
        return "–" if v is None else f"{v:.2f}×"

    def xi(v: float | None, box: list[float] | None) -> str:
        return x(v) if not box else f"{x(v)} ({box[1]:.2f}–{box[2]:.2f})"

    def f(r: list[float]) -> str:
        return f"{r[0]:.1e} ({r[1]:.1e}–{r[2]:.1e})"

    lines = [
        f"# {title}",
        "",
        f"Split seed {result.get('split_seed', F.SEED)} (seed 0: the split the shipped normaliser was fitted on; "
        "another seed: a replication, every variant refitted on that split's fit halves). "
        f"Machine: {json.dumps(result['machine'])}. Held-out halves as bench/fairnorm.py; FMR at each variant's "
        "own Similarity 80 (promise 1e-4), 95 % bootstrap intervals over people (UTKFace: images), 200 replicates. "
        "Race ratio over groups with ≥ 2,000 pairs (its interval: the race audit with the other groups "
        "unmeasured); children/adults is the ratio of the two FMRs shown (no joint interval).",
        "",
        "| variant | LFW female | LFW male | LFW f/m | LFW TAR | UTK adults | race worst/best (all; w/o ≥0.6) "
        "| children 0–12 | children/adults (all; w/o ≥0.6) | notes |",
        "|" + "---|" * 10,
    ]
    for name, v in result["variants"].items():
        s = v["summary"]
        boxes = s.get("race_ratio_intervals") or {}
        lines.append(
            f"| {name} | {f(s['lfw_female'])} | {f(s['lfw_male'])} | {xi(s['lfw_ratio'], s.get('lfw_ratio_interval'))} "
            f"| {100 * s['lfw_tar']:.2f} % | {f(s['utk_adults'])} | {xi(s['race_ratio_all'], boxes.get('all'))}; "
            f"{xi(s['race_ratio_without_same_person'], boxes.get('without_same_person'))} | {f(s['children'])} "
            f"| {x(s['children_vs_adults'])}; {x(s['children_vs_adults_without_same_person'])} "
            f"| {json.dumps(v['info']) if v['info'] else ''} |"
        )
    races = [v["summary"]["race_fmr"] for v in result["variants"].values() if "race_fmr" in v["summary"]]
    if races:
        lines += [
            "",
            "UTKFace adults by race, FMR at Similarity 80, all pairs (interval) / without pairs at ≥ 0.6:",
            "",
        ]
        lines += ["| variant | " + " | ".join(f"{g} ({p[2]:,} pairs)" for g, p in races[0].items()) + " |"]
        lines += ["|" + "---|" * (len(races[0]) + 1)]
        for name, v in result["variants"].items():
            if "race_fmr" in v["summary"]:
                cells = [f"{f(p[0])} / {p[1]:.1e}" for p in v["summary"]["race_fmr"].values()]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", footer]
    return "\n".join(lines) + "\n"


ALL = ("shipped", "soft", "iterated", "max", "znorm", *SHRINK, "merge", "k32", "k48")


PROFILE: str | None = None  # the embedding profile (None: the setting's); bench/fit_size.py --profile sets it


def load_data() -> tuple[dict[str, DatasetSpec], dict[str, DatasetEmbeddings]]:
    """LFW's and UTKFace's specs and raw embeddings (from the embedding cache)."""
    settings = Settings.load()
    engine = FaceEngine.load(settings.replace(calibration_file=None, profile=PROFILE or settings.profile))
    specs = F.datasets(L.data_root())
    embs = {n: embed_spec(engine, s, cache_dir=default_cache_dir(), workers=1) for n, s in specs.items()}
    return specs, embs


def profile_data(profile: str) -> tuple[dict[str, DatasetSpec], dict[str, DatasetEmbeddings]]:
    """``load_data`` for ``profile`` ("default" or "accurate"), scoring pairs a million at a time."""
    global CHUNK, PROFILE
    CHUNK, PROFILE = 1_000_000, profile
    return load_data()


def accurate_data() -> tuple[dict[str, DatasetSpec], dict[str, DatasetEmbeddings]]:
    """``load_data`` for the accurate profile, scoring pairs a million at a time."""
    return profile_data("accurate")


def split_data(seed: int) -> tuple[dict[str, F.Part], dict[str, F.Part], list[CF.PairSet]]:
    """(fit halves, evaluation halves, the fit halves' offset pairs) of one split seed.

    The UTKFace offset pairs are those of the recipe until November 30, 2026: every pair at raw
    cosine ≥ 0.6 left out, children's too (``fsn_fit.pair_rows``), and the two datasets are the
    offsets' parts. The variant scripts built on this (this one, cohort_, whiten_,
    typicality_variants, indian_pairs) measured their variants against that default, and rerun
    they still do; bench/exclusion_variants.py and bench/balance_variants.py measure today's
    rules (``fsn_fit.utk_offset_rows``, ``fsn_fit.offset_parts``) against it."""
    specs, embs = load_data()
    fit, held = F.fit_and_held(specs, embs, seed)
    sets = [
        CF.PairSet("lfw", fit["lfw"].emb.vectors, *F.pair_rows(fit["lfw"], F.CALIBRATION_ANALYSIS)),
        CF.PairSet("utk", fit["utk"].emb.vectors, *F.pair_rows(fit["utk"], F.UTK_OFFSET_ANALYSIS)),
    ]
    return fit, held, sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=ALL, help="rerun these variants, keep the others' saved results")
    parser.add_argument("--render-only", action="store_true", help="rewrite fsn-variants.md from its .json")
    parser.add_argument(
        "--split-seed", type=int, default=F.SEED, help="another split of the halves (and k-means seed): a replication"
    )
    args = parser.parse_args()
    stem = "fsn-variants" if args.split_seed == F.SEED else f"fsn-variants-split{args.split_seed}"
    if args.render_only:
        (RESULTS / f"{stem}.md").write_text(render(json.loads((RESULTS / f"{stem}.json").read_text())))
        return
    fit, held, sets = split_data(args.split_seed)
    vectors, people = F.cluster_input([fit["lfw"], fit["utk"]])
    result: dict[str, Any] = {"machine": machine_record(), "split_seed": args.split_seed, "variants": {}}
    if args.only and (RESULTS / f"{stem}.json").exists():
        result["variants"] = json.loads((RESULTS / f"{stem}.json").read_text())["variants"]
    centroids = {}
    for name in args.only or ALL:
        k = int(name[1:]) if name in ("k32", "k48") else F.K
        if k not in centroids:
            centroids[k] = CF.fit_centroids(vectors, people, k, seed=args.split_seed)[0]
        norm, info = variant(name, centroids[k], sets)
        scored = [F.calibration_scores(fit["lfw"], norm.scorer(fit["lfw"].emb.vectors))]
        cal = CF.fit_mixture_calibration(scored, model="variant", dataset="lfw fit half, normalised")
        measured = FN.evaluate(name, norm.scorer, cal, held)
        measured["race_ratio_intervals"] = race_ratio_intervals(
            norm.scorer, measured["threshold"], held["utk"], measured
        )
        result["variants"][name] = {"info": info, "threshold": measured["threshold"], "summary": summary(measured)}
        save_result(RESULTS / f"{stem}.json", result)
    result["variants"] = {n: result["variants"][n] for n in ALL if n in result["variants"]}
    save_result(RESULTS / f"{stem}.json", result)
    (RESULTS / f"{stem}.md").write_text(render(result))


if __name__ == "__main__":
    main()
