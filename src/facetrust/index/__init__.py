"""Vector indexes over face embeddings: one protocol, four backends, chosen by name or by size.

The store (SQLite) is the source of truth; an index is derived from it and can always be rebuilt::

    from facetrust.index import create_index, load_index
    index = create_index("auto", 128, expected_size=len(faces))   # exact below 100,000, else pq
    index.add(face_ids, embeddings)
    hits = index.search(query, k=10)      # hits.keys (q, k) int64 padded with -1; hits.scores cosine
    index.save(path); index = load_index(path)

``exact`` scores every vector with numpy/BLAS (exact, linear time); ``pq`` scans 32-byte
product-quantised codes with faiss and re-scores the best 1,000 exactly (approximate, linear
time with a small constant); ``ivf`` scans the same kind of codes in the lists of an inverted
file nearest the query and re-scores from float16 vectors (approximate; half pq's memory, but
slower than pq at 1,000,000 faces for the same recall, so ``auto`` does not pick it); ``hnsw``
searches a usearch graph (approximate, logarithmic time, but slow to build and low in recall on
face embeddings: docs/index.md). numpy, faiss and usearch are imported on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facetrust.errors import InvalidParameterError
from facetrust.index.base import MAX_K, SearchHits, VectorIndex

__all__ = [
    "AUTO_THRESHOLD",
    "MAX_K",
    "SearchHits",
    "VectorIndex",
    "available_backends",
    "choose_backend",
    "create_index",
    "load_index",
]

#: ``auto`` picks ``exact`` below this many vectors and ``pq`` from it on: where exact search
#: reaches ~5 ms per query on 2 cores (bench/search.py, docs/index.md). Below it every search is
#: exact, so no committed face can be missed.
AUTO_THRESHOLD = 100_000

_BACKENDS = ("exact", "pq", "hnsw", "ivf")


def available_backends() -> tuple[str, ...]:
    """The backend names ``create_index`` accepts besides ``"auto"``."""
    return _BACKENDS


def choose_backend(expected_size: int) -> str:
    """The backend ``auto`` picks for an index expected to hold ``expected_size`` vectors."""
    if isinstance(expected_size, bool) or not isinstance(expected_size, int) or expected_size < 0:
        raise InvalidParameterError(
            f"expected_size must be a non-negative integer, got {expected_size!r}", parameter="expected_size"
        )
    return "pq" if expected_size >= AUTO_THRESHOLD else "exact"


def _backend_class(backend: str) -> Any:
    if backend == "exact":
        from facetrust.index.exact import ExactIndex

        return ExactIndex
    if backend == "hnsw":
        from facetrust.index.hnsw import HnswIndex

        return HnswIndex
    if backend == "pq":
        from facetrust.index.pq import PqIndex

        return PqIndex
    if backend == "ivf":
        from facetrust.index.ivf import IvfIndex

        return IvfIndex
    raise InvalidParameterError(
        f"Unknown index backend {backend!r}; available: auto, {', '.join(_BACKENDS)}", parameter="backend"
    )


def create_index(backend: str, dim: int, *, expected_size: int = 0, **options: Any) -> VectorIndex:
    """A new, empty index.

    Args:
        backend: ``"exact"``, ``"pq"``, ``"hnsw"``, ``"ivf"`` or ``"auto"`` (``choose_backend(expected_size)``,
            decided once, here: a collection that later outgrows the threshold is rebuilt by
            its owner).
        dim: vector width (128 for SFace).
        expected_size: how many vectors the index will hold; only ``auto`` uses it.
        options: backend options (``ExactIndex``/``PqIndex``/``HnswIndex``/``IvfIndex`` arguments). ``auto`` takes none,
            so that an option never depends on which backend a size selects.

    Raises:
        InvalidParameterError: unknown backend or option, or a bad value.
    """
    if backend == "auto":
        if options:
            raise InvalidParameterError(
                f"Backend 'auto' takes no options (got {', '.join(sorted(options))}); "
                "name exact, pq, hnsw or ivf to tune one",
                parameter="options",
            )
        backend = choose_backend(expected_size)
    cls = _backend_class(backend)
    accepted = _option_names(cls)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InvalidParameterError(
            f"Unknown option {unknown[0]!r} for the {backend} index; available: {', '.join(sorted(accepted))}",
            parameter=unknown[0],
        )
    index: VectorIndex = cls(dim, **options)
    return index


def _option_names(cls: Any) -> set[str]:
    import inspect

    params = inspect.signature(cls).parameters.values()
    return {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def load_index(path: Path | str) -> VectorIndex:
    """Load an index saved with ``index.save(path)``, whichever backend wrote it."""
    from facetrust.index.storage import read_manifest

    manifest = read_manifest(Path(path))
    if manifest.backend not in _BACKENDS:
        raise InvalidParameterError(
            f"{path} was written by index backend {manifest.backend!r}, which this version does not have; "
            f"available: {', '.join(_BACKENDS)}",
            parameter="path",
        )
    index: VectorIndex = _backend_class(manifest.backend).load(Path(path))
    return index
