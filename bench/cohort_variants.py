"""AS-norm against a mixed real cohort and against a synthetic one, beside the shipped 1:1 default (issue 11).

    nice -n 5 .venv/bin/python bench/cohort_variants.py                 # split seed 0: cohort-variants.{json,md}
    nice -n 5 .venv/bin/python bench/cohort_variants.py --split-seed 1  # cohort-variants-split1.{json,md}
    nice -n 5 .venv/bin/python bench/cohort_variants.py --only real-k50 # rerun some, keep the rest

Same split, centroids, held-out measurement and table recipe as bench/fsn_variants.py (its
``split_data``, ``summary``, ``race_ratio_intervals`` and ``render``; ``fairnorm.evaluate``): every
method's table is fitted on the LFW fit half's same-sex impostor pairs of its own scores
(``real-k50``: within each of two folds of its people), and FMR is measured at its own Similarity 80 on the
evaluation halves only. Methods:

* ``shipped``: the default, cluster offsets (Fair Score Normalization), recomputed as the reference;
* ``real-k50`` (A): AS-norm (the formula of ``facetrust.normalise``) whose cohort is real faces of
  the LFW *and* UTKFace fit halves together: all of UTKFace's fit half and half of the LFW fit
  half's people; its table cross-fitted on LFW's two folds (``real_cohort`` says why). Not
  shippable (embeddings of identifiable people): the upper bound for the synthetic cohorts;
* ``synth-iso-k50``, ``synth-diag-k50``, ``synth-diag-k20`` (B): AS-norm against ``M`` synthetic
  embeddings drawn from a mixture fitted on the fit halves, one component per k-means cluster of
  the shipped recipe (the centroids ``fsn_fit``/``clusterfit`` ship). A component is
  ``unit(r_c · centroid_c + ε)``: ``r_c`` the mean cosine of its faces to the centroid, ``ε``
  Gaussian with the spread of its faces around ``r_c · centroid_c``, either isotropic (one variance
  per cluster) or diagonal in one shared PCA basis of the pooled within-cluster residuals (128
  variances per cluster, one 128 × 128 basis). Mixture weights: each dataset's share of faces in a
  cluster, the two datasets weighted equally (as the offsets are). Fitted on the faces k-means
  used (at most 5 per person); every cluster averages ≥ 50 people with none above 10 %, so the
  parameters are aggregates, nothing per face; rounded to 5 decimals, as the shipped centroids are.
  Sampled with a fixed seed (``COHORT_SEED``), ``M`` = ``--size`` (20,000);
* ``synth-diag-k50-m5000``: the same with ``M`` = 5,000;
* ``fsn+synth-diag-k50`` (C): both: a pair's score less the two faces' cluster offsets, z-normalised
  by each face's top-K scores against the synthetic cohort, each cohort score less that synthetic
  face's offset (so ``s' − μ'(a) = s − ½δ_b − mean top-K[s(a, y) − ½δ_y]``).

The ``check`` section compares score distributions: real impostor pairs (fit halves), synthetic to
synthetic, held-out faces to the synthetic and to the real cohort, and each held-out face's top-K
cohort mean against the real cohort and the synthetic one (their correlation: how much of the
per-face adaptation the synthetic cohort keeps), by dataset and for UTKFace children and adults.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fairnorm as FN
import fsn_fit as F
import fsn_variants as FV
from facetrust.fairness import clusterfit as CF
from facetrust.fairness.embedding import FACE
from facetrust.normalise import SELF_MATCH
from host import machine_record, save_result

RESULTS = Path(__file__).resolve().parent / "results"
SIZE = 20_000
COHORT_SEED = 0
CHUNK = 2048
ALL = (
    "shipped",
    "real-k50",
    "synth-iso-k50",
    "synth-diag-k50",
    "synth-diag-k20",
    "synth-diag-k50-m5000",
    "fsn+synth-diag-k50",
)


def unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    return out


class Mixture:
    """The synthetic-cohort model: per cluster a centroid, ``r``, a weight and a spread (aggregates only)."""

    def __init__(self, centroids: np.ndarray, vectors: np.ndarray, dataset: np.ndarray) -> None:
        label = np.argmax(vectors @ centroids.T, axis=1)
        k, d = centroids.shape
        self.centroids = centroids
        self.r = np.array([float(np.mean(vectors[label == c] @ centroids[c])) for c in range(k)])
        shares = [np.bincount(label[dataset == n], minlength=k) / max(1, np.sum(dataset == n)) for n in (0, 1)]
        self.weights = 0.5 * (shares[0] + shares[1])
        resid = vectors - self.r[label][:, None] * centroids[label]
        self.iso = np.array([float(np.mean(np.sum(resid[label == c] ** 2, axis=1))) / d for c in range(k)])
        _, self.basis = np.linalg.eigh(resid.T @ resid / len(resid))  # shared: pooled within-cluster spread
        proj = resid @ self.basis
        self.diag = np.stack([np.mean(proj[label == c] ** 2, axis=0) for c in range(k)])
        for name in ("r", "weights", "iso", "basis", "diag"):
            setattr(self, name, np.round(getattr(self, name), 5))
        self.counts = np.bincount(label, minlength=k)

    def sample(self, m: int, kind: str, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        comp = np.repeat(np.arange(len(self.centroids)), rng.multinomial(m, self.weights / self.weights.sum()))
        z = rng.standard_normal((m, self.centroids.shape[1]))
        if kind == "iso":
            eps = z * np.sqrt(self.iso[comp])[:, None]
        else:
            eps = (z * np.sqrt(self.diag[comp])) @ self.basis.T
        return unit(self.r[comp][:, None] * self.centroids[comp] + eps)

    def info(self) -> dict[str, Any]:
        return {
            "clusters": len(self.centroids),
            "faces_per_cluster": [int(self.counts.min()), int(self.counts.max())],
            "r": [float(self.r.min()), float(self.r.max())],
            "iso_sd": [float(np.sqrt(self.iso.min())), float(np.sqrt(self.iso.max()))],
            "numbers_shipped": {"iso": int(self.r.size * 3), "diag": int(self.r.size * 2 + self.diag.size)}
            | {"diag_basis": int(self.basis.size), "centroids": int(self.centroids.size)},
        }


def top_stats(
    vectors: np.ndarray, cohort: np.ndarray, k: int, shift: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(μ, σ) of each row's top-k cohort scores (less ``shift[j]`` per cohort face), the face itself left out."""
    mu, sd = np.empty(len(vectors), np.float32), np.empty(len(vectors), np.float32)
    for s in range(0, len(vectors), CHUNK):
        scores = vectors[s : s + CHUNK] @ cohort.T
        drop = scores >= SELF_MATCH
        if shift is not None:
            scores = scores - shift[None, :]
        scores[drop] = -9.0
        top = -np.partition(-scores, k - 1, axis=1)[:, :k]
        mu[s : s + CHUNK], sd[s : s + CHUNK] = top.mean(axis=1), np.maximum(top.std(axis=1), 1e-4)
    return mu, sd


class ZScorer:
    """A ``PairScorer`` of ``½[(s − ½δ_b − μa)/σa + (s − ½δ_a − μb)/σb]`` (δ = 0: plain AS-norm)."""

    def __init__(self, vectors: np.ndarray, mu: np.ndarray, sd: np.ndarray, delta: np.ndarray) -> None:
        self.vectors, self.mu, self.sd, self.half = vectors, mu, sd, 0.5 * delta

    def _z(self, raw: np.ndarray, a: Any, b: Any) -> np.ndarray:
        out: np.ndarray = 0.5 * (
            (raw - self.half[b] - self.mu[a]) / self.sd[a] + (raw - self.half[a] - self.mu[b]) / self.sd[b]
        )
        return out

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return self._z(self.vectors[rows] @ self.vectors[cols].T, rows[:, None], cols[None, :])

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._z(np.einsum("ij,ij->i", self.vectors[a], self.vectors[b]), a, b)


class Method:
    """AS-norm over ``cohort`` with top ``k``; ``offsets`` (with centroids) for the combined method."""

    def __init__(self, cohort: np.ndarray, k: int, centroids: np.ndarray, offsets: np.ndarray | None) -> None:
        self.cohort, self.k, self.centroids, self.offsets = cohort, k, centroids, offsets
        self.cohort_half = None if offsets is None else 0.5 * self.delta(cohort)

    def delta(self, vectors: np.ndarray) -> np.ndarray:
        if self.offsets is None:
            return np.zeros(len(vectors), np.float32)
        out: np.ndarray = self.offsets[np.argmax(vectors @ self.centroids.T, axis=1)]
        return out

    def scorer(self, vectors: np.ndarray) -> ZScorer:
        mu, sd = top_stats(vectors, self.cohort, self.k, self.cohort_half)
        return ZScorer(vectors, mu, sd, self.delta(vectors))


def real_cohort(fit: dict[str, F.Part], k: int, seed: int) -> tuple[Method, np.ndarray]:
    """(A) AS-norm over the UTKFace fit half and half of the LFW fit half's people (fold B), and its
    table's scores: cross-fitted, fold A's pairs against that cohort and fold B's against fold A's.

    A table fitted on pairs whose faces are in the cohort is optimistic: a's top-K then holds b
    itself, exactly for the look-alike pairs the table's tail is made of (a first run, cohort = all
    fit faces with only each face's own person left out, measured 2.4e-4 for held-out LFW men at
    Similarity 80). So the LFW fit half is split again by person, as bench/fairness.py keeps cohort
    and calibration parts apart, and pairs across the two folds are not used."""
    lfw = fit["lfw"]
    folds = [F.part(lfw.spec, lfw.emb, rows) for rows in F.halves(lfw.spec, seed)]
    methods = [
        Method(np.concatenate([p.emb.vectors[p.status == FACE] for p in (fold, fit["utk"])]), k, np.empty(0), None)
        for fold in folds
    ]
    scores = [F.calibration_scores(folds[i], methods[1 - i].scorer(folds[i].emb.vectors)) for i in (0, 1)]
    return methods[1], np.concatenate(scores)


def score_check(fit: dict[str, F.Part], held: dict[str, F.Part], real: np.ndarray, synth: np.ndarray) -> Any:
    """Score distributions (mean, sd, tail quantiles) and per-face top-50 means, real vs synthetic cohort."""
    rng = np.random.default_rng(1)
    qs = (0.5, 0.99, 0.999, 0.9999)

    def stats(x: np.ndarray) -> dict[str, Any]:
        return {"n": int(x.size), "mean": round(float(x.mean()), 4), "sd": round(float(x.std()), 4)} | {
            f"q{q}": round(float(np.quantile(x, q)), 4) for q in qs
        }

    out: dict[str, Any] = {}
    for n in ("lfw", "utk"):
        a, b = F.pair_rows(fit[n], F.CALIBRATION_ANALYSIS)
        pick = rng.choice(len(a), min(len(a), 1_000_000), replace=False)
        out[f"real impostor pairs, {n} fit half"] = stats(
            np.einsum("ij,ij->i", *(fit[n].emb.vectors[x[pick]] for x in (a, b)))
        )
    synth4k = synth[rng.choice(len(synth), 4000, replace=False)]  # random: the sample is in cluster order
    out["synthetic to synthetic"] = stats((synth4k[:2000] @ synth4k[2000:].T).ravel())
    faces = {n: held[n].emb.vectors[held[n].status == FACE] for n in held}
    for n, v in faces.items():
        some = v[rng.choice(len(v), 1000, replace=False)]  # random: files are in name (UTKFace: age) order
        out[f"{n} held-out to synthetic"] = stats((some @ synth4k.T).ravel())
        out[f"{n} held-out to real cohort"] = stats((some @ real[rng.choice(len(real), 4000, replace=False)].T).ravel())
    means: dict[str, Any] = {}
    for n, v in faces.items():
        mr, ms = top_stats(v, real, 50)[0], top_stats(v, synth, 50)[0]
        means[n] = {"real": round(float(mr.mean()), 4), "synthetic": round(float(ms.mean()), 4)}
        means[n]["correlation"] = round(float(np.corrcoef(mr, ms)[0, 1]), 3)
        if n == "utk":
            age = np.array([im.groups.get("age_band", "") for im in held[n].spec.images])[held[n].status == FACE]
            race = np.array([im.groups.get("race", "") for im in held[n].spec.images])[held[n].status == FACE]
            adult = ~np.isin(age, ["0-12", "13-17"])
            groups = [("children 0-12", age == "0-12"), ("adults", adult)]
            groups += [(f"adults {r}", adult & (race == r)) for r in sorted(set(race[adult]))]
            for label, sel in groups:
                means[f"utk {label}"] = {
                    "real": round(float(mr[sel].mean()), 4),
                    "synthetic": round(float(ms[sel].mean()), 4),
                }
    out["top-50 cohort mean per held-out face"] = means
    return out


def build(name: str, fit: dict[str, F.Part], sets: list[CF.PairSet], seed: int, size: int) -> tuple[Any, Any, Any]:
    """(scorer factory, the scores its table is fitted on, info) of one method."""
    vectors, people = F.cluster_input([fit["lfw"], fit["utk"]])
    centroids, rows = CF.fit_centroids(vectors, people, F.K, seed=seed)
    if name == "shipped":
        shipped, info = FV.variant("shipped", centroids, sets)
        return shipped.scorer, table_scores(fit, shipped.scorer), info
    k = int(name.split("-k", 1)[1].split("-")[0])
    size = int(name.split("-m", 1)[1]) if "-m" in name else size
    if name.startswith("real"):
        method, scores = real_cohort(fit, k, seed)
        return method.scorer, scores, {"cohort": len(method.cohort), "top_k": k, "table_pairs": len(scores)}
    dataset = np.array([0 if p.startswith(f"{fit['lfw'].spec.name}:") else 1 for p in people])[rows]
    mixture = Mixture(centroids, vectors[rows], dataset)
    kind = "iso" if "-iso-" in name else "diag"
    cohort = mixture.sample(size, kind, COHORT_SEED)
    offsets = FV.variant("shipped", centroids, sets)[0].mu if name.startswith("fsn+") else None
    method = Method(cohort, k, centroids, offsets)
    info = {"cohort": size, "cohort_seed": COHORT_SEED, "top_k": k, "spread": kind} | mixture.info()
    return method.scorer, table_scores(fit, method.scorer), info


def table_scores(fit: dict[str, F.Part], scorer_of: Any) -> np.ndarray:
    return F.calibration_scores(fit["lfw"], scorer_of(fit["lfw"].emb.vectors))


def tar_at_fmr(scorer_of: Any, lfw: F.Part, fmr: float = 1e-4) -> dict[str, float]:
    """LFW held-out TAR at the score where the held-out same-sex impostor pairs' FMR is ``fmr``: how well a
    method separates, apart from how well its table transfers (mated pairs: ≤ 20 images per person)."""
    scorer = scorer_of(lfw.emb.vectors)
    impostor = np.sort(F.calibration_scores(lfw, scorer))[::-1]
    t = float(impostor[int(fmr * len(impostor))])
    by_person: dict[str, list[int]] = {}
    for i in np.flatnonzero(lfw.status == FACE):
        by_person.setdefault(lfw.spec.images[i].identity or "", []).append(int(i))
    mated = np.array([(r[i], r[j]) for r in by_person.values() for i in range(min(20, len(r))) for j in range(i)])
    genuine = scorer.pairs(mated[:, 0], mated[:, 1])
    return {"fmr": fmr, "score": t, "tar": float(np.mean(genuine > t)), "mated_pairs": len(genuine)}


def run(name: str, fit: dict[str, F.Part], held: dict[str, F.Part], sets: list[CF.PairSet], args: Any) -> Any:
    return measure(name, *build(name, fit, sets, args.split_seed, args.size), held)


def measure(name: str, scorer_of: Any, scores: np.ndarray, info: Any, held: dict[str, F.Part]) -> Any:
    """A method's table fitted on ``scores``, then every column of the results on the held-out halves."""
    cal = CF.fit_mixture_calibration([scores], model=name, dataset="lfw fit half, normalised")
    measured = FN.evaluate(name, scorer_of, cal, held)
    measured["race_ratio_intervals"] = FV.race_ratio_intervals(scorer_of, measured["threshold"], held["utk"], measured)
    summary = FV.summary(measured) | {"lfw_tar_at_heldout_fmr": tar_at_fmr(scorer_of, held["lfw"])}
    return {"info": info, "threshold": measured["threshold"], "summary": summary}


def check(fit: dict[str, F.Part], held: dict[str, F.Part], sets: list[CF.PairSet], args: Any) -> Any:
    vectors, people = F.cluster_input([fit["lfw"], fit["utk"]])
    centroids, rows = CF.fit_centroids(vectors, people, F.K, seed=args.split_seed)
    dataset = np.array([0 if p.startswith(f"{fit['lfw'].spec.name}:") else 1 for p in people])[rows]
    mixture = Mixture(centroids, vectors[rows], dataset)
    real = real_cohort(fit, 50, args.split_seed)[0].cohort
    return {
        kind: score_check(fit, held, real, mixture.sample(args.size, kind, COHORT_SEED)) for kind in ("iso", "diag")
    }


def render_check(found: dict[str, Any]) -> list[str]:
    lines = ["", "Score distributions (synthetic cohort of each spread model against real scores):", ""]
    for kind, rows in found.items():
        lines += [
            f"Spread `{kind}`:",
            "",
            "| scores | n | mean | sd | q0.5 | q0.99 | q0.999 | q0.9999 |",
            "|" + "---|" * 8,
        ]
        for label, s in rows.items():
            if "mean" in s and "n" in s:
                cells = [s["n"], s["mean"], s["sd"], s["q0.5"], s["q0.99"], s["q0.999"], s["q0.9999"]]
                lines.append(f"| {label} | " + " | ".join(str(c) for c in cells) + " |")
        lines += ["", "Top-50 cohort mean per held-out face, real cohort vs synthetic (correlation across faces):", ""]
        for label, s in rows["top-50 cohort mean per held-out face"].items():
            lines.append(
                f"* {label}: real {s['real']}, synthetic {s['synthetic']}"
                + (f", correlation {s['correlation']}" if "correlation" in s else "")
            )
        lines.append("")
    return lines


def arguments(doc: str | None, choices: tuple[str, ...]) -> argparse.ArgumentParser:
    """The options every held-out variant script takes: --only, --render-only, --split-seed."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=choices, help="rerun these, keep the others' saved results")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from its .json")
    parser.add_argument("--split-seed", type=int, default=F.SEED, help="another split of the halves: a replication")
    return parser


def result_file(base: str, seed: int) -> Path:
    """``<base>.json`` for the split the default was fitted on, ``<base>-split<seed>.json`` for another."""
    return RESULTS / (f"{base}.json" if seed == F.SEED else f"{base}-split{seed}.json")


def new_result(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """A result to fill: the machine, the split seed and, with --only, what ``path`` saved before."""
    result: dict[str, Any] = {"machine": machine_record(), "split_seed": args.split_seed, "variants": {}}
    if args.only and path.exists():
        saved = json.loads(path.read_text())
        result |= {k: saved[k] for k in ("variants", "check") if k in saved}
    return result


def main() -> None:
    parser = arguments(__doc__, ALL)
    parser.add_argument("--size", type=int, default=SIZE, help="synthetic cohort size M")
    parser.add_argument("--no-check", action="store_true", help="skip the score-distribution check")
    args = parser.parse_args()
    path = result_file("cohort-variants", args.split_seed)
    if not args.render_only:
        fit, held, sets = FV.split_data(args.split_seed)
        result = new_result(path, args)
        result["synthetic_size"] = args.size
        if not args.no_check:
            result["check"] = check(fit, held, sets, args)
            save_result(path, result)
        for name in args.only or ALL:
            result["variants"][name] = run(name, fit, held, sets, args)
            save_result(path, result)
        result["variants"] = {n: result["variants"][n] for n in ALL if n in result["variants"]}
        save_result(path, result)
    result = json.loads(path.read_text())
    title = "AS-norm against a real and a synthetic cohort, beside the shipped default (bench/cohort_variants.py)"
    text = render_with_tar(result, title)
    path.with_suffix(".md").write_text("\n".join(text + render_check(result.get("check") or {})) + "\n")


def render_with_tar(result: dict[str, Any], title: str) -> list[str]:
    """``fsn_variants.render`` of ``result`` and the LFW TAR at the held-out FMR 1e-4 of each method."""
    footer = 'What it means: docs/fairness.md, "Tried for 1:1 and not shipped".'
    text = FV.render(result, title, footer).rstrip("\n").split("\n")
    text += ["", "LFW held-out TAR where the held-out same-sex impostor pairs' own FMR is 1e-4 (separation,"]
    text += ["apart from how each table transfers to held-out people):", ""]
    for name, v in result["variants"].items():
        t = v["summary"].get("lfw_tar_at_heldout_fmr")
        if t:
            text.append(f"* {name}: {100 * t['tar']:.2f} % ({t['mated_pairs']:,} mated pairs)")
    return text


if __name__ == "__main__":
    main()
