"""LFW accuracy of the default engine: View-2 10-fold accuracy, TAR at fixed FMR, failures to
detect, and per-sex FMR/FNMR at the default threshold.

    .venv/bin/python bench/lfw.py      # writes bench/results/lfw.json and bench/results/lfw.md

Data: ../shared/data/lfw (or $FACETRUST_DATA/lfw): the grayscale LFW copy, the standard
pairs.txt and per-image sex labels. Embeddings are cached outside the repository.

* Accuracy: for each of the 10 folds, the cosine threshold that maximises accuracy on the
  other nine folds is applied to it (standard unrestricted View-2 protocol). A pair with an
  image in which no face is found (detector score below the engine's default threshold)
  counts as a non-match.
* TAR at FMR 1e-3 / 1e-4: mated pairs are every pair of images of one person (at most 20
  images a person, seeded sample, so a few people do not dominate); the thresholds come from
  1,000,000 seeded random pairs of images of different people, and separately from the
  same-sex impostor pairs only (harder: mixed-sex pairs almost never match).
* Per sex at the default threshold (Similarity 80): FMR over all same-sex impostor pairs,
  FNMR over the mated pairs, by the sex label of the images.

    .venv/bin/python bench/lfw.py --profiles   # bench/results/lfw-profiles.{json,md}

``--profiles``: the default profile and the 'accurate' one (SFace fused with dlib) on the same
images: the View-2 folds that bench/accurate.py did not fit on, from the embeddings that
bench/fused_data.py caches (accuracy on each such fold at the threshold best on the fit
folds' pairs, TAR at FMR with same-sex impostors, FMR/TAR and per-sex FMR at Similarity 80 of
each profile's shipped raw table; both tables are fitted on all of LFW, so those are not held out).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_data as L
from calibrate import impostor_scores
from facetrust.calibration import DEFAULT_THRESHOLD, default_calibration
from facetrust.clusternorm import shipped_normaliser
from facetrust.config import Settings
from facetrust.models.catalog import CATALOG
from host import cpu_model

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, object]:
    cpu = cpu_model()
    import os

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "date": dt.date.today().isoformat(),
    }


def ten_fold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> tuple[float, float]:
    accs = []
    candidates = np.unique(scores)
    for k in range(10):
        train, test = folds != k, folds == k
        s, y = scores[train], same[train]
        best = max(candidates, key=lambda t: float(((s >= t) == y).mean()))
        accs.append(float(((scores[test] >= best) == same[test]).mean()))
    return float(np.mean(accs)) * 100, float(np.std(accs)) * 100


def tar_at(mated: np.ndarray, impostor: np.ndarray, fmr: float) -> tuple[float, float]:
    threshold = float(np.quantile(impostor, 1.0 - fmr, method="higher"))
    return float((mated > threshold).mean()) * 100, threshold


def mated_pairs(
    ids: np.ndarray, ok: np.ndarray, rng: np.random.Generator, cap: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    a, b = [], []
    for person in np.unique(ids[ok]):
        idx = np.flatnonzero((ids == person) & ok)
        if len(idx) > cap:
            idx = np.sort(rng.choice(idx, cap, replace=False))
        for i in range(len(idx)):
            for j in range(i + 1, len(idx)):
                a.append(idx[i])
                b.append(idx[j])
    return np.array(a), np.array(b)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def evaluate(emb: L.Embedded, flip: bool, root: Path, seed: int) -> dict[str, object]:
    paths = emb.paths
    index = {p: i for i, p in enumerate(paths)}
    threshold = Settings().detection_threshold
    found = emb.det_score >= threshold
    vectors = emb.vectors(flip)
    ids = np.array([L.identity_of(p) for p in paths])
    sex_of = L.lfw_sex(root)
    sex = np.array([sex_of.get(Path(p).name, "") for p in paths])

    pairs = L.lfw_pairs(root)
    ia = np.array([index[a] for _, a, _, _ in pairs])
    ib = np.array([index[b] for _, _, b, _ in pairs])
    same = np.array([s for *_, s in pairs])
    folds = np.array([f for f, *_ in pairs])
    scores = np.where(found[ia] & found[ib], (vectors[ia] * vectors[ib]).sum(1), -1.0)
    acc, acc_std = ten_fold_accuracy(scores, same, folds)
    pair_images = np.unique(np.concatenate([ia, ib]))

    rng = np.random.default_rng(seed)
    ma, mb = mated_pairs(ids, found, rng)
    mated = (vectors[ma] * vectors[mb]).sum(1)
    ok = np.flatnonzero(found)
    ra, rb = rng.choice(ok, 1_300_000), rng.choice(ok, 1_300_000)
    diff = ids[ra] != ids[rb]
    ra, rb = ra[diff][:1_000_000], rb[diff][:1_000_000]
    impostor = (vectors[ra] * vectors[rb]).sum(1)
    labelled = found & (sex != "")
    same_sex = impostor_scores(vectors[labelled], ids[labelled], sex[labelled])

    model = CATALOG["sface-2021dec"].model_id + ("+flip" if flip else "")
    cal = default_calibration(model)
    t80 = cal.score_for_similarity(DEFAULT_THRESHOLD)
    pairs = (ids, sex, labelled, mated, ma, mb)
    per_sex = per_sex_at(vectors, pairs, t80, np.zeros(len(vectors), np.float32))
    fmr_ratio = max(v["fmr"] for v in per_sex.values()) / max(min(v["fmr"] for v in per_sex.values()), 1e-12)  # type: ignore[type-var,operator]
    normalised = None
    shipped = shipped_normaliser(model)
    if shipped is not None and shipped.calibration is not None:  # the default 1:1 path (docs/fairness.md)
        half = 0.5 * shipped.shift(vectors)
        tn = shipped.calibration.score_for_similarity(DEFAULT_THRESHOLD)
        found_n = per_sex_at(vectors, pairs, tn, half)
        normalised = {
            "score_id": shipped.score_id,
            "threshold": round(tn, 4),
            "tar_pct": round(100 * float((mated - half[ma] - half[mb] >= tn).mean()), 2),
            "per_sex": found_n,
            "fmr_ratio_female_to_male": round(found_n["female"]["fmr"] / max(found_n["male"]["fmr"], 1e-12), 2),  # type: ignore[operator]
        }

    tar3, thr3 = tar_at(mated, impostor, 1e-3)
    tar4, thr4 = tar_at(mated, impostor, 1e-4)
    tar3s, _ = tar_at(mated, same_sex, 1e-3)
    tar4s, _ = tar_at(mated, same_sex, 1e-4)
    return {
        "model": model,
        "flip_augment": flip,
        "view2_accuracy_pct": round(acc, 2),
        "view2_accuracy_std_pct": round(acc_std, 2),
        "failure_to_detect_pct": {
            "all_lfw_images": round(100 * float((~found).mean()), 3),
            "view2_images": round(100 * float((~found[pair_images]).mean()), 3),
            "detector_threshold": threshold,
        },
        "tar_pct": {
            "at_fmr_1e-3": round(tar3, 2),
            "at_fmr_1e-4": round(tar4, 2),
            "same_sex_impostors_at_fmr_1e-3": round(tar3s, 2),
            "same_sex_impostors_at_fmr_1e-4": round(tar4s, 2),
            "cosine_threshold_at_fmr_1e-3": round(thr3, 4),
            "cosine_threshold_at_fmr_1e-4": round(thr4, 4),
            "mated_pairs": int(mated.size),
            "impostor_pairs": int(impostor.size),
            "same_sex_impostor_pairs": int(same_sex.size),
        },
        "default_threshold": {
            "similarity": DEFAULT_THRESHOLD,
            "cosine": round(t80, 4),
            "per_sex": per_sex,
            "fmr_ratio_female_to_male": round(fmr_ratio, 2),
            "tar_pct": round(100 * float((mated >= t80).mean()), 2),
        },
        "default_1to1_normalised": normalised,
    }


def per_sex_at(
    vectors: np.ndarray, pairs: tuple[np.ndarray, ...], threshold: float, half: np.ndarray
) -> dict[str, dict[str, object]]:
    """FMR (same-sex impostor pairs) and FNMR per sex at ``threshold`` of scores less half-offsets."""
    ids, sex, labelled, mated, ma, mb = pairs
    out: dict[str, dict[str, object]] = {}
    for group in ("female", "male"):
        g = labelled & (sex == group)
        imp = impostor_scores(vectors[g], ids[g], sex[g], shift=half[g])
        sel = (sex[ma] == group) & (sex[mb] == group)
        fm = int((imp >= threshold).sum())
        fnm = int((mated[sel] - half[ma[sel]] - half[mb[sel]] < threshold).sum())
        out[group] = {
            "images": int(g.sum()),
            "impostor_pairs": int(imp.size),
            "false_matches": fm,
            "fmr": fm / imp.size,
            "fmr_95ci": wilson(fm, imp.size),
            "mated_pairs": int(sel.sum()),
            "false_non_matches": fnm,
            "fnmr": fnm / max(int(sel.sum()), 1),
            "fnmr_95ci": wilson(fnm, int(sel.sum())),
        }
    return out


def render(result: dict[str, object]) -> str:
    lines = [
        "# LFW accuracy (bench/lfw.py)",
        "",
        f"Machine: {result['machine']}. Data: grayscale LFW in ../shared/data/lfw. Seed {result['seed']}.",
        "",
        "| embedding | View-2 accuracy | TAR @ FMR 1e-3 | TAR @ FMR 1e-4 "
        "| same-sex impostors: TAR @ 1e-3 / 1e-4 | failure to detect (all / View-2 images) |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:  # type: ignore[attr-defined]
        t, f = r["tar_pct"], r["failure_to_detect_pct"]
        lines.append(
            f"| {r['model']} | {r['view2_accuracy_pct']:.2f} ± {r['view2_accuracy_std_pct']:.2f} % | "
            f"{t['at_fmr_1e-3']:.2f} % | {t['at_fmr_1e-4']:.2f} % | "
            f"{t['same_sex_impostors_at_fmr_1e-3']:.2f} % / {t['same_sex_impostors_at_fmr_1e-4']:.2f} % | "
            f"{f['all_lfw_images']:.2f} % / {f['view2_images']:.2f} % |"
        )
    lines += [
        "",
        "Per sex at the default threshold (Similarity 80, calibrated FMR ≈ 1e-4), same-sex impostor pairs:",
        "",
    ]
    lines += [
        "| embedding | sex | images | impostor pairs | FMR (95 % CI) | mated pairs | FNMR (95 % CI) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:  # type: ignore[attr-defined]
        for sex, v in r["default_threshold"]["per_sex"].items():
            lo, hi = v["fmr_95ci"]
            flo, fhi = v["fnmr_95ci"]
            lines.append(
                f"| {r['model']} | {sex} | {v['images']:,} | {v['impostor_pairs']:,} | {v['fmr']:.2e} "
                f"({lo:.2e}–{hi:.2e}) | {v['mated_pairs']:,} | {100 * v['fnmr']:.2f} % "
                f"({100 * flo:.2f}–{100 * fhi:.2f}) |"
            )
    for r in result["runs"]:  # type: ignore[attr-defined]
        n = r.get("default_1to1_normalised")
        if not n:
            continue
        lines += [
            "",
            f"The default 1:1 path of {r['model']} (cluster normaliser `{n['score_id']}`, Similarity 80 at "
            f"normalised score {n['threshold']}): TAR at Similarity 80 {n['tar_pct']:.2f} % "
            f"(raw scores through the shipped table: {r['default_threshold']['tar_pct']:.2f} %), female/male FMR "
            f"{n['fmr_ratio_female_to_male']:.2f}× (raw: {r['default_threshold']['fmr_ratio_female_to_male']:.2f}×):",
            "",
            "| sex | FMR (95 % CI) | FNMR (95 % CI) |",
            "|---|---|---|",
        ]
        for sex, v in n["per_sex"].items():
            lo, hi = v["fmr_95ci"]
            flo, fhi = v["fnmr_95ci"]
            lines.append(
                f"| {sex} | {v['fmr']:.2e} ({lo:.2e}–{hi:.2e}) | {100 * v['fnmr']:.2f} % "
                f"({100 * flo:.2f}–{100 * fhi:.2f}) |"
            )
    lines += [
        "",
        "Intervals are Wilson intervals that treat pairs as independent; pairs share people and",
        "images, so the true uncertainty is larger (the fairness audit bootstraps over identities).",
    ]
    return "\n".join(lines) + "\n"


def fold_accuracy(
    scores: np.ndarray, same: np.ndarray, folds: np.ndarray, fit: list[int], check: list[int]
) -> tuple[float, float]:
    """Accuracy on each check fold at the threshold best on the fit folds' pairs (mean, std)."""
    train = np.isin(folds, fit)
    s, y = scores[train], same[train]
    best = max(np.unique(s), key=lambda t: float(((s >= t) == y).mean()))
    accs = [float(((scores[folds == k] >= best) == same[folds == k]).mean()) for k in check]
    return float(np.mean(accs)) * 100, float(np.std(accs)) * 100


def evaluate_profile(lfw: object, profile: str, seed: int) -> dict[str, object]:
    """One profile on the check folds of the fused cache (bench/accurate.py's ``Lfw``)."""
    from accurate import ACCURATE_MODEL, DEFAULT_MODEL

    vectors, rows = lfw.vectors(profile), lfw.rows(lfw.check_folds)  # type: ignore[attr-defined]
    ids, sex, found = lfw.ids, lfw.sex, lfw.found  # type: ignore[attr-defined]
    index = {p: i for i, p in enumerate(lfw.emb.paths)}  # type: ignore[attr-defined]
    fit, check = lfw.fit_folds, lfw.check_folds  # type: ignore[attr-defined]
    pairs = [p for p in lfw.pairs if p[0] in fit + check]  # type: ignore[attr-defined]
    ia, ib = np.array([index[a] for _, a, _, _ in pairs]), np.array([index[b] for _, _, b, _ in pairs])
    same, folds = np.array([x for *_, x in pairs]), np.array([f for f, *_ in pairs])
    scores = np.where(found[ia] & found[ib], (vectors[ia] * vectors[ib]).sum(1), -1.0)
    acc, acc_std = fold_accuracy(scores, same, folds, fit, check)
    # the standard protocol when every fold is embedded: each fold at the threshold best on the other nine
    ten = ten_fold_accuracy(scores, same, folds) if len(set(fit + check)) == 10 else None
    ma, mb = mated_pairs(np.where(rows, ids, ""), rows, np.random.default_rng(seed))
    mated = (vectors[ma] * vectors[mb]).sum(1)
    model = DEFAULT_MODEL if profile == "default" else ACCURATE_MODEL
    t80 = default_calibration(model).score_for_similarity(DEFAULT_THRESHOLD)
    per_sex, same_sex = {}, []
    for group in ("female", "male"):
        g = rows & (sex == group)
        imp = impostor_scores(vectors[g], ids[g], sex[g])
        same_sex.append(imp)
        sel = (sex[ma] == group) & (sex[mb] == group)
        fm, fnm = int((imp >= t80).sum()), int((mated[sel] < t80).sum())
        per_sex[group] = {
            "images": int(g.sum()),
            "impostor_pairs": int(imp.size),
            "fmr": fm / imp.size,
            "fmr_95ci": wilson(fm, imp.size),
            "mated_pairs": int(sel.sum()),
            "fnmr": fnm / max(int(sel.sum()), 1),
            "fnmr_95ci": wilson(fnm, int(sel.sum())),
        }
    imp_all = np.concatenate(same_sex)
    return {
        "profile": profile,
        "model": model,
        "view2_pairs": int(np.isin(folds, check).sum()),
        "view2_accuracy_pct": round(acc, 2),
        "view2_accuracy_std_pct": round(acc_std, 2),
        "view2_10fold_accuracy_pct": None if ten is None else [round(ten[0], 2), round(ten[1], 2)],
        "tar_pct_same_sex_impostors": {
            "at_fmr_1e-3": round(tar_at(mated, imp_all, 1e-3)[0], 2),
            "at_fmr_1e-4": round(tar_at(mated, imp_all, 1e-4)[0], 2),
            "mated_pairs": int(mated.size),
            "impostor_pairs": int(imp_all.size),
        },
        "similarity_80": {
            "score": round(t80, 4),
            "fmr": float((imp_all >= t80).mean()),
            "tar_pct": round(100 * float((mated >= t80).mean()), 2),
            "per_sex": per_sex,
        },
    }


def render_profiles(result: dict[str, object]) -> str:
    runs: list[dict[str, Any]] = result["runs"]  # type: ignore[assignment]
    lines = [
        "# LFW: the default profile beside the accurate one (bench/lfw.py --profiles)",
        "",
        f"Machine: {result['machine']}. Load average {result['load_average']}. Seed {result['seed']}.",
        f"Same images for both: LFW View-2 folds {result['check_folds']} (the accurate profile's share was",
        f"fitted on folds {result['fit_folds']}, which also set the accuracy threshold; both profiles' raw tables",
        "on all of LFW, these people included, so FMR at Similarity 80 is not held out), faces found by YuNet",
        "at score ≥ 0.5."
        + (
            " 10-fold: the standard View-2 protocol on all ten folds (each at the threshold best on the other"
            " nine; folds 1–2 also fitted the accurate profile's share)."
            if runs[0]["view2_10fold_accuracy_pct"] is not None
            else " dlib is slow here, so not all ten folds were embedded."
        ),
        "",
        "| profile | View-2 accuracy, 10-fold | View-2 accuracy, check folds (pairs) "
        "| TAR @ FMR 1e-3 / 1e-4 (same-sex impostors) | at Similarity 80: FMR / TAR | FMR female / male "
        "| female/male |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        t, s = r["tar_pct_same_sex_impostors"], r["similarity_80"]
        f, m = s["per_sex"]["female"], s["per_sex"]["male"]
        ten = r["view2_10fold_accuracy_pct"]
        lines.append(
            f"| {r['profile']} (`{r['model']}`) | {f'{ten[0]:.2f} ± {ten[1]:.2f} %' if ten else '—'} "
            f"| {r['view2_accuracy_pct']:.2f} ± {r['view2_accuracy_std_pct']:.2f} % "
            f"({r['view2_pairs']:,}) | {t['at_fmr_1e-3']:.2f} % / {t['at_fmr_1e-4']:.2f} % | "
            f"{s['fmr']:.2e} / {s['tar_pct']:.2f} % | {f['fmr']:.2e} ({f['fmr_95ci'][0]:.1e}–{f['fmr_95ci'][1]:.1e}) / "
            f"{m['fmr']:.2e} ({m['fmr_95ci'][0]:.1e}–{m['fmr_95ci'][1]:.1e}) | {f['fmr'] / max(m['fmr'], 1e-12):.2f} |"
        )
    lines += [
        "",
        f"Impostor pairs: {runs[0]['tar_pct_same_sex_impostors']['impostor_pairs']:,} same-sex pairs of different "
        f"people; mated pairs: {runs[0]['tar_pct_same_sex_impostors']['mated_pairs']:,}. Wilson intervals treat "
        "pairs as independent (they share people), so they are too narrow.",
    ]
    return "\n".join(lines) + "\n"


def profiles(seed: int) -> None:
    """Both profiles on the same LFW images: bench/results/lfw-profiles.{json,md}."""
    from accurate import Lfw
    from host import load_avg

    lfw = Lfw(seed)
    runs = [evaluate_profile(lfw, p, seed) for p in ("default", "accurate")]
    result = {
        "machine": machine(),
        "load_average": load_avg(),
        "seed": seed,
        "fit_folds": [k + 1 for k in lfw.fit_folds],
        "check_folds": [k + 1 for k in lfw.check_folds],
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lfw-profiles.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "lfw-profiles.md").write_text(render_profiles(result))
    print(render_profiles(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument(
        "--profiles", action="store_true", help="the default and accurate profiles on the same images (fused cache)"
    )
    args = parser.parse_args()
    if args.profiles:
        profiles(args.seed)
        return
    root = L.lfw_root()
    emb = L.embed_lfw(root, L.lfw_images(root))
    runs = [evaluate(emb, flip, root, args.seed) for flip in (False, True)]
    result = {"machine": machine(), "seed": args.seed, "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lfw.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "lfw.md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
