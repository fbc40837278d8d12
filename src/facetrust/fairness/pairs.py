"""Mated and same-group impostor pairs over embedded images, scored by a ``PairScorer``.

Impostor pairs are *all* pairs of images of different identities inside one cell (one
group, with equal values of the analysis's matching columns): never across groups, whose
pairs almost never match and would understate the FMR. Images without an identity count as
identities of their own. Mated pairs are all pairs of images of one identity within a
group, at most ``max_per_identity`` images per identity (a seeded choice), so that a few
much-photographed people do not dominate the FNMR.

Scores are computed in blocks, never as one N×N matrix. Thresholds come from the scores
(first pass); the false-match pairs above a threshold are then listed with their
identities (second pass) for the identity bootstrap.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "CosineScorer",
    "GroupPairs",
    "PairScorer",
    "at_most_per_identity",
    "build_group_pairs",
    "false_match_pairs",
    "impostor_blocks",
    "per_identity",
]

BLOCK = 1024


class PairScorer(Protocol):
    """Scores pairs of images given by their row in the dataset's embedding matrix."""

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(len(rows), len(cols)) scores of every row image against every column image."""
        ...

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Scores of the pairs (a[i], b[i])."""
        ...


class CosineScorer:
    """The raw cosine score of L2-normalised embeddings (what ``FaceEngine`` compares)."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.vectors[rows] @ self.vectors[cols].T
        return out

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        import numpy as np

        out: np.ndarray = np.einsum("ij,ij->i", self.vectors[a], self.vectors[b])
        return out


@dataclass(frozen=True)
class GroupPairs:
    """One group's pairs: image rows, identity and cell per image, and the scores.

    ``identity`` and ``cell`` are small integers local to the group (indices for the
    bootstrap); ``mated_identity`` gives the identity of each mated pair.
    """

    group: str
    rows: np.ndarray
    identity: np.ndarray
    cell: np.ndarray
    identities: int
    impostor_scores: np.ndarray
    mated_scores: np.ndarray
    mated_identity: np.ndarray

    def cell_sizes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cell, identity, images) for every identity present in a cell: the bootstrap's ``cells``."""
        import numpy as np

        keys, counts = np.unique(np.stack([self.cell, self.identity]), axis=1, return_counts=True)
        return keys[0], keys[1], counts


def impostor_blocks(
    scorer: PairScorer, rows: np.ndarray, identity: np.ndarray, cell: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(scores, i, j) of the impostor pairs i < j (positions in ``rows``), block by block."""
    import numpy as np

    for c in np.unique(cell):
        members = np.flatnonzero(cell == c)
        for start in range(0, len(members), BLOCK):
            left = members[start : start + BLOCK]
            right = members[start + 1 :]
            if right.size == 0:
                continue
            scores = scorer.block(rows[left], rows[right])
            upper = np.arange(start + 1, len(members))[None, :] > np.arange(start, start + len(left))[:, None]
            keep = upper & (identity[left][:, None] != identity[right][None, :])
            i, j = np.nonzero(keep)
            yield scores[i, j].astype(np.float32), left[i], right[j]


def per_identity(identity: np.ndarray, limit: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Positions of each identity's images (identities in increasing order), at most ``limit`` of
    each: a seeded choice, kept in position order."""
    import numpy as np

    if identity.size == 0:
        return
    order = np.argsort(identity, kind="stable")
    starts = np.flatnonzero(np.r_[True, identity[order][1:] != identity[order][:-1]])
    for members in np.split(order, starts[1:]):
        yield np.sort(rng.choice(members, limit, replace=False)) if len(members) > limit else members


def at_most_per_identity(identity: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Sorted positions keeping at most ``limit`` images of each identity (a seeded choice)."""
    import numpy as np

    kept = list(per_identity(identity, limit, np.random.default_rng(seed)))
    return np.sort(np.concatenate(kept)) if kept else np.zeros(0, dtype=np.int64)


def _mated(
    rows: np.ndarray, identity: np.ndarray, max_per_identity: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import numpy as np

    a, b, who = [], [], []
    for members in per_identity(identity, max_per_identity, rng):
        if len(members) < 2:
            continue
        i, j = np.triu_indices(len(members), 1)
        a.append(rows[members[i]])
        b.append(rows[members[j]])
        who.append(np.full(len(i), identity[members[0]]))
    if not a:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(a), np.concatenate(b), np.concatenate(who)


def build_group_pairs(
    scorer: PairScorer,
    group: str,
    rows: np.ndarray,
    identity: np.ndarray,
    cell: np.ndarray,
    *,
    mated: bool,
    max_per_identity: int = 20,
    seed: int = 0,
) -> GroupPairs:
    """Score every impostor pair of the group (and its mated pairs when ``mated``)."""
    import numpy as np

    chunks = [s for s, _, _ in impostor_blocks(scorer, rows, identity, cell)]
    impostor = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if mated:
        a, b, who = _mated(rows, identity, max_per_identity, np.random.default_rng(seed))
        mated_scores = scorer.pairs(a, b).astype(np.float32) if a.size else np.zeros(0, np.float32)
    else:
        mated_scores, who = np.zeros(0, np.float32), np.zeros(0, np.int64)
    return GroupPairs(
        group=group,
        rows=rows,
        identity=identity,
        cell=cell,
        identities=int(identity.max()) + 1 if identity.size else 0,
        impostor_scores=impostor,
        mated_scores=mated_scores,
        mated_identity=who,
    )


def false_match_pairs(scorer: PairScorer, pairs: GroupPairs, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Identity indices (a, b) of every impostor pair of the group scoring at or above ``threshold``."""
    import numpy as np

    ids_a, ids_b = [], []
    for scores, i, j in impostor_blocks(scorer, pairs.rows, pairs.identity, pairs.cell):
        hit = scores >= threshold
        ids_a.append(pairs.identity[i[hit]])
        ids_b.append(pairs.identity[j[hit]])
    if not ids_a:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    return np.concatenate(ids_a), np.concatenate(ids_b)
