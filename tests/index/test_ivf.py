"""The ivf backend's own behaviour: the probes dial, float16 rows, its options and saved codebooks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facetrust.errors import InvalidParameterError
from facetrust.index import create_index, load_index
from facetrust.index.ivf import IvfIndex
from facetrust.index.pq import PqIndex

from .conftest import unit_vectors


def ivf(dim: int = 16, **options: int) -> IvfIndex:
    index = create_index("ivf", dim, **options)
    assert isinstance(index, IvfIndex)
    return index


def recall_at_10(index: IvfIndex, vectors: np.ndarray, queries: np.ndarray) -> float:
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    found = index.search(queries, 10).keys
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found.tolist(), truth.tolist(), strict=True)]))


def test_probing_more_lists_finds_more_of_the_true_top_10_and_every_list_finds_them_all() -> None:
    vectors, queries = unit_vectors(6000, seed=1), unit_vectors(100, seed=2)
    index = ivf(lists=32, probes=1, train_size=2000, candidates=2000)  # a third of each shard
    index.add(np.arange(6000), vectors)
    few = recall_at_10(index, vectors, queries)
    index.probes = 32  # every list: every row estimated, the best third re-scored
    assert recall_at_10(index, vectors, queries) == 1.0
    assert few < 0.6  # one list of 32 holds a small share of a random query's neighbours


def test_rows_are_float16_and_scores_within_float16_rounding() -> None:
    vectors = unit_vectors(3000, seed=3)
    index = ivf(lists=8, probes=8, train_size=500, candidates=300)
    index.add(np.arange(3000), vectors)
    assert index.trained
    queries = unit_vectors(10, seed=4)
    for q in range(10):
        keys, scores = index.search(queries, 5)[q]
        np.testing.assert_allclose(scores, vectors[keys] @ queries[q], atol=2e-3)
    pq = create_index("pq", 16, train_size=500)
    pq.add(np.arange(3000), vectors)
    assert index.memory_bytes() < pq.memory_bytes()  # 2 bytes a dimension instead of 4


def test_probes_cannot_exceed_lists_on_a_live_index_either() -> None:
    index = ivf(lists=8, probes=2)
    with pytest.raises(InvalidParameterError) as info:
        index.probes = 9
    assert info.value.parameter == "probes" and index.probes == 2


def test_train_size_is_at_least_the_number_of_lists() -> None:
    index = ivf(lists=300, train_size=64)
    index.add(np.arange(299), unit_vectors(299, seed=5))
    assert not index.trained  # k-means needs a point per list
    index.add([299], unit_vectors(1, seed=6))
    assert index.trained


def test_options_and_codebooks_survive_save_and_load_and_answers_stay_the_same(tmp_path: Path) -> None:
    vectors = unit_vectors(2000, seed=7)
    index = ivf(lists=16, probes=3, code_bytes=4, candidates=40, train_size=500)
    index.add(np.arange(2000), vectors)
    queries = unit_vectors(30, seed=8)
    before = index.search(queries, 10)
    index.save(tmp_path / "i")
    loaded = load_index(tmp_path / "i")
    assert isinstance(loaded, IvfIndex)
    assert loaded.params() == {"candidates": 40, "train_size": 500, "lists": 16, "probes": 3, "code_bytes": 4}
    after = loaded.search(queries, 10)
    np.testing.assert_array_equal(after.keys, before.keys)


def test_a_pq_index_file_is_not_loaded_as_ivf_codebooks(tmp_path: Path) -> None:
    pq = create_index("pq", 16, train_size=100)
    assert isinstance(pq, PqIndex)
    pq.add(np.arange(200), unit_vectors(200, seed=9))
    pq.save(tmp_path / "i")
    with pytest.raises(InvalidParameterError, match="use load_index"):
        IvfIndex.load(tmp_path / "i")


def test_codebooks_of_another_list_count_are_refused(tmp_path: Path) -> None:
    index = ivf(lists=16, train_size=500)
    index.add(np.arange(600), unit_vectors(600, seed=10))
    index.save(tmp_path / "i")
    manifest = tmp_path / "i"
    manifest.write_text(manifest.read_text().replace('"lists": 16', '"lists": 8'))
    with pytest.raises(InvalidParameterError, match="codebooks") as info:
        load_index(manifest)
    assert info.value.parameter == "path"
