"""Same-group impostor pairs (never across cells), capped mated pairs, false-match listing."""

from __future__ import annotations

import numpy as np

from facetrust.fairness.pairs import CosineScorer, build_group_pairs, false_match_pairs


def unit(*rows: list[float]) -> np.ndarray:
    v = np.array(rows, dtype=np.float32)
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def test_impostor_pairs_are_every_pair_of_different_identities_within_a_cell() -> None:
    vectors = unit([1, 0], [1, 0.1], [0, 1], [1, 1], [1, -1])
    identity = np.array([0, 0, 1, 2, 3])
    cell = np.array([0, 0, 0, 0, 1])  # the last image is alone in its cell

    pairs = build_group_pairs(CosineScorer(vectors), "g", np.arange(5), identity, cell, mated=True)

    # cell 0: images 0,1 (identity 0), 2, 3 → pairs 0-2, 0-3, 1-2, 1-3, 2-3 (0-1 is mated)
    assert pairs.impostor_scores.size == 5
    expected = sorted(float(vectors[a] @ vectors[b]) for a, b in [(0, 2), (0, 3), (1, 2), (1, 3), (2, 3)])
    np.testing.assert_allclose(sorted(pairs.impostor_scores), expected, rtol=1e-6)
    assert pairs.mated_scores.size == 1
    assert pairs.mated_identity.tolist() == [0]


def test_mated_pairs_use_at_most_max_per_identity_images_each() -> None:
    rng = np.random.default_rng(0)
    vectors = unit(*rng.standard_normal((30, 4)).tolist())
    identity = np.array([0] * 25 + [1] * 5)

    pairs = build_group_pairs(
        CosineScorer(vectors), "g", np.arange(30), identity, np.zeros(30, int), mated=True, max_per_identity=10
    )

    assert pairs.mated_scores.size == 45 + 10  # C(10,2) + C(5,2)
    assert (pairs.mated_identity == 0).sum() == 45


def test_without_mated_no_mated_pairs_are_built() -> None:
    vectors = unit([1, 0], [0, 1], [1, 1])
    pairs = build_group_pairs(CosineScorer(vectors), "g", np.arange(3), np.arange(3), np.zeros(3, int), mated=False)
    assert pairs.mated_scores.size == 0
    assert pairs.impostor_scores.size == 3


def test_false_match_pairs_lists_the_identities_of_pairs_at_or_above_the_threshold() -> None:
    vectors = unit([1, 0], [1, 0.05], [0, 1], [-1, 0])
    identity = np.array([0, 1, 2, 3])
    pairs = build_group_pairs(CosineScorer(vectors), "g", np.arange(4), identity, np.zeros(4, int), mated=False)

    a, b = false_match_pairs(CosineScorer(vectors), pairs, 0.9)

    assert list(zip(a.tolist(), b.tolist())) == [(0, 1)]


def test_cell_sizes_count_each_identitys_images_per_cell() -> None:
    vectors = unit([1, 0], [1, 0.1], [0, 1], [1, 1])
    pairs = build_group_pairs(
        CosineScorer(vectors), "g", np.arange(4), np.array([0, 0, 1, 0]), np.array([0, 0, 0, 1]), mated=False
    )
    cell, ident, count = pairs.cell_sizes()
    assert list(zip(cell.tolist(), ident.tolist(), count.tolist())) == [(0, 0, 2), (0, 1, 1), (1, 0, 1)]
