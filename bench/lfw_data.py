"""Shared by the bench scripts: the LFW layout, the View-2 pairs, and cached LFW embeddings.

Embeddings are cached outside the repository (never commit them): in
``$FACETRUST_BENCH_CACHE`` or ``~/.cache/facetrust-bench``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def data_root() -> Path:
    """``$FACETRUST_DATA`` or ``../shared/data`` beside the repository."""
    env = os.environ.get("FACETRUST_DATA")
    return Path(env) if env else HERE.parent.parent / "shared" / "data"


def lfw_root() -> Path:
    root = data_root() / "lfw"
    if not (root / "pairs.txt").is_file():
        sys.exit(f"LFW not found at {root} (set FACETRUST_DATA to the folder holding lfw/)")
    return root


def cache_root() -> Path:
    path = Path(os.environ.get("FACETRUST_BENCH_CACHE", Path.home() / ".cache" / "facetrust-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def lfw_images(root: Path) -> list[str]:
    """Relative paths ``Person/Person_0001.jpg`` of every LFW image, sorted."""
    return sorted(f"{p.parent.name}/{p.name}" for p in (root / "images").glob("*/*.jpg"))


def identity_of(rel: str) -> str:
    return rel.split("/", 1)[0]


def lfw_pairs(root: Path) -> list[tuple[int, str, str, bool]]:
    """View-2 pairs as (fold, image_a, image_b, same_person)."""
    lines = (root / "pairs.txt").read_text().split("\n")
    folds, per = (int(v) for v in lines[0].split())
    out = []
    rows = [ln.split("\t") for ln in lines[1:] if ln.strip()]
    for i, row in enumerate(rows):
        fold = i // (2 * per)
        if len(row) == 3:
            a = f"{row[0]}/{row[0]}_{int(row[1]):04d}.jpg"
            b = f"{row[0]}/{row[0]}_{int(row[2]):04d}.jpg"
            out.append((fold, a, b, True))
        else:
            a = f"{row[0]}/{row[0]}_{int(row[1]):04d}.jpg"
            b = f"{row[2]}/{row[2]}_{int(row[3]):04d}.jpg"
            out.append((fold, a, b, False))
    assert len(out) == folds * 2 * per
    return out


def lfw_sex(root: Path) -> dict[str, str]:
    """Image file name → 'male'/'female'; names in both lists count as female (LFW README)."""
    sex = {n.strip(): "male" for n in (root / "male_names.txt").read_text().split() if n.strip()}
    for n in (root / "female_names.txt").read_text().split():
        if n.strip():
            sex[n.strip()] = "female"
    return sex


@dataclass
class Embedded:
    """Per image: raw and mirrored embeddings of the largest face, its detector score, face count."""

    paths: list[str]
    plain: np.ndarray  # (N, 128), zero rows where no face
    mirrored: np.ndarray
    det_score: np.ndarray  # (N,), 0 where no face
    face_counts: np.ndarray

    def vectors(self, flip: bool) -> np.ndarray:
        v = self.plain + self.mirrored if flip else self.plain.copy()
        n = np.linalg.norm(v, axis=1, keepdims=True)
        return (v / np.maximum(n, 1e-12)).astype(np.float32)


_WORKER: dict[str, object] = {}


def _init_worker(cache_dir: str) -> None:
    import cv2

    cv2.setNumThreads(1)
    from facetrust.config import Settings
    from facetrust.models.catalog import CATALOG
    from facetrust.models.files import prepared_model_path
    from facetrust.models.sface import SFaceRecogniser
    from facetrust.models.yunet import YuNetDetector

    settings = Settings(cache_dir=Path(cache_dir) if cache_dir else None)
    cache = settings.resolved_cache_dir
    _WORKER["det"] = YuNetDetector(prepared_model_path(CATALOG["yunet-2023mar"], cache), score_threshold=0.3)
    _WORKER["rec"] = SFaceRecogniser(prepared_model_path(CATALOG["sface-2021dec"], cache))


def _embed_one(path: str) -> tuple[np.ndarray, np.ndarray, float, int]:
    from facetrust.align import align_face
    from facetrust.images import load_image

    det, rec = _WORKER["det"], _WORKER["rec"]
    rgb = load_image(path)
    found = det.detect(rgb)  # type: ignore[attr-defined]
    if not found:
        z = np.zeros(128, np.float32)
        return z, z, 0.0, 0
    best = max(found, key=lambda d: d.box[2] * d.box[3])
    crop = align_face(rgb, best.landmarks)
    vecs = rec.embed(np.stack([crop, crop[:, ::-1]]))  # type: ignore[attr-defined]
    return vecs[0], vecs[1], best.score, len(found)


def embed_lfw(root: Path, paths: list[str], workers: int = 2) -> Embedded:
    """Embed ``paths`` (relative to ``root/images``) once; cached by the list and model hash."""
    import hashlib

    from facetrust.models.catalog import CATALOG

    key = hashlib.sha256(("\n".join(paths) + CATALOG["sface-2021dec"].sha256 + "v2").encode()).hexdigest()[:16]
    cache = cache_root() / f"lfw-{key}.npz"
    if cache.is_file():
        z = np.load(cache)
        return Embedded(list(z["paths"]), z["plain"], z["mirrored"], z["det_score"], z["face_counts"])
    t0 = time.time()
    full = [str(root / "images" / p) for p in paths]
    with mp.get_context("spawn").Pool(workers, _init_worker, (os.environ.get("FACETRUST_CACHE_DIR", ""),)) as pool:
        results = []
        for i, r in enumerate(pool.imap(_embed_one, full, chunksize=32)):
            results.append(r)
            if i % 1000 == 0:
                print(f"  embedded {i}/{len(full)} images ({time.time() - t0:.0f} s)", file=sys.stderr)
    out = Embedded(
        paths,
        np.stack([r[0] for r in results]),
        np.stack([r[1] for r in results]),
        np.array([r[2] for r in results], np.float32),
        np.array([r[3] for r in results], np.int32),
    )
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        paths=np.array(paths),
        plain=out.plain,
        mirrored=out.mirrored,
        det_score=out.det_score,
        face_counts=out.face_counts,
    )
    os.replace(tmp, cache)
    print(f"  embedded {len(paths)} images in {time.time() - t0:.0f} s", file=sys.stderr)
    return out
