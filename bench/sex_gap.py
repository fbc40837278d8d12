"""Why the default 1:1 normaliser leaves LFW women's FMR at 2–5× men's (issue 11).

    nice -n 5 .venv/bin/python bench/sex_gap.py                 # sex-gap.{json,md}
    nice -n 5 .venv/bin/python bench/sex_gap.py --render-only

Two readings, on the halves of bench/fsn_fit.py (fit halves fit, evaluation halves are measured):

* **Where women's false matches come from** (split seed 0, the shipped normaliser refitted by its
  own recipe): how the regions' faces divide by sex (the labels read here only, never by the
  normaliser), the held-out FMR at Similarity 80 of same-sex pairs by the share of women in the
  pair's two regions, and the pairs of people that make the most false matches (fit and held out).
* **Label-free ways to narrow the gap, measured** (split seeds 0 and 2, the two of five splits with
  the widest female/male ratio; each fitted on the fit halves, the held-out measurement of
  bench/fairnorm.py):
  * ``shipped``: the recipe shipped when this was measured (the evening of November 30, 2026:
    ``EVENING``, at most 20 photos per LFW person in the pairs, as every variant here; no coverage
    rule) on the split's centroids;
  * ``amp-0.5``, ``amp-1``: its offsets times 1.5 and 2 (a crowded region still stricter; the
    offsets correlate with the regions' share of women);
  * ``tail-scale``: each region's scores also divided by its tail's width (its score at FMR 1e-3
    less its score at 1e-2, from the part that sets its offset, clipped to 0.5–2× the overall
    width), so that a region whose tail falls slowly is stretched;
  * ``shallow``: a part with too few pairs in a region for a 1e-3 tail (under 20,000; most women
    in regions where men are most of the faces) still counts there where it has the 2,000 pairs a
    1e-2 tail needs, through its score at 1e-2 plus its own overall gap from 1e-2 to 1e-3;
  * ``k96``, ``k128``: more regions asked of k-means (the privacy rule drops those averaging
    fewer than 50 people).
  The capped pairs (at most 20 photos per LFW person) are measured on all five splits in
  bench/balance_variants.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import exclusion_variants as EV
import fairnorm as FN
import fsn_fit as F
import fsn_variants as FV
from facetrust.fairness import clusterfit as CF
from facetrust.fairness.embedding import FACE
from host import machine_record, save_result

RESULTS = FV.RESULTS
STEM = "sex-gap"
SEEDS = (0, 2)
VARIANTS = ("shipped", "amp-0.5", "amp-1", "tail-scale", "shallow", "k96", "k128")
BANDS = ((0.0, 0.3, "mostly men (< 30 % women)"), (0.3, 0.7, "mixed"), (0.7, 1.01, "mostly women (≥ 70 %)"))
TOP = 5
EVENING = F.Recipe(min_coverage=0.0)  # the recipe shipped on the evening of November 30, 2026, measured here


class TailScaled:
    """Scores ``t + (s − ½(μa + μb)) · w / ½(wa + wb)``: each region's offset and tail width."""

    def __init__(self, centroids: np.ndarray, mu: np.ndarray, width: np.ndarray, base: float, base_width: float):
        self.centroids, self.mu, self.width, self.base, self.base_width = centroids, mu, width, base, base_width

    def scorer(self, vectors: np.ndarray) -> Any:
        near = np.argmax(vectors @ self.centroids.T, axis=1)
        m, w, t, w0 = self.mu[near], self.width[near], self.base, self.base_width

        class Scorer:
            def block(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
                s = vectors[r] @ vectors[c].T - 0.5 * (m[r][:, None] + m[c][None, :])
                out: np.ndarray = t + s * w0 / (0.5 * (w[r][:, None] + w[c][None, :]))
                return out

            def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
                s = np.einsum("ij,ij->i", vectors[a], vectors[b]) - 0.5 * (m[a] + m[b])
                out: np.ndarray = t + s * w0 / (0.5 * (w[a] + w[b]))
                return out

        return Scorer()


def tail_scaled(centroids: np.ndarray, sets: list[CF.PairSet], lo: float = 1e-2, hi: float = 1e-3) -> TailScaled:
    """Per region, the strictest part's score at ``hi`` and its width down to ``lo`` (as
    ``clusterfit.cluster_offsets(strictest=True)`` picks the part); thin regions the overall ones."""
    hist = [CF._histograms(centroids, ps, 4_000_000) for ps in sets]
    counts, overall = np.stack([h[0] for h in hist]), np.stack([h[1] for h in hist])
    tails_all = CF._tail(overall[overall.sum(axis=1) * hi >= 20])
    top = [CF._threshold(t, hi) for t in tails_all]
    j = int(np.argmax(top))
    base, base_width = top[j], top[j] - CF._threshold(tails_all[j], lo)
    usable, tails = counts.sum(axis=2) * hi >= 20, CF._tail(counts)
    mu, width = np.full(len(centroids), base), np.full(len(centroids), base_width)
    for c in range(len(centroids)):
        parts = np.flatnonzero(usable[:, c])
        if len(parts):
            own = [CF._threshold(tails[p, c], hi) for p in parts]
            p = parts[int(np.argmax(own))]
            mu[c] = max(own)
            width[c] = np.clip(mu[c] - CF._threshold(tails[p, c], lo), 0.5 * base_width, 2.0 * base_width)
    return TailScaled(centroids, mu, width, base, base_width)


def shallow_offsets(centroids: np.ndarray, sets: list[CF.PairSet], lo: float = 1e-2, hi: float = 1e-3) -> np.ndarray:
    """``clusterfit.cluster_offsets(balance=True, strictest=True)``, with a part too thin for ``hi`` in a
    region read at ``lo`` there and moved by its overall ``lo`` → ``hi`` gap."""
    hist = [CF._histograms(centroids, ps, 4_000_000) for ps in sets]
    counts, overall = np.stack([h[0] for h in hist]), np.stack([h[1] for h in hist])
    measured = np.flatnonzero(overall.sum(axis=1) * hi >= 20)
    whole = CF._tail(overall)
    base = max(CF._threshold(whole[j], hi) for j in measured)
    gap = {j: CF._threshold(whole[j], hi) - CF._threshold(whole[j], lo) for j in measured}
    n, tails = counts.sum(axis=2), CF._tail(counts)
    out = np.zeros(len(centroids))
    for c in range(len(centroids)):
        own = [
            CF._threshold(tails[j, c], hi) if n[j, c] * hi >= 20 else CF._threshold(tails[j, c], lo) + gap[j]
            for j in measured
            if n[j, c] * lo >= 20
        ]
        if own:
            out[c] = max(own) - base
    return out


@dataclass(frozen=True)
class Split:
    """One split seed's halves: every face (the k-means input), the shipped recipe's capped pairs
    (``fsn_fit.pair_data``) and its offset parts, built once and shared by every variant."""

    seed: int
    fit: dict[str, F.Part]
    pairs: dict[str, F.Part]
    sets: list[CF.PairSet]
    held: dict[str, F.Part]


def split(seed: int) -> Split:
    fit, held, _ = FV.split_data(seed)
    pairs = F.pair_data(fit, EVENING, seed)
    return Split(seed, fit, pairs, F.offset_parts(pairs), held)


def variant(name: str, sp: Split, cents: dict[int, Any]) -> Any:
    k = int(name[1:]) if name.startswith("k") else F.K
    if k not in cents:
        vectors, people = F.cluster_input([sp.fit["lfw"], sp.fit["utk"]])
        cents[k] = CF.fit_centroids(vectors, people, k, seed=sp.seed)[0]
    fit, held, centroids, sets = sp.pairs, sp.held, cents[k], sp.sets
    info: dict[str, Any] = {"clusters": len(centroids)}
    if name == "tail-scale":
        norm = tail_scaled(centroids, sets)
        w = norm.width
        info["width"] = {"overall": round(norm.base_width, 4), "min": float(w.min()), "max": float(w.max())}
        scores = F.calibration_scores(fit["lfw"], norm.scorer(fit["lfw"].emb.vectors))
        cal = CF.fit_mixture_calibration(F.split_by_sex(scores, fit["lfw"]), model=name, dataset="lfw fit half")
        measured = FN.evaluate(name, norm.scorer, cal, held)
        return {"info": info, "threshold": measured["threshold"], "summary": FV.summary(measured)}
    if name == "shallow":
        off = shallow_offsets(centroids, sets)
    else:
        off = CF.cluster_offsets(centroids, sets, fmr=F.OFFSET_FMR, balance=True, strictest=True).astype(float)
    if name.startswith("amp"):
        off *= 1.0 + float(name.split("-")[1])
    return EV.measure(name, centroids, off, np.flatnonzero(off == 0), fit, held, info, table_by_sex=True)


def top_pairs(p: F.Part, scores: np.ndarray, t: float) -> dict[str, Any]:
    """Per sex: false matches at ``t`` among same-sex pairs, and the pairs of people with the most."""
    a, b = F.pair_rows(p, F.CALIBRATION_ANALYSIS)
    sex = np.array([F.sex_part(img.groups) for img in p.spec.images])
    who = [img.identity or "" for img in p.spec.images]
    out = {}
    for x in ("female", "male"):
        hit = (sex[a] == x) & (scores >= t)
        c = Counter(" / ".join(sorted((who[i], who[j]))) for i, j in zip(a[hit], b[hit]))
        out[x] = {"pairs": int((sex[a] == x).sum()), "false_matches": int(hit.sum()), "top": c.most_common(TOP)}
    return out


def regions(sp: Split) -> dict[str, Any]:
    fit, held = sp.fit, sp.held
    norm = F.fit_normaliser("sex-gap", fit, recipe=EVENING)
    assert norm.calibration is not None
    t = norm.calibration.score_for_similarity(80.0)
    p = held["lfw"]
    near = norm.nearest(p.emb.vectors)
    sex = np.array([F.sex_part(img.groups) for img in p.spec.images])
    ok = p.status == FACE
    k = len(norm.centroids)
    women = np.bincount(near[ok & (sex == "female")], minlength=k)
    men = np.bincount(near[ok & (sex == "male")], minlength=k)
    share = women / np.maximum(women + men, 1)
    scores = F.calibration_scores(p, norm.scorer(p.emb.vectors))
    a, b = F.pair_rows(p, F.CALIBRATION_ANALYSIS)
    pair_share = 0.5 * (share[near[a]] + share[near[b]])
    women_set = next(ps for ps in sp.sets if ps.name == "lfw female")
    women_fit = CF._histograms(norm.centroids, women_set, 4_000_000)[0].sum(axis=1)
    bands = []
    for lo, hi, label in BANDS:
        in_band = (share >= lo) & (share < hi)
        row: dict[str, Any] = {
            "label": label,
            "regions": int(in_band.sum()),
            "women": int(women[in_band].sum()),
            "men": int(men[in_band].sum()),
            "women_part_counted": int((women_fit[in_band] * F.OFFSET_FMR >= 20).sum()),
        }
        for x in ("female", "male"):
            m = (sex[a] == x) & (pair_share >= lo) & (pair_share < hi)
            row[x] = {"pairs": int(m.sum()), "false_matches": int((m & (scores >= t)).sum())}
        bands.append(row)
    fit_scores = F.calibration_scores(fit["lfw"], norm.scorer(fit["lfw"].emb.vectors))
    return {
        "threshold": t,
        "bands": bands,
        "offset_vs_women_share": float(np.corrcoef(norm.offsets, share)[0, 1]),
        "top_pairs": {"fit": top_pairs(fit["lfw"], fit_scores, t), "held_out": top_pairs(p, scores, t)},
    }


def run() -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine_record(), "variants": {}}
    for seed in SEEDS:
        sp = split(seed)
        if seed == F.SEED:
            result["regions"] = regions(sp)
            save_result(RESULTS / f"{STEM}.json", result)
        cents: dict[int, Any] = {}
        result["variants"][str(seed)] = {}
        for name in VARIANTS:
            result["variants"][str(seed)][name] = variant(name, sp, cents)
            save_result(RESULTS / f"{STEM}.json", result)
    return result


def render(result: dict[str, Any]) -> str:
    r = result["regions"]
    lines = [
        "# Why LFW women's FMR stays above men's (bench/sex_gap.py)",
        "",
        f'Machine: {json.dumps(result["machine"])}. What it means: docs/fairness.md, "Why women\'s FMR stays higher".',
        "",
        f"## Where the false matches are (split seed 0, held-out LFW half, Similarity 80 at {r['threshold']:.4f})",
        "",
        "Regions by their held-out faces' share of women; a pair by the mean share of its two regions.",
        "",
        "| regions | count | women's faces | men's faces | women's pairs: FM / pairs (FMR) "
        "| men's pairs: FM / pairs (FMR) | regions where women's fit pairs count (≥ 20,000) |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in r["bands"]:
        f, m = b["female"], b["male"]
        lines.append(
            f"| {b['label']} | {b['regions']} | {b['women']} | {b['men']} "
            f"| {f['false_matches']} / {f['pairs']:,} ({f['false_matches'] / max(f['pairs'], 1):.1e}) "
            f"| {m['false_matches']} / {m['pairs']:,} ({m['false_matches'] / max(m['pairs'], 1):.1e}) "
            f"| {b['women_part_counted']} |"
        )
    lines += ["", f"Correlation of a region's offset with its share of women: {r['offset_vs_women_share']:.2f}.", ""]
    lines += ["Pairs of people with the most false matches at Similarity 80:", ""]
    for half, by_sex in r["top_pairs"].items():
        for x, v in by_sex.items():
            top = "; ".join(f"{who} {n}" for who, n in v["top"])
            lines.append(f"* {half} half, {x}: {v['false_matches']} of {v['pairs']:,} pairs; {top}")
    lines.append("")
    for seed, variants in result["variants"].items():
        one = {"machine": result["machine"], "split_seed": int(seed), "variants": variants}
        table = FV.render(one, f"Variants, split seed {seed}", "")
        lines += ["#" + table.split("\n", 1)[0], *table.split("\n")[1:]]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from its .json")
    args = parser.parse_args()
    FV.CHUNK = 1_000_000
    result = json.loads((RESULTS / f"{STEM}.json").read_text()) if args.render_only else run()
    (RESULTS / f"{STEM}.md").write_text(render(result))


if __name__ == "__main__":
    main()
