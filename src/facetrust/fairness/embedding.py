"""Embed every image of an audit dataset once: a process pool, and a resumable cache.

Each image gives the embedding of its largest recognisable face (the engine's detector,
quality rules and alignment), or a status saying there was none (a failure to detect) or
that the file could not be read (left out of every rate). Results are cached under the
user cache directory (``<cache>/audit/``, never inside a repository), keyed by the model id,
the detector, the detection settings and the dataset hash; a partial file is saved as the
work goes, so an interrupted run resumes where it stopped. Cache files are owner-only:
embeddings are biometric data.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facetrust.errors import InvalidInputError, ModelError
from facetrust.files import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.config import Settings
    from facetrust.engine import FaceEngine

__all__ = ["FACE", "NO_FACE", "UNREADABLE", "DatasetEmbeddings", "embed_chunk", "embed_images"]

log = logging.getLogger(__name__)

FACE, NO_FACE, UNREADABLE = 1, 0, -1
CHUNK = 32
SAVE_EVERY = 1024  # images between partial saves


@dataclass(frozen=True)
class DatasetEmbeddings:
    """Per image: status (FACE, NO_FACE, UNREADABLE) and the vector (zeros without a face)."""

    model: str
    vectors: np.ndarray
    status: np.ndarray
    cached: bool = False


def embed_chunk(engine: FaceEngine, paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, status) of ``paths``: one recogniser batch for the whole chunk."""
    import numpy as np

    status = np.full(len(paths), NO_FACE, dtype=np.int8)
    crops, where = [], []
    for i, path in enumerate(paths):
        try:
            rgb = engine.load_image(path)
        except InvalidInputError as exc:
            log.warning("audit: %s", exc.message)
            status[i] = UNREADABLE
            continue
        usable = [f for f in engine.detect(rgb) if f.recognisable][:1]
        if usable:
            crops.append(engine.align(rgb, usable[0].landmarks))
            where.append(i)
    vectors = np.zeros((len(paths), engine.recogniser.dim), dtype=np.float32)
    if crops:
        vectors[where] = engine.embed_crops(np.stack(crops))
        status[where] = FACE
    return vectors, status


_WORKER: dict[str, FaceEngine] = {}


def _init_worker(settings: Settings) -> None:
    from facetrust.engine import FaceEngine

    _WORKER["engine"] = FaceEngine.load(settings.replace(threads=1))


def _work(paths: list[str]) -> tuple[str, np.ndarray, np.ndarray]:
    engine = _WORKER["engine"]
    vectors, status = embed_chunk(engine, paths)
    return engine.model_id, vectors, status


def cache_key(engine: FaceEngine, fingerprint: str) -> str:
    """What the cached embeddings depend on: models, detection settings, the dataset hash."""
    s = engine.settings
    parts = [
        engine.model_id,
        engine.detector.model_id,
        fingerprint,
        s.detection_threshold,
        s.min_face_size,
        s.detector_max_side,
        s.max_image_bytes,
        s.max_image_pixels,
        "v2",  # v2: a face turned in the picture gets its landmarks found again turned upright (straighten.py)
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


def _chunks(paths: list[str], start: int) -> Iterator[list[str]]:
    for i in range(start, len(paths), CHUNK):
        yield paths[i : i + CHUNK]


def _save(path: Path, vectors: np.ndarray, status: np.ndarray, done: int) -> None:
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: np.savez(fh, vectors=vectors[:done], status=status[:done]))


def _load(path: Path, total: int, dim: int) -> tuple[np.ndarray, np.ndarray, int]:
    import numpy as np

    vectors = np.zeros((total, dim), dtype=np.float32)
    status = np.full(total, NO_FACE, dtype=np.int8)
    if not path.is_file():
        return vectors, status, 0
    try:
        with np.load(path) as data:
            done = min(len(data["status"]), total)
            vectors[:done], status[:done] = data["vectors"][:done], data["status"][:done]
    except (OSError, ValueError, KeyError):
        log.warning("audit: ignoring an unreadable embedding cache %s", path)
        return vectors, status, 0
    return vectors, status, done


def _run(engine: FaceEngine, paths: list[str], start: int, workers: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    if workers <= 1:
        for chunk in _chunks(paths, start):
            yield embed_chunk(engine, chunk)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers, _init_worker, (engine.settings,)) as pool:
        for model, vectors, status in pool.imap(_work, _chunks(paths, start)):
            if model != engine.model_id:
                raise ModelError(f"Audit workers embed with {model!r}, not the engine's {engine.model_id!r}")
            yield vectors, status


def embed_images(
    engine: FaceEngine,
    paths: list[str],
    *,
    fingerprint: str,
    cache_dir: Path | None,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> DatasetEmbeddings:
    """Embed ``paths`` (cached under ``cache_dir`` when given; resumes a partial run).

    ``workers > 1`` runs a pool of processes that each load the default engine from
    ``engine.settings``; use 1 for any other engine (e.g. a test double).
    """
    dim = engine.recogniser.dim
    cache = cache_dir / "audit" / f"embeddings-{cache_key(engine, fingerprint)}.npz" if cache_dir else None
    vectors, status, done = _load(cache, len(paths), dim) if cache else _load(Path("/nonexistent"), len(paths), dim)
    was_cached = done == len(paths) and done > 0
    if progress and done:
        progress(done)
    since_save = 0
    for chunk_vectors, chunk_status in _run(engine, paths, done, workers) if done < len(paths) else iter(()):
        n = len(chunk_status)
        vectors[done : done + n], status[done : done + n] = chunk_vectors, chunk_status
        done += n
        since_save += n
        if progress:
            progress(n)
        if cache and (since_save >= SAVE_EVERY or done == len(paths)):
            _save(cache, vectors, status, done)
            since_save = 0
    return DatasetEmbeddings(engine.model_id, vectors, status, cached=was_cached)
