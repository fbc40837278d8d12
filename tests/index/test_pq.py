"""The pq backend's own behaviour: training, re-scoring, removal, compaction and saved codebooks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facetrust.errors import InvalidParameterError
from facetrust.index import create_index, load_index
from facetrust.index.pq import PqIndex

from .conftest import unit_vectors


def pq(dim: int = 16, **options: int) -> PqIndex:
    index = create_index("pq", dim, **options)
    assert isinstance(index, PqIndex)
    return index


def test_searches_are_exact_until_train_size_then_the_codebooks_are_trained() -> None:
    vectors = unit_vectors(300, seed=1)
    index, exact = pq(train_size=200), create_index("exact", 16)
    index.add(np.arange(150), vectors[:150])
    exact.add(np.arange(150), vectors[:150])
    assert not index.trained
    queries = unit_vectors(20, seed=2)
    np.testing.assert_array_equal(index.search(queries, 10).keys, exact.search(queries, 10).keys)
    index.add(np.arange(150, 300), vectors[150:])
    assert index.trained


def test_scores_are_exact_cosines_even_when_candidates_come_from_codes() -> None:
    vectors = unit_vectors(2000, seed=3)
    index = pq(train_size=64, candidates=50)
    index.add(np.arange(2000), vectors)
    queries = unit_vectors(10, seed=4)
    hits = index.search(queries, 5)
    for q in range(10):
        keys, scores = hits[q]
        np.testing.assert_allclose(scores, vectors[keys] @ queries[q], atol=1e-6)
        assert (np.diff(scores) <= 0).all()


def test_a_replaced_vector_is_found_by_its_new_value_only() -> None:
    vectors = unit_vectors(500, seed=5)
    index = pq(train_size=64, candidates=20)
    index.add(np.arange(500), vectors)
    index.add([7], vectors[400])
    assert len(index) == 500
    keys, scores = index.search(vectors[400], 2)[0]
    assert set(keys.tolist()) == {7, 400}
    np.testing.assert_allclose(scores, 1.0, atol=1e-6)
    keys, scores = index.search(vectors[7], 500)[0]  # every vector: key 7 now scores as its new value
    np.testing.assert_allclose(scores[keys == 7], [vectors[400] @ vectors[7]], atol=1e-6)


def test_when_removed_rows_crowd_out_the_candidates_the_shard_is_scored_fully() -> None:
    vectors = unit_vectors(1000, seed=6)
    index = pq(train_size=64, candidates=4, threads=1)
    index.add(np.arange(1000), vectors)
    assert index.remove(np.arange(900)) == 900  # too few to compact: the rows stay, marked removed
    keys, _ = index.search(vectors[:3], 50)[0]
    assert len(keys) == 50 and (keys >= 900).all()
    exact = create_index("exact", 16)
    exact.add(np.arange(900, 1000), vectors[900:])
    np.testing.assert_array_equal(index.search(vectors[:3], 50).keys, exact.search(vectors[:3], 50).keys)


def test_a_batch_over_removed_rows_matches_one_query_searches_and_never_returns_a_removed_key() -> None:
    vectors = unit_vectors(1000, seed=6)
    index = pq(train_size=64, candidates=36, threads=1)  # ~24 live candidates: some queries fall short of 15
    index.add(np.arange(1000), vectors)
    removed = np.arange(0, 900, 3)
    assert index.remove(removed) == 300  # too few to compact: the rows stay, marked removed
    queries = np.vstack([vectors[:40], unit_vectors(300, seed=8)])
    batch = index.search_batch(queries, 15)
    assert not np.isin(batch.keys, removed).any() and (batch.keys >= 0).all()
    stored = [q for q in range(40) if q % 3]  # live stored vectors find themselves first
    assert batch.keys[stored, 0].tolist() == stored
    exact = np.einsum("qkd,qd->qk", vectors[batch.keys], queries)  # the scores are exact cosines
    np.testing.assert_allclose(batch.scores, exact, atol=1e-5)
    for q in range(0, len(queries), 37):
        np.testing.assert_array_equal(index.search(queries[q], 15).keys[0], batch.keys[q])


def test_many_removals_compact_the_shards_and_every_survivor_still_finds_itself() -> None:
    vectors = unit_vectors(12_000, seed=7)
    index = pq(train_size=64, candidates=32)
    index.add(np.arange(12_000), vectors)
    memory = index.memory_bytes()
    assert index.remove(np.arange(0, 12_000, 2)) + index.remove(np.arange(1, 9_000, 2)) == 10_500
    assert len(index) == 1_500
    assert sorted(index.keys().tolist()) == list(range(9_001, 12_000, 2))
    assert index.memory_bytes() < memory / 2  # the removed rows are gone, not just marked
    found = index.search(vectors[9_001::2], 3).keys
    assert (found[:, 0] == np.arange(9_001, 12_000, 2)).all()
    assert set(found.ravel().tolist()) <= set(range(9_001, 12_000, 2))
    index.add([0], vectors[0])  # locations stay right after compaction
    assert index.search(vectors[0], 1)[0][0].tolist() == [0]
    assert index.remove([9_001, 0]) == 2


def test_pq_recall_at_10_against_exact_is_at_least_0_99_on_20k_random_vectors() -> None:
    dim, n = 64, 20_000
    vectors = unit_vectors(n, dim=dim, seed=11)
    queries = unit_vectors(300, dim=dim, seed=12)
    exact, approx = create_index("exact", dim), pq(dim, train_size=n)
    for index in (exact, approx):
        index.add(np.arange(n), vectors)
    assert approx.trained
    truth, found = exact.search(queries, 10).keys, approx.search(queries, 10).keys
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth.tolist(), found.tolist(), strict=True)])
    assert recall >= 0.99


def test_a_saved_trained_index_loads_with_its_codebooks_and_answers_the_same(tmp_path: Path) -> None:
    vectors = unit_vectors(3000, seed=8)
    index = pq(train_size=500, candidates=30)
    index.add(np.arange(3000), vectors)
    index.save(tmp_path / "faces.index")
    loaded = load_index(tmp_path / "faces.index")
    assert isinstance(loaded, PqIndex) and loaded.trained and len(loaded) == 3000
    queries = unit_vectors(50, seed=9)
    before, after = index.search(queries, 10), loaded.search(queries, 10)
    np.testing.assert_array_equal(before.keys, after.keys)
    np.testing.assert_array_equal(before.scores, after.scores)


def test_removed_vectors_are_not_saved(tmp_path: Path) -> None:
    vectors = unit_vectors(3000, seed=8)
    index = pq(train_size=500, candidates=30)
    index.add(np.arange(3000), vectors)
    index.remove(np.arange(100))
    index.save(tmp_path / "faces.index")
    data = tmp_path / json.loads((tmp_path / "faces.index").read_text())["data"]
    with np.load(data) as z:
        assert z["vectors"].shape == (2900, 16) and set(z["keys"].tolist()) == set(range(100, 3000))
    loaded = load_index(tmp_path / "faces.index")
    assert len(loaded) == 2900 and 5 not in loaded and 500 in loaded
    assert loaded.search(vectors[5], 1)[0][0][0] != 5


def test_a_damaged_codebook_is_refused_with_a_rebuild_hint(tmp_path: Path) -> None:
    index = pq(train_size=64)
    index.add(np.arange(200), unit_vectors(200, seed=10))
    path = tmp_path / "faces.index"
    index.save(path)
    data = path.parent / json.loads(path.read_text())["data"]
    with np.load(data) as z:
        keys, vectors, codebook = z["keys"], z["vectors"], z["codebook"]
    with open(data, "wb") as fh:
        np.savez(fh, keys=keys, vectors=vectors, codebook=codebook[: len(codebook) // 2])
    manifest = json.loads(path.read_text())
    manifest["data_bytes"] = data.stat().st_size
    path.write_text(json.dumps(manifest))
    with pytest.raises(InvalidParameterError, match="rebuild") as info:
        load_index(path)
    assert info.value.parameter == "path"
