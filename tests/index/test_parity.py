"""hnsw against exact on the same data: the approximate backend finds most of the true top 10."""

from __future__ import annotations

import numpy as np

from facetrust.index import create_index

from .conftest import unit_vectors


def test_hnsw_recall_at_10_against_exact_is_at_least_0_95_on_20k_random_vectors() -> None:
    dim, n = 64, 20_000
    vectors = unit_vectors(n, dim=dim, seed=11)
    queries = unit_vectors(300, dim=dim, seed=12)
    exact, hnsw = create_index("exact", dim), create_index("hnsw", dim)
    for index in (exact, hnsw):
        index.add(np.arange(n), vectors)
    truth, found = exact.search(queries, 10).keys, hnsw.search(queries, 10).keys
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth.tolist(), found.tolist(), strict=True)])
    assert recall >= 0.95


def test_every_hnsw_vector_finds_itself_first() -> None:
    """Guards against usearch #735 (concurrent adds leaving unreachable nodes)."""
    vectors = unit_vectors(10_000, dim=16, seed=13)
    hnsw = create_index("hnsw", 16)
    hnsw.add(np.arange(len(vectors)), vectors)
    found = hnsw.search(vectors, 1).keys[:, 0]
    assert (found == np.arange(len(vectors))).all()
