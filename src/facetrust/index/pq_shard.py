"""One shard of a pq or ivf index: its rows, their keys and codes, and the exact re-scoring of its code scan."""

from __future__ import annotations

import math
from typing import Any

import faiss
import numpy as np

__all__ = ["ADD_CHUNK", "Shard", "code_index"]

ADD_CHUNK = 65_536  # vectors encoded per faiss call, and per write-lock hold during a bulk add
_MIN_CAPACITY = 1024
_RESCORE_BYTES = 32 << 20  # candidate vectors gathered for exact re-scoring at a time, per shard


class Shard:
    """One slice of the index: rows (float32, or float16 for ivf), their keys (-1 once removed) and their codes."""

    def __init__(self, dim: int, dtype: Any = np.float32) -> None:
        self.dim = dim
        self.vectors = np.empty((0, dim), dtype)
        self.keys = np.empty(0, np.int64)
        self.n = 0  # rows in use, removed ones included
        self.dead = 0
        self.codes: Any = None  # a trained faiss.IndexPQFastScan holding rows 0..n-1, or None

    @property
    def live(self) -> int:
        return self.n - self.dead

    def append(self, keys: np.ndarray, vectors: np.ndarray) -> int:
        """Append rows; returns the first new row number."""
        start, stop = self.n, self.n + len(keys)
        if stop > len(self.keys):
            capacity = max(stop, len(self.keys) + len(self.keys) // 2, _MIN_CAPACITY)
            grown_vectors = np.empty((capacity, self.dim), self.vectors.dtype)
            grown_keys = np.full(capacity, -1, np.int64)
            grown_vectors[:start] = self.vectors[:start]
            grown_keys[:start] = self.keys[:start]
            self.vectors, self.keys = grown_vectors, grown_keys
        self.vectors[start:stop] = vectors
        self.keys[start:stop] = keys
        if self.codes is not None:
            self.codes.add(np.ascontiguousarray(vectors, np.float32))
        self.n = stop
        return start

    def encode(self, trained: Any) -> None:
        """Encode every row with a copy of the ``trained`` (empty) code index."""
        codes = faiss.clone_index(trained)
        for start in range(0, self.n, ADD_CHUNK):
            codes.add(np.ascontiguousarray(self.vectors[start : min(self.n, start + ADD_CHUNK)], np.float32))
        self.codes = codes

    def live_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Keys and vectors of the rows not removed, in row order."""
        kept = self.keys[: self.n] >= 0
        return self.keys[: self.n][kept], self.vectors[: self.n][kept]

    def live_codes(self, trained: Any) -> Any:
        """The code index of the live rows only, in row order: the shard's own when it has no removed
        rows, else a fresh encoding (so that no code of a removed face is ever saved); None untrained."""
        if self.codes is None or not self.dead:
            return self.codes
        codes = faiss.clone_index(trained)
        kept = np.flatnonzero(self.keys[: self.n] >= 0)
        for start in range(0, len(kept), ADD_CHUNK):
            codes.add(np.ascontiguousarray(self.vectors[kept[start : start + ADD_CHUNK]], np.float32))
        return codes

    def top(self, qs: np.ndarray, k: int, candidates: int, params: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Keys and exact scores of this shard's ``k`` best live rows per query (padded, best first);
        ``params``: faiss search parameters (ivf: how many lists to probe)."""
        keys = np.full((len(qs), k), -1, np.int64)
        scores = np.full((len(qs), k), -np.inf, np.float32)
        if not self.live:
            return keys, scores
        if self.codes is None or self.n <= candidates:
            for i, q in enumerate(qs):
                self._exact(q, k, keys[i], scores[i])
            return keys, scores
        _, rows = self.codes.search(qs, candidates, params=params)
        safe = np.maximum(rows, 0)
        valid = (rows >= 0) & (self.keys[safe] >= 0)
        step = max(1, _RESCORE_BYTES // (self.vectors.itemsize * self.dim * rows.shape[1]))
        for start in range(0, len(qs), step):
            block = slice(start, start + step)
            self._rescore(qs[block], safe[block], valid[block], keys[block], scores[block])
        # removed rows crowded the candidates out: score this shard fully for those queries
        for i in np.flatnonzero(valid.sum(axis=1) < min(k, self.live)).tolist():
            self._exact(qs[i], k, keys[i], scores[i])
        return keys, scores

    def _rescore(
        self, qs: np.ndarray, rows: np.ndarray, valid: np.ndarray, keys_out: np.ndarray, scores_out: np.ndarray
    ) -> None:
        """Exact scores of each query's candidate ``rows`` (where ``valid``); the best, best first."""
        exact = np.einsum("bcd,bd->bc", self.vectors[rows], qs)
        exact[~valid] = -np.inf
        top = min(keys_out.shape[1], exact.shape[1])
        part = np.argpartition(-exact, top - 1, axis=1)[:, :top] if top < exact.shape[1] else np.argsort(-exact, axis=1)
        best = np.take_along_axis(exact, part, axis=1)
        order = np.argsort(-best, axis=1, kind="stable")
        best = np.take_along_axis(best, order, axis=1)
        chosen = np.take_along_axis(rows, np.take_along_axis(part, order, axis=1), axis=1)
        keys_out[:, :top] = np.where(np.isfinite(best), self.keys[chosen], -1)
        scores_out[:, :top] = best

    def _exact(self, q: np.ndarray, k: int, keys_out: np.ndarray, scores_out: np.ndarray) -> None:
        # blocks of rows scored in place: a float16 matrix is never widened whole
        scores = np.empty(self.n, np.float32)
        for start in range(0, self.n, ADD_CHUNK):
            stop = min(self.n, start + ADD_CHUNK)
            scores[start:stop] = self.vectors[start:stop] @ q
        rows = np.flatnonzero(self.keys[: self.n] >= 0) if self.dead else np.arange(self.n)
        _best(rows, scores[rows] if self.dead else scores, self.keys, keys_out, scores_out)

    def memory_bytes(self) -> int:
        code_bytes = 0
        if self.codes is not None:  # codes are packed in blocks of bbs rows, M2 half-bytes per row
            blocks = math.ceil(self.n / self.codes.bbs)
            if hasattr(self.codes, "nlist"):  # ivf: each list padded to whole blocks, plus an int64 id a row
                blocks += self.codes.nlist
                code_bytes = 8 * self.n
            code_bytes += blocks * self.codes.bbs * self.codes.M2 // 2
        return self.vectors.nbytes + self.keys.nbytes + code_bytes


def _best(
    rows: np.ndarray, scores: np.ndarray, row_keys: np.ndarray, keys_out: np.ndarray, scores_out: np.ndarray
) -> None:
    """Write the best ``len(keys_out)`` of ``rows`` (by ``scores``) into the output row, best first."""
    top = min(len(keys_out), len(rows))
    if not top:
        return
    part = np.argpartition(-scores, top - 1)[:top] if top < len(rows) else np.arange(len(rows))
    order = part[np.argsort(-scores[part], kind="stable")]
    keys_out[:top] = row_keys[rows[order]]
    scores_out[:top] = scores[order]


def code_index(dim: int) -> Any:
    """An empty, untrained fast-scan PQ index: 4-bit codes over 2 dimensions each (1 if ``dim`` is odd)."""
    subquantizers = dim // 2 if dim % 2 == 0 else dim
    index = faiss.IndexPQFastScan(dim, subquantizers, 4, faiss.METRIC_INNER_PRODUCT)
    index.pq.cp.min_points_per_centroid = 1  # small indexes train on few points; no warning for that
    return index
