"""The backend registry: names, auto selection by size, options, loading, and lazy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facetrust.errors import InvalidParameterError
from facetrust.index import (
    AUTO_THRESHOLD,
    VectorIndex,
    available_backends,
    choose_backend,
    create_index,
    load_index,
)

from .conftest import unit_vectors


def test_available_backends_are_exact_pq_hnsw_and_ivf() -> None:
    assert available_backends() == ("exact", "pq", "hnsw", "ivf")


@pytest.mark.parametrize("backend", ["exact", "pq", "hnsw", "ivf"])
def test_create_index_by_name_returns_that_backend(backend: str) -> None:
    index = create_index(backend, 8)
    assert isinstance(index, VectorIndex)
    assert index.name == backend and index.dim == 8


def test_unknown_backend_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidParameterError) as info:
        create_index("faiss", 128)
    assert str(info.value) == "Unknown index backend 'faiss'; available: auto, exact, pq, hnsw, ivf"
    assert info.value.parameter == "backend"


@pytest.mark.parametrize(
    ("expected_size", "backend"),
    [
        (0, "exact"),
        (AUTO_THRESHOLD - 1, "exact"),
        (AUTO_THRESHOLD, "pq"),
        (100 * AUTO_THRESHOLD, "pq"),
    ],
)
def test_auto_picks_exact_below_the_threshold_and_pq_from_it(expected_size: int, backend: str) -> None:
    assert choose_backend(expected_size) == backend
    assert create_index("auto", 8, expected_size=expected_size).name == backend


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True, None])
def test_auto_refuses_a_bad_expected_size(bad: object) -> None:
    with pytest.raises(InvalidParameterError) as info:
        create_index("auto", 8, expected_size=bad)  # type: ignore[arg-type]
    assert info.value.parameter == "expected_size"


def test_auto_takes_no_backend_options() -> None:
    with pytest.raises(InvalidParameterError, match="'auto' takes no options"):
        create_index("auto", 8, dtype="f16")


def test_an_unknown_option_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(InvalidParameterError) as info:
        create_index("hnsw", 8, ef=64)
    assert info.value.parameter == "ef"
    assert str(info.value) == (
        "Unknown option 'ef' for the hnsw index; "
        "available: connectivity, dtype, expansion_add, expansion_search, threads"
    )


@pytest.mark.parametrize(
    ("backend", "options", "parameter"),
    [
        ("exact", {"dtype": "f64"}, "dtype"),
        ("hnsw", {"dtype": "b1"}, "dtype"),
        ("hnsw", {"connectivity": 1}, "connectivity"),
        ("hnsw", {"expansion_search": 0}, "expansion_search"),
        ("hnsw", {"expansion_add": "64"}, "expansion_add"),
        ("hnsw", {"threads": -1}, "threads"),
        ("pq", {"candidates": 0}, "candidates"),
        ("pq", {"train_size": 10}, "train_size"),
        ("pq", {"threads": 1.0}, "threads"),
        ("ivf", {"lists": 0}, "lists"),
        ("ivf", {"probes": 0}, "probes"),
        ("ivf", {"lists": 8, "probes": 9}, "probes"),
        ("ivf", {"candidates": 0}, "candidates"),
    ],
)
def test_bad_option_values_name_the_option(backend: str, options: dict[str, object], parameter: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        create_index(backend, 8, **options)
    assert info.value.parameter == parameter


@pytest.mark.parametrize("dim", [0, -3, 2.0, 100_000])
def test_bad_dim_is_refused(dim: object) -> None:
    with pytest.raises(InvalidParameterError) as info:
        create_index("exact", dim)  # type: ignore[arg-type]
    assert info.value.parameter == "dim"


def test_hnsw_options_are_kept_and_survive_save_and_load(tmp_path: Path) -> None:
    index = create_index("hnsw", 8, dtype="f32", connectivity=12, expansion_add=40, expansion_search=70)
    index.add([1, 2], unit_vectors(2, dim=8))
    index.save(tmp_path / "i")
    loaded = load_index(tmp_path / "i")
    assert loaded.params() == {  # type: ignore[attr-defined]
        "dtype": "f32",
        "connectivity": 12,
        "expansion_add": 40,
        "expansion_search": 70,
    }


def test_importing_the_package_imports_neither_numpy_nor_usearch_nor_faiss() -> None:
    code = "import sys, facetrust.index; print(*(m in sys.modules for m in ('numpy', 'usearch', 'faiss')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]


def test_load_index_dispatches_on_the_saved_backend(tmp_path: Path) -> None:
    for backend in available_backends():
        index = create_index(backend, 4)
        index.add(np.arange(3), unit_vectors(3, dim=4))
        index.save(tmp_path / backend)
        assert load_index(tmp_path / backend).name == backend


def test_pq_options_are_kept_and_survive_save_and_load(tmp_path: Path) -> None:
    index = create_index("pq", 8, candidates=50, train_size=100, threads=1)
    index.add(np.arange(2), unit_vectors(2, dim=8))
    index.save(tmp_path / "i")
    loaded = load_index(tmp_path / "i")
    assert loaded.params() == {"candidates": 50, "train_size": 100}  # type: ignore[attr-defined]
