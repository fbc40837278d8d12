"""Label-free linear transforms of the embedding space before 1:1 scoring, beside the shipped default (issue 11).

    nice -n 5 .venv/bin/python bench/whiten_variants.py                 # split seed 0: whiten-variants.{json,md}
    nice -n 5 .venv/bin/python bench/whiten_variants.py --split-seed 1  # whiten-variants-split1.{json,md}
    nice -n 5 .venv/bin/python bench/whiten_variants.py --only centre   # rerun some, keep the rest

Same split, pairs, table recipe and held-out measurement as bench/fsn_variants.py and
bench/cohort_variants.py (``split_data``, ``variant("shipped")``, ``measure``, ``render_with_tar``).
Every face (fit and held-out alike) is mapped ``x → unit(W (x − μ))`` before the cosine; ``μ`` and
``W`` are aggregates of the fit halves (a mean vector and a 128 × 128 matrix over thousands of faces,
the privacy class of the shipped centroids), nothing per face:

* ``centre`` (A): ``μ`` the mean fit face, each dataset weighted equally and each person once in a
  dataset (a face weighs 1 / its person's faces; UTKFace's images count as people), ``W = I``;
* ``whiten`` (B): the same ``μ``; ``W = (S + λI)^(-1/2)``, ``S`` the total covariance with the same weights;
* ``wccn`` (C): the same ``μ``; ``W = (Sw + λI)^(-1/2)``, ``Sw`` the within-person covariance of the
  LFW fit half's people with ≥ 2 faces (each person weighted equally; UTKFace has no identities).

``λ = c · trace(M) / 128`` with ``c`` chosen on the fit halves only: each is split again by person
(UTKFace: image); the transform fitted on one fold is scored on the other, at the score where that
fold's LFW same-sex impostor pairs match at 1e-3; the chosen ``c`` has the smallest mean |log| of the
three spreads (LFW female/male, UTKFace adult race worst/best over groups with ≥ 1,000 pairs,
UTKFace children 0–12/adults) among those whose LFW TAR there is within 1 point of centring's.
Each transform is measured alone (``<name>``: cosine of the transformed faces, its own table) and
with the shipped recipe's cluster offsets refitted on the transformed faces (``<name>+fsn``:
k-means centroids of transformed faces, offsets, then the table), as ``shipped`` is on raw faces.
``plda`` (D): the two-covariance model's log-likelihood ratio as the score (``Plda``), WCCN's ``λ``,
alone only (the offsets' histograms assume a cosine in [−1, 1]).
Results: bench/results/whiten-variants{,-split1}.{json,md}; what they mean: docs/fairness.md.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cohort_variants as CV
import fsn_fit as F
import fsn_variants as FV
from facetrust.fairness import clusterfit as CF
from facetrust.fairness.embedding import FACE
from facetrust.fairness.pairs import CosineScorer
from host import save_result

SHRINK = (0.03, 0.1, 0.3, 1.0)  # c in λ = c · mean eigenvalue, chosen on the fit halves
INNER_FMR = 1e-3
INNER_MIN_PAIRS = 1_000
TRANSFORMS = ("centre", "whiten", "wccn")
CHOSEN: dict[tuple[str, int], tuple[float, dict[str, Any]]] = {}  # (transform, seed) → c and its record
ALL = ("shipped", *(f"{t}{s}" for t in TRANSFORMS for s in ("", "+fsn")), "plda")


class Transform:
    """``x → unit(W (x − μ))``: the aggregates that would ship (``μ``: 128 numbers, ``W``: 128 × 128)."""

    def __init__(self, mu: np.ndarray, w: np.ndarray) -> None:
        self.mu, self.w = np.round(mu, 5), np.round(w, 5)

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        return CV.unit((vectors - self.mu) @ self.w)


def face_weights(p: F.Part) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a half's faces and their weights: each person once, summing to 1."""
    rows = np.flatnonzero(p.status == FACE)
    who = [p.spec.images[i].identity or f"\0{i}" for i in rows]
    _, inverse, counts = np.unique(who, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    return rows, w / w.sum()


def moments(parts: list[F.Part]) -> tuple[np.ndarray, np.ndarray]:
    """(μ, S): the mean and total covariance of the faces, datasets weighted equally, people once each."""
    weighted = [(p.emb.vectors[r].astype(np.float64), w / len(parts)) for p in parts for r, w in [face_weights(p)]]
    mu = sum(w @ v for v, w in weighted)
    s = sum((v - mu).T @ ((v - mu) * w[:, None]) for v, w in weighted)
    return np.asarray(mu), np.asarray(s)


def within(lfw: F.Part) -> np.ndarray:
    """Sw: the mean over LFW people with ≥ 2 faces of their faces' covariance about their own mean."""
    rows = np.flatnonzero(lfw.status == FACE)
    by_person: dict[str, list[int]] = {}
    for i in rows:
        by_person.setdefault(lfw.spec.images[i].identity or "", []).append(int(i))
    covs = []
    for members in by_person.values():
        if len(members) >= 2:
            v = lfw.emb.vectors[members].astype(np.float64)
            r = v - v.mean(axis=0)
            covs.append(r.T @ r / (len(members) - 1))
    return np.asarray(np.mean(covs, axis=0))


def inverse_sqrt(m: np.ndarray, c: float) -> np.ndarray:
    values, basis = np.linalg.eigh(m)
    lam = c * float(np.trace(m)) / len(m)
    return np.asarray((basis / np.sqrt(np.maximum(values, 0.0) + lam)) @ basis.T)


def fit_transform(kind: str, fit: dict[str, F.Part], c: float) -> Transform:
    mu, total = moments([fit["lfw"], fit["utk"]])
    if kind == "centre":
        return Transform(mu, np.eye(len(mu)))
    return Transform(mu, inverse_sqrt(total if kind == "whiten" else within(fit["lfw"]), c))


class Plda:
    """(D) The two-covariance model's log-likelihood ratio, same person against different people:
    ``s(x, y) = x̃ᵀQx̃ + ỹᵀQỹ + x̃ᵀPy``, ``x̃ = x − μ``, from the between-person covariance ``B = S − Sw``
    (negative eigenvalues cut to 0) and the within-person ``Sw + λI`` (``λ`` as WCCN's)."""

    def __init__(self, fit: dict[str, F.Part], c: float) -> None:
        self.mu, total = moments([fit["lfw"], fit["utk"]])
        sw = within(fit["lfw"])
        values, basis = np.linalg.eigh(total - sw)
        b = (basis * np.maximum(values, 0.0)) @ basis.T
        w = sw + c * float(np.trace(sw)) / len(sw) * np.eye(len(sw))
        t, d = b + w, len(b)
        joint = np.linalg.inv(np.block([[t, b], [b, t]]))
        self.q = np.round(-0.5 * (joint[:d, :d] - np.linalg.inv(t)), 5)
        self.p = np.round(-joint[:d, d:], 5)

    def scorer(self, vectors: np.ndarray) -> Any:
        x = vectors - self.mu
        q, y = np.einsum("ij,jk,ik->i", x, self.q, x), x @ self.p

        class Scorer:
            def block(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
                out: np.ndarray = y[r] @ x[c].T + q[r][:, None] + q[c][None, :]
                return out

            def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
                out: np.ndarray = np.einsum("ij,ij->i", y[a], x[b]) + q[a] + q[b]
                return out

        return Scorer()


def _fmr_by(scores: np.ndarray, label: np.ndarray, t: float) -> dict[str, tuple[float, int]]:
    return {str(g): (float(np.mean(scores[label == g] >= t)), int(np.sum(label == g))) for g in np.unique(label)}


def spreads(tr: Transform, fold: dict[str, F.Part]) -> dict[str, float]:
    """On one fit fold: LFW TAR and the three spreads at the score of LFW same-sex FMR ``INNER_FMR``."""

    def scorer_of(v: np.ndarray) -> CosineScorer:
        return CosineScorer(tr(v))

    tar = CV.tar_at_fmr(scorer_of, fold["lfw"], INNER_FMR)
    t = tar["score"]
    out = {"tar": tar["tar"]}
    for key, part, analysis, attr in (
        ("sex", "lfw", 0, "sex"),
        ("race", "utk", 0, "race"),
        ("age", "utk", 2, "age_band"),
    ):
        p = fold[part]
        a, b = F.pair_rows(p, analysis)
        label = np.array([p.spec.images[i].groups.get(attr, "") for i in a])
        found = _fmr_by(scorer_of(p.emb.vectors).pairs(a, b), label, t)
        if key == "age":
            adults = float(np.mean(scorer_of(p.emb.vectors).pairs(*F.pair_rows(p, 0)) >= t))
            out[key] = found["0-12"][0] / max(adults, 1e-9)
        else:
            big = [f for f, n in found.values() if n >= INNER_MIN_PAIRS]
            out[key] = max(big) / max(min(big), 1e-9)
    return out


def choose(kind: str, fit: dict[str, F.Part], seed: int) -> tuple[float, dict[str, Any]]:
    """``c`` for ``kind``, chosen on a split of the fit halves (never on the evaluation halves)."""
    folds = {n: [F.part(p.spec, p.emb, rows) for rows in F.halves(p.spec, 100 + seed)] for n, p in fit.items()}
    a, b = ({n: f[i] for n, f in folds.items()} for i in (0, 1))
    base = spreads(fit_transform("centre", a, 0.0), b)
    tried = {}
    for c in SHRINK:
        s = spreads(fit_transform(kind, a, c), b)
        s["score"] = float(np.mean([abs(np.log(max(s[k], 1e-9))) for k in ("sex", "race", "age")]))
        tried[str(c)] = {k: round(v, 4) for k, v in s.items()}
    ok = [c for c in SHRINK if tried[str(c)]["tar"] >= base["tar"] - 0.01] or list(SHRINK)
    best = min(ok, key=lambda c: tried[str(c)]["score"])
    return best, {"c": best, "inner_fold": tried, "inner_centre": {k: round(v, 4) for k, v in base.items()}}


def build(name: str, fit: dict[str, F.Part], sets: list[CF.PairSet], seed: int) -> tuple[Any, np.ndarray, Any]:
    """(scorer factory, the scores its table is fitted on, info) of one variant."""
    if name == "plda":  # λ: WCCN's choice (the within-person term is the same matrix)
        if ("wccn", seed) not in CHOSEN:
            CHOSEN["wccn", seed] = choose("wccn", fit, seed)
        plda = Plda(fit, CHOSEN["wccn", seed][0])
        return plda.scorer, CV.table_scores(fit, plda.scorer), {"c": CHOSEN["wccn", seed][0], "from": "wccn"}
    tr, shifted, info = prepare(name, fit, sets, seed)
    if shifted is not None:
        offsets = shifted

        def scorer_of(v: np.ndarray) -> Any:
            return offsets.scorer(tr(v))
    else:

        def scorer_of(v: np.ndarray) -> Any:
            return CosineScorer(tr(v))

    return scorer_of, CV.table_scores(fit, scorer_of), info


def prepare(
    name: str, fit: dict[str, F.Part], sets: list[CF.PairSet], seed: int
) -> tuple[Transform, FV.Shifted | None, dict[str, Any]]:
    """(transform, cluster offsets on transformed faces or None, info) of a variant other than ``plda``."""
    kind, offsets = name.split("+")[0], name.endswith("+fsn")
    vectors, people = F.cluster_input([fit["lfw"], fit["utk"]])
    if kind == "shipped":
        tr, info = Transform(np.zeros(vectors.shape[1]), np.eye(vectors.shape[1])), {}
    else:
        if kind != "centre" and (kind, seed) not in CHOSEN:
            CHOSEN[kind, seed] = choose(kind, fit, seed)
        c, info = CHOSEN.get((kind, seed), (0.0, {}))
        tr, info = fit_transform(kind, fit, c), dict(info)
    if not (offsets or kind == "shipped"):
        return tr, None, info
    centroids = CF.fit_centroids(tr(vectors), people, F.K, seed=seed)[0]
    moved = [dataclasses.replace(ps, vectors=tr(ps.vectors)) for ps in sets]
    shifted, more = FV.variant("shipped", centroids, moved)
    return tr, shifted, info | more


def main() -> None:
    args = CV.arguments(__doc__, ALL).parse_args()
    path = CV.result_file("whiten-variants", args.split_seed)
    if not args.render_only:
        fit, held, sets = FV.split_data(args.split_seed)
        result = CV.new_result(path, args)
        for name in args.only or ALL:
            result["variants"][name] = CV.measure(name, *build(name, fit, sets, args.split_seed), held)
            save_result(path, result)
        result["variants"] = {n: result["variants"][n] for n in ALL if n in result["variants"]}
        save_result(path, result)
    result = json.loads(path.read_text())
    title = (
        "Linear transforms of the embedding space before scoring, beside the shipped default (bench/whiten_variants.py)"
    )
    path.with_suffix(".md").write_text("\n".join(CV.render_with_tar(result, title)) + "\n")


if __name__ == "__main__":
    main()
