"""How often 1:1 comparisons are flagged unreliable, and what the flag buys, on held-out halves.

    nice -n 5 .venv/bin/python bench/compare_unreliable.py   # writes bench/results/compare-unreliable.{json,md}

The shipped cluster normaliser (the default engine's) marks clusters whose fit-half pairs still
match far more often than promised at Similarity 80 (bench/fsn_fit.py ``mark_unreliable``). A
comparison is flagged when either face's nearest centroid is marked. Measured on the
*evaluation* halves of bench/fsn_fit.py's split only (never the fit halves), per group:

* the share of faces flagged (faces of the group's analysis);
* the FMR at the normaliser's Similarity 80 of the same-group impostor pairs (the pairs the fit
  forms: LFW same sex; UTKFace adults by race, matched on sex and age band; UTKFace children
  0–12, matched on race and sex; UTKFace pairs at raw cosine ≥ 0.6 left out as presumed the
  same person), over all pairs and over the pairs where neither face is flagged;
* LFW: the share of mated pairs (≤ 20 images per person) flagged, and TAR at Similarity 80
  over all mated pairs and over the unflagged ones.

Intervals are 95 % Wilson intervals that treat pairs as independent; pairs share faces, so
they are too narrow.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fsn_fit as F
import lfw_data as L
from facetrust.clusternorm import ClusterNormaliser
from facetrust.config import Settings, default_cache_dir
from facetrust.engine import FaceEngine
from facetrust.fairness.embedding import FACE
from facetrust.fairness.runner import embed_spec
from host import machine_record, save_result
from lfw import mated_pairs, wilson

RESULTS = Path(__file__).resolve().parent / "results"
GROUPS = (("lfw", 0, ("female", "male")), ("utk", 0, None), ("utk", 2, ("0-12",)))  # dataset, analysis, groups


def rate(k: int, n: int) -> list[float]:
    lo, hi = wilson(k, n) if n else (0.0, 0.0)
    return [k / n if n else 0.0, lo, hi]


def group_rows(p: F.Part, analysis: int) -> dict[str, np.ndarray]:
    a = p.spec.analyses[analysis]
    kept = [all(r.groups.get(c) in allowed for c, allowed in a.where.items()) for r in p.spec.images]
    labels = np.array([r.groups.get(a.column, "") if k else "" for r, k in zip(p.spec.images, kept)])
    return {g: np.flatnonzero(labels == g) for g in np.unique(labels) if g}


def measure_group(
    p: F.Part, n: ClusterNormaliser, flagged: np.ndarray, pairs: tuple[np.ndarray, np.ndarray], rows: np.ndarray
) -> dict[str, Any]:
    assert n.calibration is not None
    t80 = n.calibration.score_for_similarity(80)
    a, b = pairs
    scores = n.scorer(p.emb.vectors).pairs(a, b)
    clean = ~(flagged[a] | flagged[b])
    faces = rows[p.status[rows] == FACE]
    hit = scores >= t80
    return {
        "faces": int(faces.size),
        "faces_flagged": float(flagged[faces].mean()) if faces.size else 0.0,
        "pairs": int(a.size),
        "pairs_flagged": float(1 - clean.mean()) if a.size else 0.0,
        "fmr_all": rate(int(hit.sum()), int(a.size)),
        "fmr_unflagged": rate(int((hit & clean).sum()), int(clean.sum())),
        "fmr_flagged": rate(int((hit & ~clean).sum()), int((~clean).sum())),
    }


def measure(held: dict[str, F.Part], n: ClusterNormaliser) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, analysis, wanted in GROUPS:
        p = held[name]
        flagged = n.unreliable_of(p.emb.vectors) & (p.status == FACE)
        a, b = F.pair_rows(p, analysis)
        for group, rows in group_rows(p, analysis).items():
            if wanted is not None and group not in wanted:
                continue
            inside = np.isin(a, rows)  # same-group pairs: both faces are in the group
            label = f"{name} {p.spec.analyses[analysis].column} {group}"
            out[label] = measure_group(p, n, flagged, (a[inside], b[inside]), rows)
    return out


def lfw_mated(lfw: F.Part, n: ClusterNormaliser) -> dict[str, Any]:
    assert n.calibration is not None
    ids = np.array([r.identity for r in lfw.spec.images])
    a, b = mated_pairs(ids, lfw.status == FACE, np.random.default_rng(0))
    flagged = n.unreliable_of(lfw.emb.vectors)
    either = flagged[a] | flagged[b]
    match = n.scorer(lfw.emb.vectors).pairs(a, b) >= n.calibration.score_for_similarity(80)
    return {
        "mated_pairs": int(a.size),
        "mated_flagged": float(either.mean()),
        "tar_all": float(match.mean()),
        "tar_unflagged": float(match[~either].mean()),
    }


def composition(held: dict[str, F.Part], n: ClusterNormaliser) -> dict[str, dict[str, int]]:
    """Per flagged cluster, its held-out faces by group (UTKFace: children 0–12, else race, 13+; LFW: all)."""
    out: dict[str, dict[str, int]] = {str(c): {} for c in n.unreliable}
    for name, p in held.items():
        rows = np.flatnonzero(p.status == FACE)
        nearest = n.nearest(p.emb.vectors[rows])
        for row, c in zip(rows, nearest.tolist()):
            if c in n.unreliable:
                g = p.spec.images[row].groups
                label = (
                    "lfw" if name == "lfw" else ("utk 0-12" if g.get("age_band") == "0-12" else "utk 13+ " + g["race"])
                )
                out[str(c)][label] = out[str(c)].get(label, 0) + 1
    return out


def fmt(r: list[float]) -> str:
    return f"{r[0]:.1e} ({r[1]:.1e}–{r[2]:.1e})"


def render(result: dict[str, Any]) -> str:
    m = result["lfw_mated"]
    lines = [
        "# 1:1 unreliable-estimate flags on held-out halves (bench/compare_unreliable.py)",
        "",
        f"Machine: {result['machine']}. Normaliser {result['score_id']}, unreliable clusters "
        f"{result['unreliable']} of {result['clusters']}; Similarity 80 at normalised {result['threshold']:.4f}.",
        "FMR at Similarity 80 (promise 1e-4) of same-group impostor pairs; 95 % Wilson intervals (pairs share faces:",
        "too narrow). UTKFace pairs at raw cosine ≥ 0.6 left out (presumed the same person).",
        "",
        "| group | faces | faces flagged | pairs | pairs flagged | FMR all pairs | FMR neither face flagged "
        "| FMR flagged pairs |",
        "|" + "---|" * 8,
    ]
    for g, r in result["groups"].items():
        lines.append(
            f"| {g} | {r['faces']:,} | {100 * r['faces_flagged']:.1f} % | {r['pairs']:,} "
            f"| {100 * r['pairs_flagged']:.1f} % | {fmt(r['fmr_all'])} | {fmt(r['fmr_unflagged'])} "
            f"| {fmt(r['fmr_flagged'])} |"
        )
    lines += [
        "",
        f"LFW mated pairs: {m['mated_pairs']:,}, {100 * m['mated_flagged']:.2f} % flagged; TAR at Similarity 80 "
        f"{100 * m['tar_all']:.2f} % over all, {100 * m['tar_unflagged']:.2f} % over the unflagged.",
        "",
        "Held-out faces nearest each flagged cluster: "
        + "; ".join(f"{c}: {dict(sorted(v.items()))}" for c, v in result["flagged_clusters"].items())
        + ".",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    # no options: --help says what the script does and writes, instead of running it
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    engine = FaceEngine.load(Settings.load().replace(calibration_file=None, score_normalisation=True))
    n = engine.normaliser
    if not isinstance(n, ClusterNormaliser) or n.calibration is None:
        raise SystemExit("the default engine has no calibrated cluster normaliser")
    started = time.perf_counter()
    specs = F.datasets(L.data_root())
    embs = {name: embed_spec(engine, s, cache_dir=default_cache_dir(), workers=1) for name, s in specs.items()}
    held = {name: parts[1] for name, parts in F.split_parts(specs, embs).items()}  # evaluation halves only
    out: dict[str, Any] = {
        "machine": machine_record(),
        "score_id": n.score_id,
        "clusters": len(n.centroids),
        "unreliable": list(n.unreliable),
        "threshold": n.calibration.score_for_similarity(80),
        "groups": measure(held, n),
        "lfw_mated": lfw_mated(held["lfw"], n),
        "flagged_clusters": composition(held, n),
    }
    out["seconds"] = round(time.perf_counter() - started, 1)
    save_result(RESULTS / "compare-unreliable.json", out)
    (RESULTS / "compare-unreliable.md").write_text(render(out))


if __name__ == "__main__":
    main()
