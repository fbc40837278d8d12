"""FairCal (Salvador et al., ICLR 2022) for bench/fairness.py: a bench-only comparison with AS-norm.

Embeddings of the calibration part are clustered (k-means, no labels); each cluster gets the
FMR table of the impostor pairs it takes part in, and a pair's FMR is the mean of its two
clusters'. Calibrating needs identity labels (which pairs are impostors), not demographic ones.
"""

from __future__ import annotations

import numpy as np

from facetrust.fairness.audit import groups_of
from facetrust.fairness.datasets import DatasetSpec
from facetrust.fairness.embedding import FACE, DatasetEmbeddings
from facetrust.fairness.normfit import impostor_rows


class FairCalScorer:
    """FairCal (Salvador et al., ICLR 2022): per-cluster FMR tables; a pair's FMR is the mean of its two clusters'.

    Scores are −log10 of that FMR, so higher is more similar and the audit machinery applies.
    """

    def __init__(self, vectors: np.ndarray, centroids: np.ndarray, grid: np.ndarray, tables: np.ndarray) -> None:
        self.vectors, self.grid, self.tables = vectors, grid, tables
        self.cluster = np.argmax(vectors @ centroids.T, axis=1)

    def _score(self, raw: np.ndarray, ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
        n = len(self.grid)
        pos = np.clip(((raw + 1.0) * ((n - 1) / 2.0)).astype(np.int64), 0, n - 1)  # grid: n steps over [-1, 1]
        flat = self.tables.ravel()
        fmr = 0.5 * (flat[ca * n + pos] + flat[cb * n + pos])
        return -np.log10(fmr)

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        raw = self.vectors[rows] @ self.vectors[cols].T
        return self._score(raw, self.cluster[rows][:, None], self.cluster[cols][None, :])

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raw = np.einsum("ij,ij->i", self.vectors[a], self.vectors[b])
        return self._score(raw, self.cluster[a], self.cluster[b])


def impostor_index_pairs(spec: DatasetSpec, status: np.ndarray, analysis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows (a, b) of the same-group impostor pairs of one of the spec's analyses, as the audit forms
    them (two empty arrays when no face is left, e.g. a dataset taken out of a fit)."""
    a, b = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for g in groups_of(spec, status, spec.analyses[analysis]):
        ra, rb = impostor_rows(g.rows[g.has_face], g.identity[g.has_face], g.cell[g.has_face])
        a.append(ra)
        b.append(rb)
    return np.concatenate(a), np.concatenate(b)


def faircal(spec_a: DatasetSpec, emb_a: DatasetEmbeddings, vectors: np.ndarray, k: int, seed: int) -> FairCalScorer:
    """Cluster half A's faces; per cluster, the FMR table of the impostor pairs it takes part in."""
    import cv2

    face = np.ascontiguousarray(emb_a.vectors[emb_a.status == FACE])
    cv2.setRNGSeed(seed)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-4)
    _, _, centres = cv2.kmeans(face, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    grid = np.linspace(-1.0, 1.0, 4001)
    n = len(grid)
    cluster = np.argmax(emb_a.vectors @ centres.T, axis=1)
    ia, ib = impostor_index_pairs(spec_a, emb_a.status)
    counts = np.zeros(k * n)
    for s in range(0, len(ia), 4_000_000):
        a, b = ia[s : s + 4_000_000], ib[s : s + 4_000_000]
        raw = np.einsum("ij,ij->i", emb_a.vectors[a], emb_a.vectors[b])
        pos = np.clip(((raw + 1.0) * ((n - 1) / 2.0)).astype(np.int64), 0, n - 1)
        ca, cb = cluster[a], cluster[b]
        counts += np.bincount(ca * n + pos, minlength=k * n)
        counts += np.bincount((cb * n + pos)[cb != ca], minlength=k * n)  # a pair inside one cluster counts once
    counts = counts.reshape(k, n)
    tail = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]  # pairs scoring at or above each grid value
    tables = np.maximum(tail, 0.5) / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    return FairCalScorer(vectors, centres, grid, tables)
