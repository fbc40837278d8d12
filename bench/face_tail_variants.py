"""A per-face 1:1 offset predicted from the embedding, on top of the shipped cluster offsets (issue 11).

    nice -n 5 .venv/bin/python bench/face_tail_variants.py                # face-tail-variants.{json,md}
    nice -n 5 .venv/bin/python bench/face_tail_variants.py --profile accurate  # face-tail-variants-accurate.*
    nice -n 5 .venv/bin/python bench/face_tail_variants.py --render-only [--profile accurate]

The shipped normaliser gives every face in a k-means region the same offset. Here each fit face's
own impostor tail is the target instead: its score at the top ``FACE_FMR`` of the normalised scores
of the pairs it takes part in (the shipped offsets' pairs, ``fsn_fit.offset_parts``: LFW same-sex,
at most 20 photos a person; UTKFace same cell, by age band), for faces in at least ``MIN_PAIRS``
pairs. Each part's median is subtracted (so the regression learns which faces of a part are
crowded, not how the parts differ: LFW women's and men's medians are taken out alike), the parts
weighted equally. A ridge regression (penalty ``lam``) of that target on the embedding gives a
direction ``β``; a face's extra shift is ``α · (clip(x·β + b) − centre)``, clipped to the 0.5–99.5 %
range of the fit faces' predictions and centred on their weighted mean, added to its cluster offset
in ``s' = s − ½(δ_a + δ_b)``. Each variant's table is refitted on the LFW fit half (women and men
weighted equally), as the shipped recipe's is.

* **five splits** (``fsn_fit.split_parts`` seeds 0–4): the shipped recipe refitted on each split's fit
  halves against the variants, measured on the held-out halves (``fairnorm.evaluate``);
* **children left out** (seed 0; the default profile only): the recipe and the regression fitted
  without UTKFace's children's images, as bench/leave_out.py does, to see whether a direction
  learned on adults and teenagers carries to children's faces it never saw.

``--profile accurate`` measures the same on the fused templates, against that profile's recipe.

What would ship is one vector of the embedding's size, an intercept and two clip bounds: aggregates
over thousands of faces. No label is read at run time; labels form the pairs and parts at fit time,
as the shipped recipe's do.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fsn_fit as F
import fsn_variants as FV
import leave_out as LO
import typicality_variants as TV
from facetrust.fairness.clusterfit import PairSet, fit_mixture_calibration
from facetrust.fairness.datasets import ADULT_BANDS
from facetrust.fairness.embedding import NO_FACE
from fairnorm import evaluate
from host import machine_record, save_result

RESULTS = Path(__file__).resolve().parent / "results"
STEM = "face-tail-variants"
SEEDS = (0, 1, 2, 3, 4)
FACE_FMR = 0.05  # a face's tail read at its top 5 %: UTKFace cells give a face 60–140 partners
MIN_PAIRS = 20
VARIANTS = ((0.1, 1.0), (0.1, 2.0), (0.03, 1.0), (0.03, 2.0))  # (lam, alpha)
CHUNK = 2_000_000


def face_tails(ps: PairSet, shift: Any) -> tuple[np.ndarray, np.ndarray]:
    """(face rows, each face's normalised score at its top ``FACE_FMR``) for faces in ≥ ``MIN_PAIRS`` pairs."""
    scorer = TV.Typical(shift).scorer(ps.vectors)
    s = np.concatenate([scorer.pairs(ps.a[i : i + CHUNK], ps.b[i : i + CHUNK]) for i in range(0, len(ps.a), CHUNK)])
    face, score = np.concatenate([ps.a, ps.b]), np.concatenate([s, s])
    order = np.lexsort((-score, face))
    face, score = face[order], score[order]
    rows, start, n = np.unique(face, return_index=True, return_counts=True)
    q = score[start + np.ceil(FACE_FMR * n).astype(np.int64) - 1]
    keep = n >= MIN_PAIRS
    return rows[keep], q[keep]


def ridge(x: np.ndarray, y: np.ndarray, w: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """Weighted ridge regression (intercept not penalised): (β, b)."""
    mx, my = w @ x / w.sum(), float(w @ y / w.sum())
    xc = x - mx
    beta = np.linalg.solve((xc * w[:, None]).T @ xc + lam * np.eye(x.shape[1]), (xc * w[:, None]).T @ (y - my))
    return beta, my - float(mx @ beta)


def targets(sets: list[PairSet], shift: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    xs, ys, ws, info = [], [], [], {}
    for ps in sets:
        rows, q = face_tails(ps, shift)
        if not len(q):
            continue
        info[ps.name] = {"faces": len(q), "median": round(float(np.median(q)), 4), "sd": round(float(q.std()), 4)}
        xs.append(ps.vectors[rows])
        ys.append(q - np.median(q))
        ws.append(np.full(len(q), 1.0 / len(q)))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ws), info


def measure(name: str, shift: Any, pairs: dict[str, F.Part], held: dict[str, F.Part]) -> dict[str, Any]:
    lfw = pairs["lfw"]
    norm = TV.Typical(shift)
    scores = F.calibration_scores(lfw, norm.scorer(lfw.emb.vectors))
    cal = fit_mixture_calibration(F.split_by_sex(scores, lfw), model=name, dataset="lfw fit half, normalised")
    r = evaluate(name, norm.scorer, cal, held)
    return {"threshold": r["threshold"], "summary": LO.summary(r)}


def with_extra(base: Any, beta: np.ndarray, b: float, bounds: tuple[float, float], centre: float, alpha: float) -> Any:
    """``base``'s per-face shift plus ``alpha · (clip(x·β + b) − centre)``."""

    def shift(v: np.ndarray) -> np.ndarray:
        out: np.ndarray = base(v) + alpha * (np.clip(v @ beta + b, *bounds) - centre)
        return out

    return shift


def run_split(model: str, fit: dict[str, F.Part], held: dict[str, F.Part]) -> dict[str, Any]:
    """The shipped recipe and every variant, fitted on ``fit`` and measured on ``held``."""
    norm = F.fit_normaliser(model, fit)
    pairs = F.pair_data(fit, F.Recipe())
    x, y, w, info = targets(F.offset_parts(pairs), norm.shift)
    out: dict[str, Any] = {"targets": info, "variants": {"shipped recipe": measure("shipped", norm.shift, pairs, held)}}
    utk = held["utk"]
    band = np.array([img.groups.get("age_band", "") for img in utk.spec.images])
    face = utk.status != NO_FACE
    for lam, alpha in VARIANTS:
        beta, b = ridge(x, y, w, lam)
        pred = x @ beta + b
        centre = float(w @ pred / w.sum())
        lo, hi = (float(z) for z in np.quantile(pred, [0.005, 0.995]))
        shift = with_extra(norm.shift, beta, b, (lo, hi), centre, alpha)
        extra = np.clip(utk.emb.vectors @ beta + b, lo, hi) - centre
        entry = measure(f"lam={lam} alpha={alpha}", shift, pairs, held)
        entry["fit"] = {
            "r2": round(float(1 - w @ (y - pred) ** 2 / (w @ (y - w @ y / w.sum()) ** 2)), 3),
            "range": [round(lo - centre, 4), round(hi - centre, 4)],
            "held_out_children_mean": round(float(extra[face & (band == "0-12")].mean()), 4),
            "held_out_adults_mean": round(float(extra[face & np.isin(band, list(ADULT_BANDS))].mean()), 4),
        }
        out["variants"][f"lam={lam} alpha={alpha}"] = entry
    return out


def run(profile: str) -> dict[str, Any]:
    FV.PROFILE = profile
    specs, embs = FV.load_data()
    model = embs["lfw"].model
    result: dict[str, Any] = {"machine": machine_record(), "model": model, "splits": {}}
    for seed in SEEDS:
        parts = F.split_parts(specs, embs, seed)
        fit, held = {n: p[0] for n, p in parts.items()}, {n: p[1] for n, p in parts.items()}
        result["splits"][str(seed)] = run_split(model, fit, held)
        save_result(RESULTS / f"{stem(profile)}.json", result)
        if seed == F.SEED and profile == "default":
            utk = fit["utk"]
            children = np.array([img.groups.get("age_band") == "0-12" for img in utk.spec.images])
            result["without_children"] = run_split(model, {**fit, "utk": LO.without(utk, children)}, held)
            save_result(RESULTS / f"{stem(profile)}.json", result)
    return result


def render(result: dict[str, Any]) -> str:
    lines = [
        "# A per-face 1:1 offset from the embedding, not shipped (bench/face_tail_variants.py)",
        "",
        f"Machine: {json.dumps(result['machine'])}. Model {result['model']}. Each split's variants fitted on its "
        "fit halves and measured on its held-out halves, at each one's own Similarity 80 (promise 1e-4); "
        "95 % bootstrap intervals. `lam`: ridge penalty; `alpha`: how much of the predicted shift is applied.",
        "",
    ]
    blocks = [(f"Split seed {s}", v) for s, v in result["splits"].items()]
    if "without_children" in result:
        blocks.insert(
            1, ("Split seed 0, fitted without UTKFace's children (bench/leave_out.py)", result["without_children"])
        )
    for title, split in blocks:
        lines += [
            f"## {title}",
            "",
            f"| variant | R² | held-out children / adults, mean extra shift | {LO.SUMMARY_COLUMNS} |",
        ]
        lines.append("|" + "---|" * 14)
        for name, v in split["variants"].items():
            fit = v.get("fit")
            how = (
                f"{fit['r2']:.3f} | {fit['held_out_children_mean']:+.4f} / {fit['held_out_adults_mean']:+.4f}"
                if fit
                else "– | –"
            )
            lines.append(f"| {name} | {how} | {LO.summary_cells(v['summary'])} |")
        lines.append("")
    return "\n".join(lines)


def stem(profile: str) -> str:
    return STEM if profile == "default" else f"{STEM}-{profile}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from its .json")
    parser.add_argument("--profile", choices=("default", "accurate"), default="default", help="the embeddings")
    args = parser.parse_args()
    if not args.render_only:
        run(args.profile)
    result = json.loads((RESULTS / f"{stem(args.profile)}.json").read_text())
    (RESULTS / f"{stem(args.profile)}.md").write_text(render(result))


if __name__ == "__main__":
    main()
