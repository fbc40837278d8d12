"""Constrained clustering of faces into people over a nearest-neighbour graph (numpy only).

A full pass links faces along graph edges at or above a threshold score, strongest edge first,
and joins two groups only when their centroids also agree (cosine at least ``linkage``), which
stops the chaining of single-link clustering: one look-alike pair cannot join two people. It
refuses any link that would put two faces of one image, two different users, or a cannot-link
pair in one cluster. Must-link pairs (and faces of one user) are joined first. Faces left alone
are unclustered: they match nobody well enough. ``assign`` places new faces one at a time
against existing clusters without redoing the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["LINKAGE", "Faces", "assign", "cluster", "cosine"]

#: Centroid cosine two groups need to merge; tuned on half of LFW's people (bench/cluster.py).
LINKAGE = 0.65


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


@dataclass(frozen=True)
class Faces:
    """What the constraints need to know about the faces being clustered, by face key."""

    image_of: Mapping[int, str]
    user_of: Mapping[int, str | None]
    must_link: Sequence[tuple[int, int]] = ()
    cannot_link: Sequence[tuple[int, int]] = ()

    def cannot_map(self) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for a, b in self.cannot_link:
            out.setdefault(a, set()).add(b)
            out.setdefault(b, set()).add(a)
        return out


@dataclass
class _Group:
    members: list[int]
    images: set[str]
    user: str | None
    total: np.ndarray  # sum of the members' unit vectors
    forbidden: set[int] = field(default_factory=set)


class _Groups:
    """Union-find whose roots carry each group's images, user and cannot-link partners."""

    def __init__(self, keys: Iterable[int], vectors: np.ndarray, faces: Faces) -> None:
        cannot = faces.cannot_map()
        self.parent: dict[int, int] = {}
        self.group: dict[int, _Group] = {}
        for k, vec in zip(keys, vectors):
            self.parent[k] = k
            self.group[k] = _Group(
                [k], {faces.image_of[k]}, faces.user_of.get(k), vec.astype(np.float64), set(cannot.get(k, ()))
            )

    def find(self, k: int) -> int:
        root = k
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[k] != root:
            self.parent[k], k = root, self.parent[k]
        return root

    def allowed(self, ra: int, rb: int) -> bool:
        a, b = self.group[ra], self.group[rb]
        if a.user is not None and b.user is not None and a.user != b.user:
            return False
        small, large = (a, b) if len(a.images) <= len(b.images) else (b, a)
        if any(image in large.images for image in small.images):
            return False
        small, large = (a, b) if len(a.members) <= len(b.members) else (b, a)
        return not any(m in large.forbidden for m in small.members)

    def union(self, ra: int, rb: int) -> int:
        if len(self.group[ra].members) < len(self.group[rb].members):
            ra, rb = rb, ra
        a, b = self.group[ra], self.group.pop(rb)
        a.members.extend(b.members)
        a.images |= b.images
        a.user = a.user or b.user
        a.forbidden |= b.forbidden
        a.total = a.total + b.total
        self.parent[rb] = ra
        return ra

    def link(self, a: int, b: int, linkage: float | None = None) -> bool:
        """Join the groups of ``a`` and ``b`` if the constraints (and the centroid linkage) allow."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb or not self.allowed(ra, rb):
            return False
        if linkage is not None and cosine(self.group[ra].total, self.group[rb].total) < linkage:
            return False
        self.union(ra, rb)
        return True


def cluster(
    keys: np.ndarray,
    vectors: np.ndarray,
    graph: tuple[np.ndarray, np.ndarray],
    faces: Faces,
    threshold: float,
    linkage: float = LINKAGE,
) -> list[list[int]]:
    """Clusters (lists of face keys, two or more each) of ``keys`` (unit ``vectors``, one a key).

    ``graph`` is (neighbours, scores): ``neighbours[i]``/``scores[i]`` are the nearest faces of
    ``keys[i]`` and their scores (-1 pads). Must-link pairs and faces of one user are joined
    first when the constraints allow; then edges at or above ``threshold``, strongest first,
    where the two groups' centroids agree at cosine ``linkage`` or more.
    """
    neighbours, scores = graph
    groups = _Groups(keys.tolist(), vectors, faces)
    by_user: dict[str, int] = {}
    for k in keys.tolist():
        user = faces.user_of.get(k)
        if user is not None:
            groups.link(by_user.setdefault(user, k), k)
    for a, b in faces.must_link:
        if a in groups.parent and b in groups.parent:
            groups.link(a, b)
    rows = np.repeat(keys, neighbours.shape[1])
    cols, vals = neighbours.reshape(-1), scores.reshape(-1)
    keep = (cols >= 0) & (vals >= threshold) & (cols != rows)
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    present = np.isin(cols, keys)
    rows, cols, vals = rows[present], cols[present], vals[present]
    for i in np.argsort(-vals, kind="stable").tolist():
        groups.link(int(rows[i]), int(cols[i]), linkage)
    return [sorted(g.members) for g in groups.group.values() if len(g.members) > 1]


def assign(
    key: int,
    neighbours: Sequence[tuple[int, float]],
    label_of: Mapping[int, str | None],
    members_of: Mapping[str, Sequence[int]],
    faces: Faces,
    threshold: float,
    agrees: Callable[[str | int], bool] = lambda _: True,
) -> tuple[str | None, int | None]:
    """Where a new face goes: ``(cluster, None)`` to join an existing cluster, ``(None, mate)`` to
    start one with the unclustered face ``mate``, or ``(None, None)`` to stay unclustered.

    The best-scoring neighbour at or above ``threshold`` whose cluster the constraints allow, and
    whose centroid (or, unclustered, whose vector) ``agrees`` with the new face, wins.
    """
    cannot = faces.cannot_map().get(key, set())
    image, user = faces.image_of[key], faces.user_of.get(key)

    def fits(members: Sequence[int]) -> bool:
        return all(
            faces.image_of[m] != image
            and m not in cannot
            and (user is None or faces.user_of.get(m) is None or faces.user_of.get(m) == user)
            for m in members
        )

    for mate, score in sorted(neighbours, key=lambda p: -p[1]):
        if score < threshold or mate == key or mate not in label_of:
            continue
        label = label_of[mate]
        if label is None:
            if fits([mate]) and agrees(mate):
                return None, mate
        elif fits(members_of[label]) and agrees(label):
            return label, None
    return None, None
