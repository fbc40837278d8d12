"""The VectorIndex protocol every backend implements, its SearchHits result, and a read/write lock.

Nothing here imports numpy at runtime, so ``import facetrust.index`` stays cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from numpy.typing import ArrayLike

__all__ = ["MAX_K", "ReadWriteLock", "SearchHits", "VectorIndex"]

#: The largest ``k`` a search accepts (Rekognition's MaxFaces allows up to 4096).
MAX_K = 4096


@dataclass(frozen=True)
class SearchHits:
    """The ``k`` best matches of each of ``q`` queries, best first.

    Attributes:
        keys: ``(q, k)`` int64 keys; ``-1`` pads rows when the index holds fewer than ``k``.
        scores: ``(q, k)`` float32 cosine similarities, descending along each row; ``-inf`` pads.

    Both arrays are read-only. ``hits[i]`` is the ``(keys, scores)`` pair of query ``i`` with the
    padding removed.
    """

    keys: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def __getitem__(self, query: int) -> tuple[np.ndarray, np.ndarray]:
        keys = self.keys[query]
        found = keys >= 0
        return keys[found], self.scores[query][found]


@runtime_checkable
class VectorIndex(Protocol):
    """A mutable set of ``key → unit vector``, searched by cosine similarity.

    Keys are non-negative int64 (the store's face ids). Vectors are L2-normalised on the way in
    (a zero vector is refused), so scores are cosine similarities whatever the caller passes.
    Every method validates its input and raises ``InvalidParameterError`` naming the bad
    parameter. Implementations are safe to share between threads: searches run concurrently
    with each other and never observe a half-applied write (see ``ReadWriteLock``).
    """

    name: str
    dim: int

    def add(self, keys: ArrayLike, vectors: ArrayLike) -> None:
        """Insert ``vectors[i]`` under ``keys[i]``; an existing key's vector is replaced."""
        ...

    def remove(self, keys: ArrayLike) -> int:
        """Remove the keys; returns how many were present (unknown keys are ignored)."""
        ...

    def search(self, queries: ArrayLike, k: int) -> SearchHits:
        """The ``k`` most similar keys of each query (``(q, dim)`` or one ``(dim,)`` vector)."""
        ...

    def search_batch(self, queries: ArrayLike, k: int) -> SearchHits:
        """The same hits as ``search`` for many queries at once (say, every face of a collection
        for a full clustering pass): searched a block of queries at a time, so memory stays
        bounded by one block and writes can go in between blocks."""
        ...

    def __len__(self) -> int: ...

    def __contains__(self, key: object) -> bool: ...

    def keys(self) -> np.ndarray:
        """Every key in the index (int64, in no particular order)."""
        ...

    def save(self, path: Path) -> None:
        """Write the index to ``path`` (a small JSON manifest) and a data file beside it, atomically."""
        ...

    def memory_bytes(self) -> int:
        """An estimate of the memory the index holds, in bytes."""
        ...


class ReadWriteLock:
    """Many readers or one writer; a waiting writer holds back new readers so it cannot starve.

    Backends take ``read()`` around searches and other queries, ``write()`` around ``add`` and
    ``remove``: a search sees the index either before or after a write, never halfway.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()
