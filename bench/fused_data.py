"""Cached embeddings for the 'accurate' profile benches: per image, the default engine's SFace
embedding (plain and mirrored) and the fused profile's two parts (SFace on the canvas, mirror
averaged; dlib), all from the same YuNet detection of the largest face.

    .venv/bin/python bench/fused_data.py lfw utkface    # fill the caches (one worker, slow: dlib)
    .venv/bin/python bench/fused_data.py --part 5050 lfw  # a second worker: images 5050– into a part file
    .venv/bin/python bench/fused_data.py --merge 5050 lfw # once both stop: the part joins the cache

dlib costs 80–300 ms a face on one core, so the cache is written every 50 images and a
run resumes where the last one stopped. A second worker (``--part START``) embeds the images
from START on into a part file beside the cache; ``--merge START`` appends it to the cache. If
the first worker had not reached START, the cache then holds the images on either side of a
gap: the benches use only the View-2 folds it holds completely, and it can no longer be resumed.
Caches live in ``$FACETRUST_BENCH_CACHE`` or ``~/.cache/facetrust-bench`` (never in the repository).
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_data as L

VERSION = "fused-v1"
CHECKPOINT = 50


@dataclass
class FusedEmbedded:
    """Per image (rows follow ``paths``); zero rows where no face was found."""

    paths: list[str]
    det_score: np.ndarray  # (N,), 0 where no face
    default_plain: np.ndarray  # (N, 128) default engine's SFace
    default_mirrored: np.ndarray
    sface: np.ndarray  # (N, 128) the fused profile's SFace part (unit)
    dlib: np.ndarray  # (N, 128) the fused profile's dlib part (unit)

    def default_vectors(self) -> np.ndarray:
        v = self.default_plain + self.default_mirrored
        return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _models() -> tuple[object, object, object]:
    import cv2

    cv2.setNumThreads(1)
    from facetrust.config import Settings
    from facetrust.engine import FaceEngine
    from facetrust.models.fused import load_fused

    default = FaceEngine.load(Settings(detection_threshold=0.3))
    return default.detector, default.recogniser, load_fused(default.recogniser, default.settings.resolved_cache_dir)


def _one(models: tuple[object, object, object], path: str) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    from facetrust.align import align_face
    from facetrust.images import load_image

    det, sface, fused = models
    rgb = load_image(path)
    found = det.detect(rgb)  # type: ignore[attr-defined]
    if not found:
        return 0.0, np.zeros((2, 128), np.float32), np.zeros(128, np.float32), np.zeros(128, np.float32)
    best = max(found, key=lambda d: d.box[2] * d.box[3])
    crop = align_face(rgb, best.landmarks)
    default = sface.embed(np.stack([crop, crop[:, ::-1]]))  # type: ignore[attr-defined]
    canvas = align_face(rgb, best.landmarks, size=fused.input_size, reference=fused.reference)  # type: ignore[attr-defined]
    s, d = fused.embed_parts(canvas[None])  # type: ignore[attr-defined]
    return float(best.score), default, s[0], d[0]


def _key(name: str, paths: list[str]) -> str:
    from facetrust.models.catalog import CATALOG
    from facetrust.models.dlib import CANVAS

    parts = [*paths, CATALOG["sface-2021dec"].sha256, CATALOG["dlib-resnet-v1"].sha256, str(CANVAS), VERSION]
    return f"{name}-{hashlib.sha256(chr(10).join(parts).encode()).hexdigest()[:16]}"


def _save(cache: Path, rows: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]], paths: list[str]) -> None:
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        paths=np.array(paths[: len(rows)]),
        det_score=np.array([r[0] for r in rows], np.float32),
        default=np.stack([r[1] for r in rows]) if rows else np.zeros((0, 2, 128), np.float32),
        sface=np.stack([r[2] for r in rows]) if rows else np.zeros((0, 128), np.float32),
        dlib=np.stack([r[3] for r in rows]) if rows else np.zeros((0, 128), np.float32),
    )
    tmp.replace(cache)


def embed_fused(name: str, root: Path, paths: list[str], *, compute: bool = True) -> FusedEmbedded | None:
    """The cached embeddings of ``paths`` (relative to ``root``), computed (resuming) if asked;
    without ``compute``, those of the first images a stopped run got through (None: none)."""
    cache = L.cache_root() / f"{_key(name, paths)}.npz"
    rows: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = []
    done = paths[:0]
    if cache.is_file():
        z = np.load(cache)
        rows = [(float(s), dv, sv, dl) for s, dv, sv, dl in zip(z["det_score"], z["default"], z["sface"], z["dlib"])]
        done = [str(p) for p in z["paths"]]  # the first images, or (merge_part) whole folds with a gap
    if len(rows) < len(paths) and compute:
        if done != paths[: len(rows)]:
            sys.exit(f"{cache} holds images out of order (merged parts): it cannot be resumed")
        models, t0, start = _models(), time.time(), len(rows)
        for i in range(start, len(paths)):
            rows.append(_one(models, str(root / paths[i])))
            if (i + 1) % CHECKPOINT == 0 or i + 1 == len(paths):
                _save(cache, rows, paths)
                rate = (i + 1 - start) / (time.time() - t0)
                print(f"  {name}: {i + 1}/{len(paths)} images, {rate:.2f} images/s", file=sys.stderr, flush=True)
        done = paths[: len(rows)]
    if not rows:
        return None
    default = np.stack([r[1] for r in rows])
    return FusedEmbedded(
        done,
        np.array([r[0] for r in rows], np.float32),
        default[:, 0],
        default[:, 1],
        np.stack([r[2] for r in rows]),
        np.stack([r[3] for r in rows]),
    )


def _part_path(name: str, paths: list[str], start: int) -> Path:
    return L.cache_root() / f"{_key(name, paths)}-part-{start}.npz"


def embed_part(name: str, root: Path, paths: list[str], start: int) -> None:
    """Embed ``paths[start:]`` into a part file (resuming), for a second worker beside ``embed_fused``."""
    part = _part_path(name, paths, start)
    rows: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = []
    if part.is_file():
        z = np.load(part)
        rows = [(float(s), dv, sv, dl) for s, dv, sv, dl in zip(z["det_score"], z["default"], z["sface"], z["dlib"])]
    models, t0, first = _models(), time.time(), len(rows)
    for i in range(start + len(rows), len(paths)):
        rows.append(_one(models, str(root / paths[i])))
        if (i + 1) % CHECKPOINT == 0 or i + 1 == len(paths):
            _save(part, rows, paths[start:])
            rate = (len(rows) - first) / (time.time() - t0)
            print(f"  {name} part {start}: {i + 1}/{len(paths)} images, {rate:.2f} images/s", file=sys.stderr)


def merge_part(name: str, paths: list[str], start: int) -> None:
    """Append the part file of ``start`` to the cache (its images after the cache's, or after a gap)."""
    cache, part = L.cache_root() / f"{_key(name, paths)}.npz", _part_path(name, paths, start)
    z, p = np.load(cache), np.load(part)
    keep = min(len(z["det_score"]), start)
    arrays = {k: np.concatenate([z[k][:keep], p[k]]) for k in ("det_score", "default", "sface", "dlib")}
    arrays["paths"] = np.array([*[str(x) for x in z["paths"][:keep]], *paths[start : start + len(p["det_score"])]])
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(cache)
    gap = f", a gap of images {keep}–{start - 1}" if keep < start else ""
    print(f"  {name}: {len(arrays['paths'])} images in the cache{gap}", file=sys.stderr)


def lfw_view2_images(root: Path) -> list[str]:
    """Every image named in View-2's pairs.txt (``Person/Person_0001.jpg``), fold by fold (sorted
    within a fold), so a run stopped early still holds whole folds."""
    out: list[str] = []
    seen: set[str] = set()
    pairs = L.lfw_pairs(root)
    for fold in range(10):
        new = sorted({p for f, a, b, _ in pairs if f == fold for p in (a, b)} - seen)
        out += new
        seen.update(new)
    return out


def utkface_images(root: Path) -> list[str]:
    """Every UTKFace image, in a seeded random order, so a run stopped early holds a random sample."""
    names = sorted(p.name for p in (root / "images").glob("*.jpg"))
    order = np.random.default_rng(11).permutation(len(names))
    return [names[i] for i in order]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="*", choices=["lfw", "utkface"], default=["lfw", "utkface"])
    parser.add_argument("--part", type=int, metavar="START", help="embed the images from START on into a part file")
    parser.add_argument("--merge", type=int, metavar="START", help="append the part file of START to the cache")
    args = parser.parse_args()
    for which in args.which:
        if which == "lfw":
            name, root = "lfw-view2", L.lfw_root()
            paths = lfw_view2_images(root)
        else:
            name, root = "utkface", L.data_root() / "utkface"
            paths = utkface_images(root)
        if args.merge is not None:
            merge_part(name, paths, args.merge)
        elif args.part is not None:
            embed_part(name, root / "images", paths, args.part)
        else:
            embed_fused(name, root / "images", paths)


if __name__ == "__main__":
    main()
