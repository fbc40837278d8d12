"""IvfIndex ("ivf"): the pq scan restricted to the nearest lists of an inverted file, for millions of faces.

At 10,000,000 faces a scan of every 32-byte code (the pq backend) reads 320 MB per query, about
30 ms on 2 cores. Here a coarse quantiser (k-means, ``lists`` centroids) files each vector in the
list of its nearest centroid, and a search scans the codes of the ``probes`` lists nearest the
query only. The codes are 4-bit fast-scan PQ codes of the residual (vector minus its centroid),
which estimate scores better than pq's codes of the vector itself. The ``candidates`` best
estimates are re-scored against the vectors, kept in float16 (256 bytes a face at 128
dimensions, against pq's 512): scores are cosine similarities within about 1e-3.

Everything else (shards searched on their own threads, removal by marking, compaction, saving
the codebooks and codes with the index) is the pq backend's. docs/index.md has the measurements: the
embeddings' near-isotropy makes ``probes`` large (half the lists give recall@10 0.98 at 1M), so
the inverted file saves less scanning than it costs, and ``auto`` does not pick this backend.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import faiss
import numpy as np

from facetrust.errors import InvalidParameterError
from facetrust.index.checks import check_int
from facetrust.index.pq import PqIndex

__all__ = ["DEFAULTS", "IvfIndex"]

#: Defaults measured by bench/search_large.py at 1,000,000 faces on 2 cores (docs/index.md).
DEFAULTS: dict[str, int] = {
    "lists": 1024,
    "probes": 512,
    "code_bytes": 32,
    "candidates": 4000,
    "train_size": 200_000,
}

_POINTS_PER_LIST = 40  # k-means trains on this many sampled vectors per list (at least 65,536 in all)


class IvfIndex(PqIndex):
    """Cosine search over an inverted file of 4-bit PQ codes, the best candidates re-scored.

    Args:
        dim: vector width (even widths get 2 dimensions per 4-bit code, odd ones 1).
        lists: coarse centroids (inverted lists); at least 1.
        probes: lists scanned per query (at most ``lists``; default half of them): the
            recall/latency dial, adjustable on a live index (``index.probes = 1536``).
        code_bytes: bytes of code per face: 4-bit codes over the largest divisor of ``dim`` up to
            ``2 × code_bytes`` sub-vectors (32 at 128 dimensions: 2 dimensions per code).
        candidates: code estimates re-scored per query (split over the shards).
        train_size: the quantiser and codebooks are trained once the index first holds this many
            vectors (and at least ``lists``), on a seeded sample of ``40 × lists`` of them (at least
            65,536); until then every search is an exact scan.
        threads: shards, each searched on its own thread (0: every core).

    Memory: 256 B of float16 + 32 B of code + 8 B of list id + 8 B of key per face, plus the key
    map (~100 B) and growth slack: 400–550 B per face.
    """

    name = "ivf"
    defaults: ClassVar[dict[str, int]] = DEFAULTS
    _dtype: ClassVar[Any] = np.float16

    def __init__(
        self,
        dim: int,
        *,
        lists: int = DEFAULTS["lists"],
        probes: int | None = None,
        code_bytes: int = DEFAULTS["code_bytes"],
        candidates: int = DEFAULTS["candidates"],
        train_size: int = DEFAULTS["train_size"],
        threads: int = 0,
    ) -> None:
        self.lists = check_int(lists, "lists", 1, 1 << 20)
        self.code_bytes = check_int(code_bytes, "code_bytes", 1, 4096)
        self._probes = 1
        self.probes = max(1, self.lists // 2) if probes is None else probes
        super().__init__(
            dim,
            candidates=candidates,
            train_size=max(check_int(train_size, "train_size", 64, 1 << 30), lists),
            threads=threads,
        )

    def __repr__(self) -> str:
        return (
            f"IvfIndex(dim={self.dim}, lists={self.lists}, probes={self.probes}, candidates={self.candidates}, "
            f"shards={len(self._shards)}, trained={self.trained}, size={len(self)})"
        )

    @property
    def probes(self) -> int:
        """Lists scanned per query."""
        return self._probes

    @probes.setter
    def probes(self, value: int) -> None:
        probes = check_int(value, "probes", 1, 1 << 20)
        if probes > self.lists:
            raise InvalidParameterError(
                f"probes must be at most lists ({self.lists}), got {value!r}", parameter="probes"
            )
        self._probes = probes

    def params(self) -> dict[str, Any]:
        return {**super().params(), "lists": self.lists, "probes": self.probes, "code_bytes": self.code_bytes}

    def _new_codes(self) -> Any:
        quantiser: Any = faiss.IndexFlatIP(self.dim)
        subquantizers = self._subquantizers()
        index = faiss.IndexIVFPQFastScan(quantiser, self.dim, self.lists, subquantizers, 4, faiss.METRIC_INNER_PRODUCT)
        index.by_residual = True  # codes of the residual: better estimates (faiss leaves it off for inner product)
        index.own_fields = True
        quantiser.this.disown()  # the code index owns (and frees) its quantiser
        index.cp.min_points_per_centroid = 1  # small indexes train on few points; no warning for that
        index.pq.cp.min_points_per_centroid = 1
        return index

    def _subquantizers(self) -> int:
        """4-bit codes: the largest divisor of ``dim`` up to ``2 × code_bytes``."""
        return max(m for m in range(1, min(self.dim, 2 * self.code_bytes) + 1) if self.dim % m == 0)

    def _train_sample(self) -> int:
        return max(65_536, _POINTS_PER_LIST * self.lists)

    def _train(self) -> None:
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(os.cpu_count() or 1)  # k-means on every core, once
        try:
            super()._train()
        finally:
            faiss.omp_set_num_threads(threads)

    def _codes_fit(self, codes: Any) -> bool:
        return (
            isinstance(codes, faiss.IndexIVFPQFastScan)
            and codes.d == self.dim
            and codes.nlist == self.lists
            and codes.pq.M == self._subquantizers()
        )

    def _search_params(self) -> Any:
        params: Any = faiss.SearchParametersIVF()
        params.nprobe = self._probes
        return params
