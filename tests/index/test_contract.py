"""The VectorIndex contract: the same assertions against every backend configuration (conftest.CONFIGS)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facetrust.errors import InvalidParameterError
from facetrust.index import MAX_K, SearchHits, VectorIndex, load_index

from .conftest import DIM, IndexFactory, unit_vectors


def filled(make_index: IndexFactory, n: int, seed: int = 0) -> tuple[VectorIndex, np.ndarray]:
    index = make_index()
    vectors = unit_vectors(n, seed=seed)
    index.add(np.arange(n, dtype=np.int64) * 10, vectors)
    return index, vectors


def test_index_satisfies_the_protocol(make_index: IndexFactory) -> None:
    index = make_index()
    assert isinstance(index, VectorIndex)
    assert index.dim == DIM
    assert index.name in ("exact", "pq", "hnsw", "ivf")


def test_search_returns_the_vector_itself_first_with_score_one(make_index: IndexFactory, tol: float) -> None:
    index, vectors = filled(make_index, 200)
    hits = index.search(vectors[:50], k=5)
    assert isinstance(hits, SearchHits)
    assert hits.keys.shape == hits.scores.shape == (50, 5)
    assert hits.keys.dtype == np.int64 and hits.scores.dtype == np.float32
    np.testing.assert_array_equal(hits.keys[:, 0], np.arange(50) * 10)
    np.testing.assert_allclose(hits.scores[:, 0], 1.0, atol=tol)


def test_search_returns_the_k_best_in_descending_order(make_index: IndexFactory, tol: float) -> None:
    index, vectors = filled(make_index, 300)
    queries = unit_vectors(20, seed=1)
    hits = index.search(queries, k=10)
    truth = queries @ vectors.T
    for q in range(len(queries)):
        keys, scores = hits[q]
        assert len(keys) == 10
        assert np.all(np.diff(scores) <= 0)
        np.testing.assert_allclose(scores, truth[q, keys // 10], atol=tol)
        best = np.sort(truth[q])[::-1][:10]
        assert best[-1] <= scores[-1] + tol  # nothing better than the 10th was missed


def test_a_batch_search_gives_the_same_hits_as_one_query_at_a_time(make_index: IndexFactory) -> None:
    index, _ = filled(make_index, 500)
    queries = unit_vectors(12, seed=4)
    batch = index.search(queries, k=5)
    for q, query in enumerate(queries):
        one = index.search(query, k=5)
        np.testing.assert_array_equal(one.keys[0], batch.keys[q])
        np.testing.assert_allclose(one.scores[0], batch.scores[q], atol=1e-5)


def test_search_batch_gives_the_same_hits_as_search_across_its_blocks(make_index: IndexFactory) -> None:
    index, vectors = filled(make_index, 500)
    index.remove(np.arange(0, 5000, 70))  # removed rows too (pq marks them; a batch must skip them)
    queries = np.vstack([vectors, unit_vectors(4600, seed=5)])  # more than one block of every backend
    batch = index.search_batch(queries, k=6)
    assert batch.keys.shape == (len(queries), 6) and not batch.keys.flags.writeable
    whole = index.search(queries, k=6)
    np.testing.assert_array_equal(batch.keys, whole.keys)
    np.testing.assert_allclose(batch.scores, whole.scores, atol=1e-5)
    for q in range(0, len(queries), 523):  # and as one query at a time
        one = index.search(queries[q], k=6)
        np.testing.assert_array_equal(one.keys[0], batch.keys[q])
        np.testing.assert_allclose(one.scores[0], batch.scores[q], atol=1e-5)


def test_search_batch_pads_small_and_empty_indexes_and_takes_one_vector(make_index: IndexFactory) -> None:
    assert (make_index().search_batch(unit_vectors(3), k=2).keys == -1).all()
    index, vectors = filled(make_index, 3)
    hits = index.search_batch(vectors, k=5)
    assert hits.keys[:, 0].tolist() == [0, 10, 20]
    assert (hits.keys[:, 3:] == -1).all() and np.isneginf(hits.scores[:, 3:]).all()
    assert index.search_batch(vectors[1], k=1).keys.tolist() == [[10]]


def test_one_query_vector_gives_one_row(make_index: IndexFactory) -> None:
    index, vectors = filled(make_index, 20)
    hits = index.search(vectors[3], k=2)
    assert hits.keys.shape == (1, 2)
    assert hits.keys[0, 0] == 30


def test_k_larger_than_the_index_pads_with_minus_one_and_minus_inf(make_index: IndexFactory) -> None:
    index, vectors = filled(make_index, 3)
    hits = index.search(vectors[:2], k=7)
    assert hits.keys.shape == (2, 7)
    assert sorted(hits.keys[0, :3].tolist()) == [0, 10, 20]
    assert (hits.keys[:, 3:] == -1).all()
    assert np.isneginf(hits.scores[:, 3:]).all()
    assert np.isfinite(hits.scores[:, :3]).all()
    assert len(hits[0][0]) == 3


def test_empty_index_search_returns_only_padding(make_index: IndexFactory) -> None:
    index = make_index()
    hits = index.search(unit_vectors(2), k=4)
    assert (hits.keys == -1).all() and np.isneginf(hits.scores).all()
    assert len(index) == 0 and index.keys().shape == (0,)


def test_search_hits_are_read_only(make_index: IndexFactory) -> None:
    index, vectors = filled(make_index, 5)
    hits = index.search(vectors[0], k=2)
    with pytest.raises(ValueError):
        hits.keys[0, 0] = 99


def test_len_contains_and_keys_track_adds_and_removes(make_index: IndexFactory) -> None:
    index, _ = filled(make_index, 50)
    assert len(index) == 50
    assert 10 in index and np.int64(490) in index
    assert 11 not in index and -1 not in index and "10" not in index and 10.0 not in index
    assert index.remove([10, 20]) == 2
    assert len(index) == 48 and 10 not in index
    assert sorted(index.keys().tolist()) == [k for k in range(0, 500, 10) if k not in (10, 20)]
    assert index.keys().dtype == np.int64


def test_remove_counts_present_keys_and_ignores_unknown_and_repeated_ones(make_index: IndexFactory) -> None:
    index, _ = filled(make_index, 10)
    assert index.remove(np.array([0, 0, 5, 10, 12345])) == 2
    assert index.remove([]) == 0
    assert index.remove(0) == 0
    assert len(index) == 8


def test_removed_keys_are_never_returned(make_index: IndexFactory) -> None:
    index, vectors = filled(make_index, 400)
    removed = np.arange(0, 4000, 20)  # every other key
    assert index.remove(removed) == 200
    hits = index.search(vectors, k=20)
    assert not np.isin(hits.keys, removed).any()
    kept = np.setdiff1d(np.arange(0, 4000, 10), removed)
    rows = kept // 10
    np.testing.assert_array_equal(hits.keys[rows, 0], kept)


def test_removing_everything_leaves_an_empty_index_that_accepts_new_vectors(make_index: IndexFactory) -> None:
    index, vectors = filled(make_index, 30)
    assert index.remove(index.keys()) == 30
    assert len(index) == 0
    assert (index.search(vectors[0], k=3).keys == -1).all()
    index.add([7], vectors[5])
    assert index.search(vectors[5], k=1).keys[0, 0] == 7


def test_re_adding_a_key_replaces_its_vector(make_index: IndexFactory, tol: float) -> None:
    index, vectors = filled(make_index, 100)
    new = unit_vectors(1, seed=9)[0]
    index.add([50], new)  # key 50 held vectors[5]
    assert len(index) == 100
    hits = index.search(new, k=1)
    assert hits.keys[0, 0] == 50
    assert hits.scores[0, 0] == pytest.approx(1.0, abs=tol)
    old = index.search(vectors[5], k=100)
    old_score = old.scores[0][old.keys[0] == 50]
    assert old_score == pytest.approx(float(vectors[5] @ new), abs=tol)


def test_a_key_repeated_within_one_add_keeps_its_last_vector(make_index: IndexFactory) -> None:
    index = make_index()
    vectors = unit_vectors(3)
    index.add([4, 4, 6], vectors)
    assert len(index) == 2
    assert index.search(vectors[1], k=1).keys[0, 0] == 4
    assert index.search(vectors[0], k=2).keys[0].tolist() != [4, 4]


def test_vectors_are_normalised_on_the_way_in(make_index: IndexFactory, tol: float) -> None:
    index = make_index()
    vectors = unit_vectors(10)
    index.add(np.arange(10), vectors * 7.5)
    hits = index.search(vectors[2] * 0.01, k=1)
    assert hits.keys[0, 0] == 2
    assert hits.scores[0, 0] == pytest.approx(1.0, abs=tol)


def test_save_and_load_round_trip_preserves_results(make_index: IndexFactory, tmp_path: Path) -> None:
    index, vectors = filled(make_index, 300)
    index.remove([30, 40])
    queries = unit_vectors(25, seed=3)
    before = index.search(queries, k=8)
    path = tmp_path / "faces.index"
    index.save(path)
    loaded = load_index(path)
    assert type(loaded) is type(index)
    assert loaded.dim == DIM and len(loaded) == len(index)
    assert sorted(loaded.keys().tolist()) == sorted(index.keys().tolist())
    after = loaded.search(queries, k=8)
    np.testing.assert_array_equal(after.keys, before.keys)
    np.testing.assert_allclose(after.scores, before.scores, atol=1e-6)
    loaded.add([1], vectors[0])  # a loaded index stays writable
    assert 1 in loaded and len(loaded) == len(index) + 1


def test_saving_again_replaces_the_saved_index_and_its_data_file(make_index: IndexFactory, tmp_path: Path) -> None:
    index, _ = filled(make_index, 20)
    path = tmp_path / "faces.index"
    index.save(path)
    index.remove([0])
    index.save(path)
    assert len(load_index(path)) == 19
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "faces.index")[0].startswith("faces.index.")
    assert len(list(tmp_path.iterdir())) == 2  # the manifest and one data file; no temporaries


def test_an_empty_index_round_trips(make_index: IndexFactory, tmp_path: Path) -> None:
    make_index().save(tmp_path / "empty")
    loaded = load_index(tmp_path / "empty")
    assert len(loaded) == 0 and (loaded.search(unit_vectors(1), k=2).keys == -1).all()


def test_memory_bytes_is_positive_and_grows_with_the_index(make_index: IndexFactory) -> None:
    small, _ = filled(make_index, 10)
    large, _ = filled(make_index, 5000)
    assert 0 < small.memory_bytes() < large.memory_bytes()


BAD_ADDS: list[tuple[str, Any, Any, str]] = [
    ("wrong width", [1], np.ones((1, DIM + 1)), "vectors"),
    ("three dimensions", [1], np.ones((1, 1, DIM)), "vectors"),
    ("NaN", [1, 2], np.vstack([np.ones(DIM), np.full(DIM, np.nan)]), "vectors"),
    ("infinity", [1], np.full((1, DIM), np.inf), "vectors"),
    ("zero vector", [1], np.zeros((1, DIM)), "vectors"),
    ("text", [1], [["a"] * DIM], "vectors"),
    ("more keys than vectors", [1, 2], np.ones((1, DIM)), "vectors"),
    ("fewer keys than vectors", [1], np.ones((2, DIM)), "vectors"),
    ("negative key", [-1], np.ones((1, DIM)), "keys"),
    ("float keys", [1.5], np.ones((1, DIM)), "keys"),
    ("2-D keys", [[1]], np.ones((1, DIM)), "keys"),
    ("key above int64", np.array([2**63], np.uint64), np.ones((1, DIM)), "keys"),
]


@pytest.mark.parametrize(("case", "keys", "vectors", "parameter"), BAD_ADDS, ids=[c[0] for c in BAD_ADDS])
def test_invalid_adds_raise_invalid_parameter_naming_it(
    make_index: IndexFactory, case: str, keys: Any, vectors: Any, parameter: str
) -> None:
    index, _ = filled(make_index, 5)
    with pytest.raises(InvalidParameterError) as info:
        index.add(keys, vectors)
    assert info.value.parameter == parameter
    assert len(index) == 5  # nothing was half-added


BAD_SEARCHES: list[tuple[str, Any, Any, str]] = [
    ("k zero", np.ones(DIM), 0, "k"),
    ("k negative", np.ones(DIM), -3, "k"),
    ("k above MAX_K", np.ones(DIM), MAX_K + 1, "k"),
    ("k float", np.ones(DIM), 2.0, "k"),
    ("k bool", np.ones(DIM), True, "k"),
    ("wrong width", np.ones(DIM - 1), 1, "queries"),
    ("NaN query", np.full(DIM, np.nan), 1, "queries"),
    ("zero query", np.zeros(DIM), 1, "queries"),
]


@pytest.mark.parametrize(("case", "queries", "k", "parameter"), BAD_SEARCHES, ids=[c[0] for c in BAD_SEARCHES])
def test_invalid_searches_raise_invalid_parameter_naming_it(
    make_index: IndexFactory, case: str, queries: Any, k: Any, parameter: str
) -> None:
    index, _ = filled(make_index, 5)
    for search in (index.search, index.search_batch):
        with pytest.raises(InvalidParameterError) as info:
            search(queries, k)
        assert info.value.parameter == parameter


def test_invalid_remove_raises_invalid_parameter(make_index: IndexFactory) -> None:
    index, _ = filled(make_index, 5)
    with pytest.raises(InvalidParameterError) as info:
        index.remove([-5])
    assert info.value.parameter == "keys"


def test_searches_while_another_thread_adds_never_fail_or_return_unknown_keys(make_index: IndexFactory) -> None:
    index = make_index()
    vectors = unit_vectors(3000, seed=5)
    index.add(np.arange(100), vectors[:100])
    queries = unit_vectors(8, seed=6)
    errors: list[BaseException] = []
    bad: list[np.ndarray] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for start in range(100, 3000, 100):
                index.add(np.arange(start, start + 100), vectors[start : start + 100])
                index.add(np.arange(start - 50, start), vectors[start - 50 : start])  # replace some
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    def reader() -> None:
        try:
            while not done.is_set():
                hits = index.search(queries, k=10)
                keys = hits.keys
                if (keys < -1).any() or (keys >= 3000).any() or (keys[:, :10] == -1).any():
                    bad.append(keys)
                if not np.all(np.diff(hits.scores, axis=1) <= 0):
                    bad.append(hits.scores)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and not bad
    assert len(index) == 3000
