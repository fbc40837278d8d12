"""HnswIndex ("hnsw"): approximate search over a usearch HNSW graph (the only module importing usearch).

Imported only when an hnsw index is created or loaded (``facetrust.index`` imports it lazily).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from usearch.index import BatchMatches, Index

from facetrust.errors import InvalidParameterError
from facetrust.index.base import ReadWriteLock, SearchHits
from facetrust.index.checks import (
    as_key,
    as_keys,
    as_unit_vectors,
    blockwise,
    check_dim,
    check_int,
    check_k,
    frozen_hits,
    keys_and_vectors,
)
from facetrust.index.storage import read_manifest, write_index

if TYPE_CHECKING:  # pragma: no cover
    from numpy.typing import ArrayLike

__all__ = ["DEFAULTS", "HnswIndex"]

_DTYPES = ("f16", "f32", "i8")

#: Defaults chosen by bench/search.py on 2 cores (see docs/index.md for the measurements).
DEFAULTS: dict[str, Any] = {
    "dtype": "f16",
    "connectivity": 32,
    "expansion_add": 64,
    "expansion_search": 256,
}

_ADD_CHUNK = 65536  # vectors per write-lock hold during a bulk add, so searches interleave
_PARALLEL_ADD = 256  # smaller adds run on the calling thread only (spawning workers costs more)
_CHECK_EXPANSION = 16  # beam of the self-search that finds vectors a parallel add left unlinked
_BATCH_QUERIES = 4096  # search_batch: queries per block (one read-lock hold)


class HnswIndex:
    """Approximate cosine search over a usearch HNSW graph (``metric="ip"`` on unit vectors).

    Args:
        dim: vector width.
        dtype: how vectors are stored in the graph: ``"f16"`` (default; scores within ~1e-3 of
            float32), ``"f32"`` or ``"i8"`` (smallest; scores within ~1e-2).
        connectivity: graph edges per node (HNSW's M); more edges, better recall, more memory.
        expansion_add: candidate list size while inserting (efConstruction); slower builds,
            better graphs.
        expansion_search: candidate list size while searching (ef); the recall/latency dial.
            It can be changed later (``index.expansion_search = 512``); ``k`` above it widens it.
        threads: workers for bulk adds and batched searches (0: every core).

    Removal marks a node deleted; usearch reuses its slot for the next added vector and never
    returns it from a search. Re-adding an existing key removes the old vector first.

    Thread safety: searches share a read lock and run concurrently; ``add`` takes the write lock
    once per chunk of 65,536 vectors and ``remove`` once per call. A search therefore never sees
    a half-inserted chunk, and a long bulk load does not stall searches for its whole duration
    (each search sees some prefix of the chunks).
    """

    name = "hnsw"

    def __init__(
        self,
        dim: int,
        *,
        dtype: str = DEFAULTS["dtype"],
        connectivity: int = DEFAULTS["connectivity"],
        expansion_add: int = DEFAULTS["expansion_add"],
        expansion_search: int = DEFAULTS["expansion_search"],
        threads: int = 0,
    ) -> None:
        self.dim = check_dim(dim)
        if dtype not in _DTYPES:
            raise InvalidParameterError(
                f"Unknown dtype {dtype!r} for the hnsw index; available: {', '.join(_DTYPES)}", parameter="dtype"
            )
        self.dtype = dtype
        self.connectivity = check_int(connectivity, "connectivity", 2, 256)
        self.expansion_add = check_int(expansion_add, "expansion_add", 1, 4096)
        self.threads = check_int(threads, "threads", 0, 1024)
        self._lock = ReadWriteLock()
        #: vectors re-inserted because a parallel add left them unreachable (see ``_relink_stranded``)
        self.relinked = 0
        self._index = Index(
            ndim=self.dim,
            # usearch's i8 inner product is in raw integer units; its i8 cosine is in [-1, 1]
            metric="cos" if dtype == "i8" else "ip",
            dtype=dtype,
            connectivity=self.connectivity,
            expansion_add=self.expansion_add,
            expansion_search=check_int(expansion_search, "expansion_search", 1, 4096),
        )

    def __repr__(self) -> str:
        return (
            f"HnswIndex(dim={self.dim}, dtype={self.dtype!r}, connectivity={self.connectivity}, "
            f"expansion_add={self.expansion_add}, expansion_search={self.expansion_search}, size={len(self)})"
        )

    @property
    def expansion_search(self) -> int:
        return int(self._index.expansion_search)

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        value = check_int(value, "expansion_search", 1, 4096)
        with self._lock.write():
            self._index.expansion_search = value  # type: ignore[misc]  # usearch's setter is not beside its getter

    # -- writes ---------------------------------------------------------------------------------

    def add(self, keys: ArrayLike, vectors: ArrayLike) -> None:
        ks, vs = keys_and_vectors(keys, vectors, self.dim)
        threads = self.threads if len(ks) >= _PARALLEL_ADD else 1
        for start in range(0, len(ks), _ADD_CHUNK):
            chunk = ks[start : start + _ADD_CHUNK].astype(np.uint64)
            vectors_chunk = vs[start : start + _ADD_CHUNK]
            with self._lock.write():
                present = np.asarray(self._index.contains(chunk), dtype=bool)
                if present.any():
                    self._index.remove(chunk[present])
                self._index.add(chunk, vectors_chunk, threads=threads)
                if threads != 1:
                    self._relink_stranded(chunk, vectors_chunk)

    def _relink_stranded(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Re-insert, one thread, the new vectors a quick self-search misses (usearch #735).

        Concurrent inserts in usearch <= 2.26 can leave a node stored but linked from nowhere, so no
        search ever returns it (0.3% of 20,000 face-like vectors on 2 threads, bench/search.py). A
        search for each new vector with a small beam finds every linked node but a few; those few
        and the stranded ones are removed and added again single-threaded, which links them.
        """
        ef = self._index.expansion_search
        self._index.expansion_search = _CHECK_EXPANSION  # type: ignore[misc]
        try:
            found = self._index.search(vectors, 1, threads=self.threads)
        finally:
            self._index.expansion_search = ef  # type: ignore[misc]
        first = np.atleast_2d(found.keys)[:, 0]
        missed = first != keys
        if isinstance(found, BatchMatches):
            missed |= np.asarray(found.counts) < 1
        if missed.any():
            self._index.remove(keys[missed])
            self._index.add(keys[missed], vectors[missed], threads=1)
            self.relinked += int(missed.sum())

    def remove(self, keys: ArrayLike) -> int:
        ks = np.unique(as_keys(keys)).astype(np.uint64)
        if not len(ks):
            return 0
        with self._lock.write():
            return int(self._index.remove(ks))

    # -- reads ----------------------------------------------------------------------------------

    def search(self, queries: ArrayLike, k: int) -> SearchHits:
        qs = as_unit_vectors(queries, self.dim, "queries")
        k = check_k(k)
        out_keys = np.full((len(qs), k), -1, np.int64)
        out_scores = np.full((len(qs), k), -np.inf, np.float32)
        with self._lock.read():
            if len(self._index) and len(qs):
                found = self._index.search(qs, k, threads=1 if len(qs) == 1 else self.threads)
                keys, distances = np.atleast_2d(found.keys), np.atleast_2d(found.distances)
                # one query gives unpadded Matches, several give padded BatchMatches with counts
                counts = np.asarray(found.counts) if isinstance(found, BatchMatches) else np.array([keys.shape[1]])
                valid = np.arange(keys.shape[1])[None, :] < counts[:, None]
                width = keys.shape[1]
                out_keys[:, :width] = np.where(valid, keys.astype(np.int64), -1)
                np.subtract(1.0, distances, out=out_scores[:, :width], where=valid)  # padding is garbage
        return frozen_hits(out_keys, out_scores)

    def search_batch(self, queries: ArrayLike, k: int) -> SearchHits:
        return blockwise(self.search, queries, self.dim, k, _BATCH_QUERIES)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: object) -> bool:
        number = as_key(key)
        if number is None:
            return False
        with self._lock.read():
            return bool(self._index.contains(number))

    def keys(self) -> np.ndarray:
        with self._lock.read():
            return np.asarray(self._index.keys[:], dtype=np.uint64).astype(np.int64)

    def memory_bytes(self) -> int:
        return int(self._index.memory_usage)

    # -- persistence ----------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype,
            "connectivity": self.connectivity,
            "expansion_add": self.expansion_add,
            "expansion_search": self.expansion_search,
        }

    def save(self, path: Path) -> None:
        def write(data: Path) -> None:
            self._index.save(os.fspath(data))

        with self._lock.read():
            write_index(
                Path(path),
                backend=self.name,
                dim=self.dim,
                count=len(self._index),
                params=self.params(),
                extension="usearch",
                write_data=write,
            )

    @classmethod
    def load(cls, path: Path) -> HnswIndex:
        manifest = read_manifest(path, cls.name)
        index = cls(manifest.dim, **manifest.options(DEFAULTS))
        try:
            meta = Index.metadata(os.fspath(manifest.data))
            if not meta or meta["dimensions"] != manifest.dim or meta["count_present"] != manifest.count:
                raise ValueError(f"header {meta} disagrees with the manifest")
            index._index.load(os.fspath(manifest.data))
        except (RuntimeError, ValueError, KeyError) as exc:
            raise InvalidParameterError(
                f"{manifest.data} is not a readable hnsw index ({exc}); rebuild it from the store", parameter="path"
            ) from exc
        return index
