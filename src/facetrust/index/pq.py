"""PqIndex ("pq"): a scan of 4-bit product-quantised codes, its best candidates re-scored exactly.

Imports faiss (as does ivf.py, which builds on this module); imported when a pq or ivf index is
created or loaded. Here: the key map, the sharding, the locks and the saved layout; pq_shard.py
holds one shard (its rows, codes and exact re-scoring), pq_codes.py the saved codebooks and codes.

Why this shape (docs/index.md has the measurements): face embeddings are close to isotropic
(effective dimension ~101 of 128), so the true top 10 of a query are barely closer than the
rest of the gallery. Graph and cluster indexes then have to visit most of the data to reach
0.99 recall (IVF needed half the lists; a usearch HNSW took 41 minutes to build 1,000,000
faces and still found 0.67). A linear scan of compact codes does not depend on the geometry:
every vector is scored every time, only coarsely. Each vector becomes 64 four-bit codes
(32 bytes; faiss's ``IndexPQFastScan`` scores them with SIMD table lookups held in registers),
and the ``candidates`` best estimates are scored again against the float32 vectors.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import faiss
import numpy as np

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
from facetrust.index.pq_codes import pack_codebook, pack_codes, unpack_codebook, unpack_codes
from facetrust.index.pq_shard import ADD_CHUNK, Shard, code_index
from facetrust.index.storage import npz_writer, read_arrays, read_manifest, write_index

if TYPE_CHECKING:  # pragma: no cover
    from numpy.typing import ArrayLike

__all__ = ["DEFAULTS", "PqIndex"]

logger = logging.getLogger(__name__)

#: Defaults chosen by bench/search.py on 2 cores (docs/index.md).
DEFAULTS: dict[str, int] = {"candidates": 1000, "train_size": 20_000}

_TRAIN_SAMPLE = 65_536  # vectors the codebooks are trained on (seeded sample of the index)
_TRAIN_SEED = 1234
_COMPACT_MIN_DEAD = 4096  # a shard is compacted once it holds this many removed rows ...
_COMPACT_DEAD_SHARE = 8  # ... and they are more than 1/8 of its live ones
_DICT_BYTES_PER_KEY = 100  # key→location dict entry, as measured for the exact index
_CODE_ARRAYS = ("codes", "code_sizes")  # each shard's serialised code index, end to end, and their lengths
_BATCH_QUERIES = 1024  # search_batch: queries per block (one read-lock hold, one faiss search per shard)

# One faiss call per shard and thread: faiss's own OpenMP threads would fight ours for the cores.
faiss.omp_set_num_threads(1)


class PqIndex:
    """Cosine search by a product-quantised scan with exact re-scoring of the best candidates.

    Args:
        dim: vector width (even widths get 2 dimensions per 4-bit code, odd ones 1).
        candidates: how many of the best code estimates are re-scored exactly per query (split
            over the shards); the recall/latency dial. At 1,000,000 faces, 1,000 gave recall@10
            0.999 at 3 ms per query on 2 cores (bench/search.py). ``k`` above it widens it.
        train_size: the codebooks are trained once the index first holds this many vectors, on
            a seeded sample of up to 65,536 of them; until then every search is exact.
        threads: shards, each searched on its own thread (0: every core).

    Every vector is kept as float32 (for re-scoring and saving) plus its 32-byte code: ~650
    bytes per face with the key map. Removal marks a row; a shard is rewritten without its
    removed rows once they are many. Re-adding an existing key replaces its vector.

    Thread safety: searches share a read lock and run concurrently (faiss and numpy release the
    GIL); ``add`` takes the write lock once per chunk of 65,536 vectors, ``remove`` once per call.
    """

    name = "pq"
    defaults: ClassVar[dict[str, int]] = DEFAULTS
    _dtype: ClassVar[Any] = np.float32

    def __init__(
        self,
        dim: int,
        *,
        candidates: int = DEFAULTS["candidates"],
        train_size: int = DEFAULTS["train_size"],
        threads: int = 0,
    ) -> None:
        self.dim = check_dim(dim)
        self.candidates = check_int(candidates, "candidates", 1, 1 << 20)
        self.train_size = check_int(train_size, "train_size", 64, 1 << 30)
        self.threads = check_int(threads, "threads", 0, 1024)
        self._lock = ReadWriteLock()
        self._shards = [Shard(self.dim, self._dtype) for _ in range(self.threads or os.cpu_count() or 1)]
        self._where: dict[int, int] = {}  # key → row * shards + shard
        self._trained: Any = None  # the trained, empty code index every shard copies
        self._next = 0  # shard that takes the next added vector (round robin)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"PqIndex(dim={self.dim}, candidates={self.candidates}, train_size={self.train_size}, "
            f"shards={len(self._shards)}, trained={self.trained}, size={len(self)})"
        )

    @property
    def trained(self) -> bool:
        """Whether the codebooks exist (before that, searches are exact scans)."""
        return self._trained is not None

    # -- writes ---------------------------------------------------------------------------------

    def add(self, keys: ArrayLike, vectors: ArrayLike) -> None:
        ks, vs = keys_and_vectors(keys, vectors, self.dim)
        for start in range(0, len(ks), ADD_CHUNK):
            with self._lock.write():
                self._add(ks[start : start + ADD_CHUNK], vs[start : start + ADD_CHUNK])
                if self._trained is None and len(self._where) >= self.train_size:
                    self._train()

    def _add(self, ks: np.ndarray, vs: np.ndarray) -> None:
        self._drop(ks.tolist())  # keys already present are replaced: their old rows are marked
        count = len(self._shards)
        order = (np.arange(len(ks)) + self._next) % count
        self._next = int((self._next + len(ks)) % count)
        mine = [np.flatnonzero(order == s) for s in range(count)]
        # the shards encode their rows in parallel (faiss releases the GIL); the key map is filled after
        firsts = self._each(lambda s: self._shards[s].append(ks[mine[s]], vs[mine[s]]) if len(mine[s]) else 0)
        for s in range(count):
            self._locate(s, ks[mine[s]], firsts[s])

    def _append(self, s: int, ks: np.ndarray, vs: np.ndarray) -> None:
        """Append rows to shard ``s`` and record where each key lives."""
        self._locate(s, ks, self._shards[s].append(ks, vs))

    def _locate(self, s: int, ks: np.ndarray, first: int) -> None:
        rows = np.arange(first, first + len(ks))
        self._where.update(zip(ks.tolist(), (rows * len(self._shards) + s).tolist(), strict=True))

    def _train(self) -> None:
        pool = np.concatenate([shard.live_rows()[1] for shard in self._shards])
        size = self._train_sample()
        if len(pool) > size:
            pool = pool[np.random.default_rng(_TRAIN_SEED).choice(len(pool), size, replace=False)]
        trained = self._new_codes()
        trained.train(np.ascontiguousarray(pool, np.float32))
        self._adopt(trained)

    # -- what a subclass (ivf) changes --------------------------------------------------------------

    def _new_codes(self) -> Any:
        """An empty, untrained faiss code index."""
        return code_index(self.dim)

    def _train_sample(self) -> int:
        return _TRAIN_SAMPLE

    def _codes_fit(self, codes: Any) -> bool:
        """Whether a saved code index (codebooks, and a shard's codes) is of this backend's kind and width."""
        return isinstance(codes, faiss.IndexPQFastScan) and codes.d == self.dim

    def _search_params(self) -> Any:
        return None

    def _adopt(self, trained: Any) -> None:
        self._trained = trained
        self._map(lambda shard: shard.encode(trained))

    def remove(self, keys: ArrayLike) -> int:
        ks = np.unique(as_keys(keys))
        if not len(ks):
            return 0
        with self._lock.write():
            return self._drop(ks.tolist())

    def _drop(self, keys: list[int]) -> int:
        count = len(self._shards)
        touched: set[int] = set()
        removed = 0
        for key in keys:
            where = self._where.pop(key, None)
            if where is None:
                continue
            row, s = divmod(where, count)
            self._shards[s].keys[row] = -1
            self._shards[s].dead += 1
            touched.add(s)
            removed += 1
        for s in touched:
            shard = self._shards[s]
            if shard.dead >= _COMPACT_MIN_DEAD and shard.dead * _COMPACT_DEAD_SHARE > shard.live:
                self._compact(s)
        return removed

    def _compact(self, s: int) -> None:
        """Rewrite shard ``s`` without its removed rows (keeping their order) and re-encode it."""
        keys, vectors = self._shards[s].live_rows()
        self._shards[s] = Shard(self.dim, self._dtype)
        self._append(s, keys, vectors)
        if self._trained is not None:
            self._shards[s].encode(self._trained)

    # -- reads ----------------------------------------------------------------------------------

    def search(self, queries: ArrayLike, k: int) -> SearchHits:
        qs = as_unit_vectors(queries, self.dim, "queries")
        k = check_k(k)
        out_keys = np.full((len(qs), k), -1, np.int64)
        out_scores = np.full((len(qs), k), -np.inf, np.float32)
        with self._lock.read():
            if self._where and len(qs):
                per_shard = max(k, math.ceil(self.candidates / len(self._shards)))
                params = self._search_params()
                parts = self._map(lambda shard: shard.top(qs, k, per_shard, params))
                keys = np.concatenate([p[0] for p in parts], axis=1)
                scores = np.concatenate([p[1] for p in parts], axis=1)
                order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
                out_keys[:] = np.take_along_axis(keys, order, axis=1)
                out_scores[:] = np.take_along_axis(scores, order, axis=1)
        return frozen_hits(out_keys, out_scores)

    def search_batch(self, queries: ArrayLike, k: int) -> SearchHits:
        return blockwise(self.search, queries, self.dim, k, _BATCH_QUERIES)

    def _map(self, work: Any) -> list[Any]:
        """``work(shard)`` for every shard, on the pool when there are several."""
        return self._each(lambda s: work(self._shards[s]))

    def _each(self, work: Callable[[int], Any]) -> list[Any]:
        """``work(s)`` for every shard number, on the pool when there are several."""
        if len(self._shards) == 1:
            return [work(0)]
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(len(self._shards), thread_name_prefix=f"facetrust-{self.name}")
            pool = self._pool
        return list(pool.map(work, range(len(self._shards))))

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: object) -> bool:
        number = as_key(key)
        if number is None:
            return False
        with self._lock.read():
            return number in self._where

    def keys(self) -> np.ndarray:
        with self._lock.read():
            return np.fromiter(self._where, np.int64, len(self._where))

    def memory_bytes(self) -> int:
        with self._lock.read():
            return (
                sum(shard.memory_bytes() for shard in self._shards)
                + sys.getsizeof(self._where)
                + _DICT_BYTES_PER_KEY * len(self._where)
            )

    # -- persistence ----------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        return {"candidates": self.candidates, "train_size": self.train_size}

    def save(self, path: Path) -> None:
        with self._lock.read():
            live = [shard.live_rows() for shard in self._shards]  # removed rows are never written
            keys = np.concatenate([k for k, _ in live])
            # each row's shard, so that a load with as many shards rebuilds the same layout
            shard_of = np.concatenate([np.full(len(k), s, np.int32) for s, (k, _) in enumerate(live)])
            write_index(
                Path(path),
                backend=self.name,
                dim=self.dim,
                count=len(keys),
                params=self.params(),
                extension="npz",
                write_data=npz_writer(
                    keys=keys,
                    vectors=np.concatenate([v for _, v in live]),
                    shards=shard_of,
                    codebook=pack_codebook(self._trained),
                    # each shard's codes of the rows written, so that a load need not re-encode them
                    **pack_codes([shard.live_codes(self._trained) for shard in self._shards]),
                ),
            )

    @classmethod
    def load(cls, path: Path) -> PqIndex:
        manifest = read_manifest(path, cls.name)
        index = cls(manifest.dim, **manifest.options(cls.defaults))
        arrays = read_arrays(manifest, ("keys", "vectors", "shards", "codebook"), optional=_CODE_ARRAYS)
        keys, vectors, shard_of, codebook = arrays["keys"], arrays["vectors"], arrays["shards"], arrays["codebook"]
        trained = unpack_codebook(manifest.data, codebook)
        if shard_of.shape != (manifest.count,) or (
            trained is not None and (trained.ntotal or not index._codes_fit(trained))
        ):
            raise InvalidParameterError(
                f"{manifest.data} holds codebooks or shard numbers for another index; rebuild it from the store",
                parameter="path",
            )
        codes = index._saved_codes(manifest.data, arrays) if trained is not None else None
        with index._lock.write():
            count = len(index._shards)
            if codes is not None:  # the saved shards, codes and all: nothing is re-encoded
                index._restore(keys, vectors, shard_of, codes)
                index._trained = trained
                index._next = int(np.argmin([shard.n for shard in index._shards]))
            elif len(keys) and int(shard_of.min()) >= 0 and int(shard_of.max()) < count:
                for s in range(count):  # the saved layout, removed rows left out
                    mine = np.flatnonzero(shard_of == s)
                    index._append(s, keys[mine], vectors[mine])
                index._next = int(np.argmin([shard.n for shard in index._shards]))
            else:  # saved with another number of shards: deal the rows out afresh
                for start in range(0, len(keys), ADD_CHUNK):
                    index._add(keys[start : start + ADD_CHUNK], vectors[start : start + ADD_CHUNK])
            if trained is not None and codes is None:
                logger.info(
                    "%s: re-encoding %d rows (its codes were not saved, or not for %d shards)",
                    manifest.data,
                    len(keys),
                    count,
                )
                index._adopt(trained)  # the saved codebooks, so the codes and recall are as before
        return index

    def _saved_codes(self, data: Path, arrays: dict[str, np.ndarray]) -> list[Any] | None:
        """Each shard's saved code index, checked against this backend; None when the file has none
        (written before codes were saved) or was saved with another number of shards."""
        if not all(name in arrays for name in _CODE_ARRAYS):
            return None
        codes = unpack_codes(data, arrays["codes"], arrays["code_sizes"], len(self._shards))
        if codes is not None and not all(self._codes_fit(c) for c in codes):
            raise InvalidParameterError(
                f"{data} holds shard codes for another index; rebuild it from the store", parameter="path"
            )
        return codes

    def _restore(self, keys: np.ndarray, vectors: np.ndarray, shard_of: np.ndarray, codes: list[Any]) -> None:
        """Rebuild every shard as saved: its rows in the saved order, its saved codes of them."""
        if len(keys) and (int(shard_of.min()) < 0 or int(shard_of.max()) >= len(self._shards)):
            raise InvalidParameterError(
                f"shard numbers outside 0..{len(self._shards) - 1}; rebuild it from the store", parameter="path"
            )
        for s in range(len(self._shards)):
            mine = np.flatnonzero(shard_of == s)
            if codes[s].ntotal != len(mine):
                raise InvalidParameterError(
                    f"shard {s} has {len(mine)} rows but {codes[s].ntotal} codes; rebuild it from the store",
                    parameter="path",
                )
            self._append(s, keys[mine], vectors[mine])
            self._shards[s].codes = codes[s]
