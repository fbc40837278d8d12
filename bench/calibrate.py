"""Fit the shipped score → FMR calibration tables from LFW same-sex impostor pairs.

    .venv/bin/python bench/calibrate.py            # writes src/facetrust/data/calibration-*.json

Impostor set: every pair of LFW images of two *different* people of the *same* labelled sex
(same-sex pairs, because mixed-sex pairs almost never match and would make the table
optimistic). Images where the detector (score ≥ the engine's default threshold) finds no face
are left out. One table per embedding mode (with and without flip augmentation). The
embeddings are computed once and cached outside the repository (bench/lfw_data.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_data as L
from facetrust.calibration import fit_calibration
from facetrust.config import Settings
from facetrust.models.catalog import CATALOG

OUT = Path(__file__).resolve().parent.parent / "src" / "facetrust" / "data"


def impostor_scores(vectors: np.ndarray, ids: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Cosine scores of all different-identity pairs within each group (upper triangle)."""
    chunks = []
    for group in np.unique(groups):
        idx = np.flatnonzero(groups == group)
        v, who = vectors[idx], ids[idx]
        for start in range(0, len(idx), 1024):
            block = v[start : start + 1024] @ v.T
            rows = np.arange(start, min(start + 1024, len(idx)))
            upper = np.arange(len(idx))[None, :] > rows[:, None]
            other = who[start : start + 1024, None] != who[None, :]
            chunks.append(block[upper & other].astype(np.float32))
    return np.concatenate(chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    root = L.lfw_root()
    paths = L.lfw_images(root)
    emb = L.embed_lfw(root, paths)
    sex = L.lfw_sex(root)
    threshold = Settings().detection_threshold
    groups = np.array([sex.get(Path(p).name, "") for p in paths])
    ids = np.array([L.identity_of(p) for p in paths])
    keep = (emb.det_score >= threshold) & (groups != "")
    print(f"{keep.sum()} of {len(paths)} images kept (face found at score ≥ {threshold}, sex labelled)")
    spec = CATALOG["sface-2021dec"]
    for flip in (False, True):
        vectors = emb.vectors(flip)[keep]
        scores = impostor_scores(vectors, ids[keep], groups[keep])
        model = spec.model_id + ("+flip" if flip else "")
        counts = {g: int((groups[keep] == g).sum()) for g in ("female", "male")}
        cal = fit_calibration(
            scores,
            model=model,
            dataset=(
                f"LFW (grayscale copy, 250x250): all {scores.size:,} pairs of images of different people of the "
                f"same labelled sex ({counts['female']:,} female and {counts['male']:,} male images)"
            ),
            provenance={
                "script": "bench/calibrate.py",
                "date": dt.date.today().isoformat(),
                "detector_threshold": threshold,
                "min_count": 10,
                "flip_augment": flip,
                "images": int(keep.sum()),
                "identities": len(np.unique(ids[keep])),
                "note": "pairs share identities and images, so neighbouring FMR estimates are correlated",
            },
        )
        name = "calibration-" + model.replace(":", "-").replace("+", "-") + ".json"
        (args.out / name).write_text(cal.to_json() + "\n")
        summary = {f"sim{s}": round(cal.score_for_similarity(s), 4) for s in (40, 60, 80, 99)}
        print(f"{name}: {scores.size:,} pairs, floor FMR {cal.floor_fmr:.2e}, scores at {json.dumps(summary)}")


if __name__ == "__main__":
    main()
