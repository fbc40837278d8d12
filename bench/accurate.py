"""The 'accurate' profile (SFace fused with dlib): fit its dlib share on some LFW View-2 folds,
and measure it beside the default on UTKFace (race among adults, children).

    .venv/bin/python bench/fused_data.py lfw utkface   # the embeddings (slow; resumable)
    .venv/bin/python bench/accurate.py --fit           # prints the share to put in models/fused.py
    .venv/bin/python bench/accurate.py                 # bench/results/accurate.{json,md}

Folds: View-2's ten folds hold different people; the images of folds 1–2 fit the share (TAR at
FMR 1e-3 and 1e-4 of the same-sex impostor pairs, as for the tables: docs/calibration.md).
The profile's raw table is fitted on all of LFW, as the default's is, by
``bench/calibrate.py --profile accurate`` (this script used to fit it on folds 1–2 only, 1,579
images).

UTKFace (no identities: every image counts as its own person): impostor pairs of the same
sex within a group — adults 18–60 by race, and children 0–12 — at Similarity 80 of each
profile's shipped table. Reported over all pairs and without the pairs the default model
scores at cosine ≥ 0.6 (presumed the same person or a duplicate photo; ../shared/FACTS.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fused_data as F
import lfw_data as L
from calibrate import impostor_scores
from facetrust.calibration import DEFAULT_THRESHOLD, default_calibration
from facetrust.config import Settings
from facetrust.models.catalog import CATALOG
from facetrust.models.fused import DLIB_SHARE, fuse, fused_model_id
from host import load_avg
from lfw import machine, mated_pairs, tar_at, wilson

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_MODEL = CATALOG["sface-2021dec"].model_id + "+flip"
ACCURATE_MODEL = fused_model_id(CATALOG["sface-2021dec"].model_id, CATALOG["dlib-resnet-v1"].model_id)
SHARES = [round(0.05 * i, 2) for i in range(21)]
# View-2 folds 1 and 2 (0-based 0, 1) fit the share and the table; every other fold the run
# got through checks them (dlib is slow here: the embedding run may stop before fold 10)
FIT_FOLDS = (0, 1)


class Lfw:
    """The cached View-2 images with identity, sex and fold, split into fit and check folds."""

    def __init__(self, seed: int) -> None:
        root = L.lfw_root()
        emb = F.embed_fused("lfw-view2", root / "images", F.lfw_view2_images(root), compute=False)
        if emb is None:
            sys.exit("no LFW embeddings cached yet: run bench/fused_data.py lfw")
        self.emb, self.root, self.seed = emb, root, seed
        pairs = L.lfw_pairs(root)
        fold_of: dict[str, int] = {}
        for fold, a, b, _ in pairs:
            fold_of.setdefault(a, fold)
            fold_of.setdefault(b, fold)
        self.fold = np.array([fold_of[p] for p in emb.paths])
        complete = [k for k in range(10) if (self.fold == k).sum() == sum(1 for p in fold_of.values() if p == k)]
        self.fit_folds = [k for k in FIT_FOLDS if k in complete]
        self.check_folds = [k for k in complete if k not in FIT_FOLDS]
        sex_of = L.lfw_sex(root)
        self.sex = np.array([sex_of.get(Path(p).name, "") for p in emb.paths])
        self.ids = np.array([L.identity_of(p) for p in emb.paths])
        self.found = emb.det_score >= Settings().detection_threshold
        self.pairs = [p for p in pairs if p[0] in complete]

    def rows(self, folds: list[int]) -> np.ndarray:
        return self.found & (self.sex != "") & np.isin(self.fold, folds)

    def vectors(self, profile: str, share: float = DLIB_SHARE) -> np.ndarray:
        return self.emb.default_vectors() if profile == "default" else fuse(self.emb.sface, self.emb.dlib, share)


def fit_share(lfw: Lfw) -> dict[str, Any]:
    """TAR at FMR 1e-3 and 1e-4 (same-sex impostors) on the fit folds for each dlib share."""
    rows = lfw.rows(lfw.fit_folds)
    rng = np.random.default_rng(lfw.seed)
    ma, mb = mated_pairs(np.where(rows, lfw.ids, ""), rows, rng)
    table = []
    for share in SHARES:
        v = lfw.vectors("accurate", share)
        imp = impostor_scores(v[rows], lfw.ids[rows], lfw.sex[rows])
        mated = (v[ma] * v[mb]).sum(1)
        table.append({"share": share, "tar_1e-3": tar_at(mated, imp, 1e-3)[0], "tar_1e-4": tar_at(mated, imp, 1e-4)[0]})
    best = max(table, key=lambda r: (round(r["tar_1e-3"] + r["tar_1e-4"], 1), -abs(r["share"] - 0.5)))
    return {"fit_folds": lfw.fit_folds, "mated_pairs": int(ma.size), "by_share": table, "best": best["share"]}


def utk_labels(root: Path) -> dict[str, tuple[int, str, str]]:
    """File name → (age, gender, race) from labels.csv."""
    import csv

    with (root / "labels.csv").open() as fh:
        return {r["file"]: (int(r["age"]), r["gender"], r["race"]) for r in csv.DictReader(fh)}


def _rates(scores: np.ndarray, same: np.ndarray, t80: float) -> dict[str, Any]:
    fm, fm_kept = int((scores >= t80).sum()), int(((scores >= t80) & ~same).sum())
    kept = int((~same).sum())
    return {
        "pairs": int(scores.size),
        "fmr": fm / max(scores.size, 1),
        "fmr_95ci": wilson(fm, int(scores.size)),
        "pairs_without_presumed_same": kept,
        "fmr_without_presumed_same": fm_kept / max(kept, 1),
        "fmr_without_presumed_same_95ci": wilson(fm_kept, kept),
    }


def utkface() -> dict[str, Any]:
    """FMR at Similarity 80 per race (adults 18–60) and for children 0–12, both profiles."""
    root = L.data_root() / "utkface"
    emb = F.embed_fused("utkface", root / "images", F.utkface_images(root), compute=False)
    if emb is None:
        sys.exit("no UTKFace embeddings cached yet: run bench/fused_data.py utkface")
    labels = utk_labels(root)
    age = np.array([labels[p][0] for p in emb.paths])
    sex = np.array([labels[p][1] for p in emb.paths])
    race = np.array([labels[p][2] for p in emb.paths])
    found = emb.det_score >= Settings().detection_threshold
    ids = np.array(emb.paths)
    default = emb.default_vectors()
    bands = {"adults": found & (age >= 18) & (age <= 60), "children": found & (age <= 12)}
    out: dict[str, Any] = {"images_embedded": len(emb.paths), "images_in_dataset": len(labels), "profiles": {}}
    for profile, model in (("default", DEFAULT_MODEL), ("accurate", ACCURATE_MODEL)):
        vectors = default if profile == "default" else fuse(emb.sface, emb.dlib, DLIB_SHARE)
        t80 = default_calibration(model).score_for_similarity(DEFAULT_THRESHOLD)
        groups: dict[str, Any] = {}
        for name in sorted(set(race)):
            rows = bands["adults"] & (race == name)
            s = impostor_scores(vectors[rows], ids[rows], sex[rows])
            same = impostor_scores(default[rows], ids[rows], sex[rows]) >= 0.6
            groups[f"adults {name}"] = {"images": int(rows.sum()), **_rates(s, same, t80)}
        rows = bands["adults"]
        key = np.char.add(race, sex)
        groups["adults, all races"] = {
            "images": int(rows.sum()),
            **_rates(
                impostor_scores(vectors[rows], ids[rows], key[rows]),
                impostor_scores(default[rows], ids[rows], key[rows]) >= 0.6,
                t80,
            ),
        }
        rows = bands["children"]
        groups["children 0-12"] = {
            "images": int(rows.sum()),
            **_rates(
                impostor_scores(vectors[rows], ids[rows], sex[rows]),
                impostor_scores(default[rows], ids[rows], sex[rows]) >= 0.6,
                t80,
            ),
        }
        out["profiles"][profile] = {"model": model, "score_at_similarity_80": round(t80, 4), "groups": groups}
    return out


def render(result: dict[str, Any]) -> str:
    fit = result["fit"]
    lines = [
        "# The accurate profile (bench/accurate.py)",
        "",
        f"Machine: {result['machine']}. Load average {result['load_average']}.",
        "",
        f"## dlib share, fitted on LFW View-2 folds {[k + 1 for k in fit['fit_folds']]} "
        f"({fit['mated_pairs']:,} mated pairs, same-sex impostors)",
        "",
        "| dlib share | TAR @ FMR 1e-3 | TAR @ FMR 1e-4 |",
        "|---|---|---|",
    ]
    lines += [f"| {r['share']:.2f} | {r['tar_1e-3']:.2f} % | {r['tar_1e-4']:.2f} % |" for r in fit["by_share"]]
    lines += ["", f"Best: {fit['best']:.2f}; shipped: {result['shipped_share']:.2f}.", ""]
    utk = result["utkface"]
    lines += [
        f"## UTKFace at Similarity 80 ({utk['images_embedded']:,} of {utk['images_in_dataset']:,} images embedded"
        + (")" if utk["images_embedded"] == utk["images_in_dataset"] else ", a seeded random sample)"),
        "",
        "Same-sex impostor pairs within each group. 'w/o presumed same': without pairs the default model scores "
        "at cosine ≥ 0.6 (duplicates or the same person; UTKFace has no identities).",
        "",
        "| group | images | pairs | default FMR (95 % CI) | accurate FMR (95 % CI) "
        "| default / accurate FMR w/o presumed same |",
        "|---|---|---|---|---|---|",
    ]
    d, a = utk["profiles"]["default"]["groups"], utk["profiles"]["accurate"]["groups"]
    for g in d:
        x, y = d[g], a[g]
        lines.append(
            f"| {g} | {x['images']:,} | {x['pairs']:,} | {x['fmr']:.2e} ({x['fmr_95ci'][0]:.1e}–{x['fmr_95ci'][1]:.1e})"
            f" | {y['fmr']:.2e} ({y['fmr_95ci'][0]:.1e}–{y['fmr_95ci'][1]:.1e}) "
            f"| {x['fmr_without_presumed_same']:.2e} / {y['fmr_without_presumed_same']:.2e} |"
        )
    for p in ("default", "accurate"):
        races = {g: v for g, v in utk["profiles"][p]["groups"].items() if g.startswith("adults ") and "," not in g}
        rates = {
            g: v["fmr_without_presumed_same"] for g, v in races.items() if v["pairs_without_presumed_same"] >= 2000
        }
        kids = utk["profiles"][p]["groups"]["children 0-12"]["fmr_without_presumed_same"]
        adults = utk["profiles"][p]["groups"]["adults, all races"]["fmr_without_presumed_same"]
        worst, best = max(rates, key=rates.__getitem__), min(rates, key=rates.__getitem__)
        lines.append(
            f"\n{p}: worst/best race FMR w/o presumed same (groups with ≥ 2,000 such pairs): {worst} / {best} = "
            f"{rates[worst] / max(rates[best], 1e-12):.1f}×; children/adults {kids / max(adults, 1e-12):.1f}×."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fit", action="store_true", help="only fit the dlib share and print it")
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args()
    lfw = Lfw(args.seed)
    print(f"LFW: {len(lfw.emb.paths):,} images embedded; fit folds {lfw.fit_folds}, check folds {lfw.check_folds}")
    fit = fit_share(lfw)
    print(json.dumps(fit["by_share"]), f"\nbest share {fit['best']} (shipped {DLIB_SHARE})")
    if args.fit:
        return
    result = {
        "machine": machine(),
        "load_average": load_avg(),
        "fit": fit,
        "shipped_share": DLIB_SHARE,
        "utkface": utkface(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "accurate.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "accurate.md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
