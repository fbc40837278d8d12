"""Fit the shipped score → FMR calibration tables and the shipped 1:1 cluster normaliser.

    .venv/bin/python bench/calibrate.py              # writes src/facetrust/data/calibration-*.json
    .venv/bin/python bench/calibrate.py --normaliser # writes src/facetrust/data/clusternorm-*.json

Raw tables. Impostor set: every pair of LFW images of two *different* people of the *same*
labelled sex (same-sex pairs, because mixed-sex pairs almost never match and would make the
table optimistic). Images where the detector (score ≥ the engine's default threshold) finds no
face are left out, and so are near-duplicates (``facetrust.fairness.robustfit``: cosine ≥ 0.9
to an image of someone else; the count is recorded). Each table records 95 % identity-bootstrap
intervals of the thresholds of Similarity 40, 60, 80 and 99 (200 replicates, seed 0). One
table per embedding mode (with and without flip augmentation). The embeddings are computed
once and cached outside the repository (bench/lfw_data.py). No date is recorded, so a rerun
reproduces the files byte for byte.

Normaliser (``--normaliser``): fitted by bench/fsn_fit.py on the fit halves of LFW and
UTKFace (the audit's cached embeddings of the default, flip-averaged model); the evaluation
halves stay unseen (bench/fairnorm.py measures on them).

``--profile accurate`` fits the same recipes on the fused SFace + dlib templates: the accurate
engine's, cached as `facetrust audit` caches them (the first run embeds LFW with dlib: slow on 2
cores); its dlib share is ``bench/accurate.py --fit``'s:

    .venv/bin/python bench/calibrate.py --profile accurate               # its raw table
    .venv/bin/python bench/calibrate.py --normaliser --profile accurate  # its normaliser
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_data as L
from facetrust.calibration import fit_calibration, fmr_from_similarity
from facetrust.config import PROFILES, Settings
from facetrust.fairness.clusterfit import wilson_low
from facetrust.fairness.pairs import CosineScorer, GroupPairs, build_group_pairs
from facetrust.fairness.robustfit import DUPLICATE_COSINE, duplicate_rows, threshold_intervals
from facetrust.models.catalog import CATALOG

OUT = Path(__file__).resolve().parent.parent / "src" / "facetrust" / "data"


def impostor_scores(
    vectors: np.ndarray, ids: np.ndarray, groups: np.ndarray, shift: np.ndarray | None = None
) -> np.ndarray:
    """Cosine scores of all different-identity pairs within each group (upper triangle), less
    ``shift`` of each side when given (half a cluster offset per image: the normalised score)."""
    chunks = []
    for group in np.unique(groups):
        idx = np.flatnonzero(groups == group)
        v, who = vectors[idx], ids[idx]
        for start in range(0, len(idx), 1024):
            block = v[start : start + 1024] @ v.T
            if shift is not None:
                block = block - shift[idx][start : start + 1024, None] - shift[idx][None, :]
            rows = np.arange(start, min(start + 1024, len(idx)))
            upper = np.arange(len(idx))[None, :] > rows[:, None]
            other = who[start : start + 1024, None] != who[None, :]
            chunks.append(block[upper & other].astype(np.float32))
    return np.concatenate(chunks)


def group_pairs(vectors: np.ndarray, ids: np.ndarray, groups: np.ndarray) -> list[GroupPairs]:
    """All different-identity pairs within each group, as the audit forms them."""
    scorer = CosineScorer(vectors)
    out = []
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        _, ident = np.unique(ids[rows], return_inverse=True)
        out.append(build_group_pairs(scorer, str(group), rows, ident, np.zeros(len(rows), np.int64), mated=False))
    return out


def write_normaliser(out: Path, profile: str = "default") -> None:
    import fsn_fit as F
    from facetrust.clusternorm import shipped_name
    from facetrust.config import default_cache_dir
    from facetrust.engine import FaceEngine
    from facetrust.fairness.runner import embed_spec

    engine = FaceEngine.load(Settings(score_normalisation=False, profile=profile))
    specs = F.datasets(L.data_root())
    embs = {n: embed_spec(engine, s, cache_dir=default_cache_dir(), workers=1) for n, s in specs.items()}
    fit = {n: p[0] for n, p in F.split_parts(specs, embs).items()}
    marked = F.fit_marked(engine.model_id, fit)  # the default recipe: "fsn-bal" in fairnorm
    normaliser, n, high = marked.normaliser, marked.pairs, marked.high
    assert normaliser.calibration is not None
    (out / shipped_name(engine.model_id)).write_text(normaliser.to_json() + "\n")
    t80 = normaliser.calibration.score_for_similarity(80)
    print(f"{normaliser.score_id}: {len(normaliser.centroids)} clusters, Similarity 80 at normalised {t80:.4f}")
    rate = high / np.maximum(n, 1)
    for c in np.argsort(-rate)[:3]:  # the fit pairs' highest clusters, against the unreliable flag's tolerance
        low = float(wilson_low(high[c : c + 1], n[c : c + 1])[0])
        print(f"cluster {c}: {high[c]:,} of {n[c]:,} fit pairs at Similarity 80 ({rate[c]:.1e}, Wilson low {low:.1e})")


def write_raw_table(
    out: Path,
    model: str,
    vectors: np.ndarray,
    ids: np.ndarray,
    groups: np.ndarray,
    keep: np.ndarray,
    provenance: dict[str, object],
) -> None:
    """Fit, bootstrap and write one raw table from LFW's same-sex pairs of different people:
    near-duplicates dropped (read in SFace's cosines: a fused template's SFace part), 200
    identity-bootstrap replicates of the thresholds, the file named by ``model``."""
    from facetrust.models.fused import sface_vectors

    rows = np.flatnonzero(keep)
    dropped = duplicate_rows(sface_vectors(model, vectors), rows, [str(i) for i in ids])
    kept = np.setdiff1d(rows, dropped)
    found = group_pairs(vectors[kept], ids[kept], groups[kept])
    scores = np.concatenate([g.impostor_scores for g in found])
    counts = {g: int((groups[kept] == g).sum()) for g in ("female", "male")}
    cal = fit_calibration(
        scores,
        model=model,
        dataset=(
            f"LFW (grayscale copy, 250x250): all {scores.size:,} pairs of images of different people of the "
            f"same labelled sex ({counts['female']:,} female and {counts['male']:,} male images)"
        ),
        provenance={
            "script": "bench/calibrate.py",
            "detector_threshold": Settings().detection_threshold,
            "min_count": 10,
            **provenance,
            "images": int(kept.size),
            "identities": len(np.unique(ids[kept])),
            "duplicate_cosine": DUPLICATE_COSINE,
            "duplicates_dropped": int(dropped.size),
            "note": "pairs share identities and images, so neighbouring FMR estimates are correlated",
        },
    )
    scorer = CosineScorer(vectors[kept])
    cut = cal.score_for_fmr(3 * fmr_from_similarity(40))
    intervals = threshold_intervals([(scorer, g) for g in found], cut, replicates=200, seed=0)
    cal.provenance["threshold_intervals"] = {
        f"{s:g}": [round(v.low, 4), round(v.high, 4)] for s, v in intervals.items()
    }
    cal.provenance["bootstrap"] = {"replicates": 200, "level": 0.95, "unit": "identity", "seed": 0}
    name = "calibration-" + model.replace(":", "-").replace("+", "-") + ".json"
    (out / name).write_text(cal.to_json() + "\n")
    summary = {f"sim{s}": round(cal.score_for_similarity(s), 4) for s in (40, 60, 80, 99)}
    print(
        f"{name}: {int(dropped.size)} near-duplicates dropped, {scores.size:,} pairs, floor FMR "
        f"{cal.floor_fmr:.2e}, scores at {json.dumps(summary)}, Similarity 80 interval "
        f"{cal.provenance['threshold_intervals']['80']}"
    )


def write_raw_tables(out: Path, profile: str) -> None:
    """The profile's shipped raw tables, from the same recipe on all of LFW: the default's two
    (with and without flip augmentation, bench/lfw_data.py's embeddings) or the accurate profile's
    fused one (the accurate engine's, cached as `facetrust audit` caches them; its dlib share is
    bench/accurate.py's)."""
    root = L.lfw_root()
    threshold = Settings().detection_threshold
    if profile == "accurate":
        from facetrust.config import default_cache_dir
        from facetrust.engine import FaceEngine
        from facetrust.fairness.datasets import load_lfw
        from facetrust.fairness.embedding import FACE
        from facetrust.fairness.runner import embed_spec
        from facetrust.models.fused import DLIB_SHARE

        engine = FaceEngine.load(Settings(profile="accurate", score_normalisation=False))
        lfw = load_lfw(root)
        emb = embed_spec(engine, lfw, cache_dir=default_cache_dir(), workers=2)
        groups = np.array([im.groups.get("sex", "") for im in lfw.images])
        ids = np.array([im.identity or "" for im in lfw.images])
        keep = (emb.status == FACE) & (groups != "")
        tables = [(engine.model_id, emb.vectors, {"dlib_share": DLIB_SHARE})]
        total = len(lfw.images)
    else:
        sex = L.lfw_sex(root)
        paths = L.lfw_images(root)
        lemb = L.embed_lfw(root, paths)
        groups = np.array([sex.get(Path(p).name, "") for p in paths])
        ids = np.array([L.identity_of(p) for p in paths])
        keep = (lemb.det_score >= threshold) & (groups != "")
        sface = CATALOG["sface-2021dec"].model_id
        tables = [(sface + ("+flip" if f else ""), lemb.vectors(f), {"flip_augment": f}) for f in (False, True)]
        total = len(paths)
    print(f"{keep.sum()} of {total} images kept (face found at score ≥ {threshold}, sex labelled)")
    for model, vectors, provenance in tables:
        write_raw_table(out, model, vectors, ids, groups, keep, provenance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--normaliser", action="store_true", help="write the shipped cluster normaliser instead")
    parser.add_argument("--profile", choices=PROFILES, default="default", help="the profile whose table or normaliser")
    args = parser.parse_args()
    if args.normaliser:
        write_normaliser(args.out, args.profile)
    else:
        write_raw_tables(args.out, args.profile)


if __name__ == "__main__":
    main()
