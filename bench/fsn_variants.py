"""Variants of the shipped cluster normalisation that were tried for issue 11 and not shipped.

    nice -n 5 .venv/bin/python bench/fsn_variants.py    # writes bench/results/fsn-variants.{json,md}

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
  table's score grid holds it.

Each variant gets its own table on the LFW fit half's same-sex pairs, as the default does.
"""

from __future__ import annotations

import json
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
from facetrust.fairness.runner import embed_spec
from host import machine_record, save_result

RESULTS = Path(__file__).resolve().parent / "results"
FMR = 1e-3
MIN_TAIL = 20
CHUNK = 4_000_000


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
    centroids: np.ndarray, sets: list[CF.PairSet], shifts: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(sets, k, grid) histograms of shifted pair scores, a pair counted once for each of its clusters,
    and (sets, grid) over all pairs, each once (``clusterfit.cluster_offsets``'s)."""
    k, out, overall = len(centroids), [], []
    for ps, sh in zip(sets, shifts):
        cluster = (ps.vectors @ centroids.T).argmax(axis=1)
        counts, every = np.zeros(k * CF.GRID), np.zeros(CF.GRID)
        for s in range(0, len(ps.a), CHUNK):
            a, b = ps.a[s : s + CHUNK], ps.b[s : s + CHUNK]
            pos = CF._bins(np.einsum("ij,ij->i", ps.vectors[a], ps.vectors[b]) - 0.5 * (sh[a] + sh[b]))
            ca, cb = cluster[a], cluster[b]
            counts += np.bincount(ca * CF.GRID + pos, minlength=k * CF.GRID)
            counts += np.bincount((cb * CF.GRID + pos)[cb != ca], minlength=k * CF.GRID)
            every += np.bincount(pos, minlength=CF.GRID)
        out.append(counts.reshape(k, CF.GRID))
        overall.append(every)
    return np.stack(out), np.stack(overall)


def offsets(hists: tuple[np.ndarray, np.ndarray], hottest: bool) -> np.ndarray:
    """Each cluster's threshold at FMR less the overall one (datasets weighted equally)."""
    counts, overall = hists
    base = CF._threshold(CF._tail(overall).mean(axis=0), FMR)
    usable = counts.sum(axis=2) * FMR >= MIN_TAIL
    tails = CF._tail(counts)
    out = np.zeros(counts.shape[1])
    for c in range(counts.shape[1]):
        sets = np.flatnonzero(usable[:, c])
        if not len(sets):
            continue
        if hottest:
            out[c] = max(CF._threshold(tails[j, c], FMR) for j in sets) - base
        else:
            out[c] = CF._threshold(tails[sets, c].mean(axis=0), FMR) - base
    return out


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


def variant(name: str, centroids: np.ndarray, sets: list[CF.PairSet]) -> tuple[Shifted, dict[str, Any]]:
    zero = [np.zeros(len(ps.vectors)) for ps in sets]
    if name == "znorm":
        mu, sd = moments(histograms(centroids, sets, zero)[0])
        return Shifted(centroids, mu, 0.0, sd), {}
    tau = 0.02 if name == "soft" else 0.0
    off = offsets(histograms(centroids, sets, zero), hottest=name == "max")
    info: dict[str, Any] = {}
    if name == "iterated":
        info["largest_change_per_round"] = [float(np.abs(off).max())]
        for _ in range(2):
            shifts = [weights(ps.vectors, centroids, 0.0) @ off for ps in sets]
            step = offsets(histograms(centroids, sets, shifts), hottest=False)
            off = off + step
            info["largest_change_per_round"].append(float(np.abs(step).max()))
    return Shifted(centroids, off, tau), info


def summary(r: dict[str, Any]) -> dict[str, Any]:
    sex, ua, un = r["lfw_sex"], r["utk_all"], r["utk_without_same_person"]
    return {
        "lfw_female": sex["groups"]["female"]["fmr"],
        "lfw_male": sex["groups"]["male"]["fmr"],
        "lfw_ratio": sex["ratio"],
        "lfw_tar": sex["tar"],
        "utk_adults": ua["adults"],
        "race_ratio_all": FN.worst_best(ua["race"], 2000),
        "race_ratio_without_same_person": FN.worst_best(un["race"], 2000),
        "children": ua["age"]["0-12"]["fmr"],
        "children_vs_adults": ua["children_vs_adults"],
        "children_vs_adults_without_same_person": un["children_vs_adults"],
    }


def render(result: dict[str, Any]) -> str:
    def x(v: float | None) -> str:
        return "–" if v is None else f"{v:.2f}×"

    lines = [
        "# Cluster-normalisation variants not shipped (bench/fsn_variants.py)",
        "",
        f"Machine: {json.dumps(result['machine'])}. Held-out halves as bench/fairnorm.py; FMR at each variant's "
        "own Similarity 80 (promise 1e-4). Race ratio over groups with ≥ 2,000 pairs.",
        "",
        "| variant | LFW female / male | LFW f/m | LFW TAR | UTK adults | race worst/best (all; w/o ≥0.6) "
        "| children 0–12 | children/adults (all; w/o ≥0.6) | notes |",
        "|" + "---|" * 9,
    ]
    for name, v in result["variants"].items():
        s = v["summary"]
        lines.append(
            f"| {name} | {s['lfw_female'][0]:.1e} / {s['lfw_male'][0]:.1e} | {x(s['lfw_ratio'])} "
            f"| {100 * s['lfw_tar']:.2f} % | {s['utk_adults'][0]:.1e} | {x(s['race_ratio_all'])}; "
            f"{x(s['race_ratio_without_same_person'])} | {s['children'][0]:.1e} | {x(s['children_vs_adults'])}; "
            f"{x(s['children_vs_adults_without_same_person'])} | {json.dumps(v['info']) if v['info'] else ''} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    engine = FaceEngine.load(Settings.load().replace(calibration_file=None))
    specs = F.datasets(L.data_root())
    embs = {n: embed_spec(engine, s, cache_dir=default_cache_dir(), workers=1) for n, s in specs.items()}
    parts = F.split_parts(specs, embs)
    fit, held = {n: p[0] for n, p in parts.items()}, {n: p[1] for n, p in parts.items()}
    vectors, people = F.cluster_input([fit["lfw"], fit["utk"]])
    centroids, _ = CF.fit_centroids(vectors, people, F.K, seed=F.SEED)
    sets = [
        CF.PairSet("lfw", fit["lfw"].emb.vectors, *F.pair_rows(fit["lfw"], F.CALIBRATION_ANALYSIS)),
        CF.PairSet("utk", fit["utk"].emb.vectors, *F.pair_rows(fit["utk"], F.UTK_OFFSET_ANALYSIS)),
    ]
    result: dict[str, Any] = {"machine": machine_record(), "variants": {}}
    for name in ("shipped", "soft", "iterated", "max", "znorm"):
        norm, info = variant(name, centroids, sets)
        scored = [F.calibration_scores(fit["lfw"], norm.scorer(fit["lfw"].emb.vectors))]
        cal = CF.fit_mixture_calibration(scored, model="variant", dataset="lfw fit half, normalised")
        measured = FN.evaluate(name, norm.scorer, cal, held)
        result["variants"][name] = {"info": info, "threshold": measured["threshold"], "summary": summary(measured)}
    save_result(RESULTS / "fsn-variants.json", result)
    (RESULTS / "fsn-variants.md").write_text(render(result))


if __name__ == "__main__":
    main()
