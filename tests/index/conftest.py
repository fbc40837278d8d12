"""Index fixtures: every backend configuration the contract tests run against, and unit vectors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from facetrust.index import VectorIndex, create_index

DIM = 16

#: (id, backend, options, score tolerance): each configuration runs every contract test.
CONFIGS: list[tuple[str, str, dict[str, Any], float]] = [
    ("exact", "exact", {}, 1e-5),
    ("exact-f16", "exact", {"dtype": "f16"}, 2e-3),
    ("pq", "pq", {}, 1e-5),  # below train_size: exact scans
    ("pq-codes", "pq", {"train_size": 64, "candidates": 160}, 1e-5),  # codes from 64 vectors, 160 re-scored
    ("hnsw", "hnsw", {}, 2e-3),
    ("ivf", "ivf", {}, 2e-3),  # below train_size: exact scans of float16 rows
    # 4 lists, all probed, trained on 64 vectors, 160 re-scored from float16 rows
    ("ivf-codes", "ivf", {"lists": 4, "probes": 4, "train_size": 64, "candidates": 160}, 2e-3),
    ("hnsw-i8", "hnsw", {"dtype": "i8"}, 3e-2),
]

IndexFactory = Callable[..., VectorIndex]


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(params=CONFIGS, ids=[c[0] for c in CONFIGS])
def config(request: pytest.FixtureRequest) -> tuple[str, str, dict[str, Any], float]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_index(config: tuple[str, str, dict[str, Any], float]) -> IndexFactory:
    """Builds an empty index of the configuration under test: ``make_index(dim=16)``."""
    _, backend, options, _ = config

    def make(dim: int = DIM) -> VectorIndex:
        return create_index(backend, dim, **options)

    return make


@pytest.fixture
def tol(config: tuple[str, str, dict[str, Any], float]) -> float:
    """How far this configuration's scores may be from float32 cosine similarity."""
    return config[3]
