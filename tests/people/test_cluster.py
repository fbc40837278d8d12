"""The clustering algorithm on hand-made vectors: linking, the chaining guard, constraints, assignment."""

from __future__ import annotations

import numpy as np

from facetrust.people.cluster import Faces, assign, cluster


def _unit(*rows: list[float]) -> np.ndarray:
    x = np.array(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _graph(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = vectors @ vectors.T
    order = np.argsort(-scores, axis=1)
    return order, np.take_along_axis(scores, order, axis=1)


def _faces(n: int, **kw: object) -> Faces:
    return Faces(image_of={i: f"img{i}" for i in range(n)}, user_of={}, **kw)  # type: ignore[arg-type]


# two people (x and y axes) and a look-alike face between them
PEOPLE = _unit([1, 0.05, 0], [1, -0.05, 0], [0.05, 1, 0], [-0.05, 1, 0], [0.72, 0.7, 0])


def test_one_look_alike_does_not_chain_two_people_together() -> None:
    groups = cluster(np.arange(5), PEOPLE, _graph(PEOPLE), _faces(5), threshold=0.6, linkage=0.8)
    assert len(groups) == 2 and all(not {0, 2} <= set(g) for g in groups)
    assert {0, 1} <= set(groups[0]) or {0, 1} <= set(groups[1])


def test_without_the_linkage_guard_single_link_chains() -> None:
    groups = cluster(np.arange(5), PEOPLE, _graph(PEOPLE), _faces(5), threshold=0.6, linkage=-1.0)
    assert groups == [[0, 1, 2, 3, 4]]


def test_cannot_link_and_must_link_pairs_are_respected() -> None:
    faces = _faces(5, must_link=[(0, 2)], cannot_link=[(1, 0)])
    groups = cluster(np.arange(5), PEOPLE, _graph(PEOPLE), faces, threshold=0.6, linkage=0.8)
    assert [0, 2] == [k for k in sorted(next(g for g in groups if 0 in g)) if k in (0, 2)]
    assert all(not {0, 1} <= set(g) for g in groups)


def test_a_face_below_the_threshold_stays_unclustered() -> None:
    vectors = _unit([1, 0, 0], [0, 1, 0], [0, 0, 1])
    assert cluster(np.arange(3), vectors, _graph(vectors), _faces(3), threshold=0.5) == []


def test_assign_joins_the_best_allowed_cluster_or_starts_one() -> None:
    labels = {0: "x", 1: "x", 2: None}
    members = {"x": [0, 1]}
    faces = Faces(image_of={0: "a", 1: "b", 2: "c", 3: "d", 4: "b"}, user_of={})
    assert assign(3, [(0, 0.9), (2, 0.8)], labels, members, faces, 0.5) == ("x", None)
    assert assign(4, [(0, 0.9), (2, 0.8)], labels, members, faces, 0.5) == (None, 2)  # same image as face 1
    assert assign(3, [(0, 0.4)], labels, members, faces, 0.5) == (None, None)
    assert assign(3, [(0, 0.9)], labels, members, faces, 0.5, lambda _: False) == (None, None)
