"""Input validation and result padding shared by the index backends (imports numpy)."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from facetrust.errors import InvalidParameterError
from facetrust.index.base import MAX_K, SearchHits

if TYPE_CHECKING:  # pragma: no cover
    from numpy.typing import ArrayLike

__all__ = [
    "MAX_DIM",
    "as_key",
    "as_keys",
    "as_unit_vectors",
    "blockwise",
    "check_dim",
    "check_int",
    "check_k",
    "frozen_hits",
    "keys_and_vectors",
    "last_occurrences",
]

#: The widest vectors an index accepts.
MAX_DIM = 4096


def check_int(value: object, parameter: str, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``; bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidParameterError(
            f"{parameter} must be an integer, got {value!r} ({type(value).__name__})", parameter=parameter
        )
    number = int(value)
    if not low <= number <= high:
        raise InvalidParameterError(
            f"{parameter}={number} is out of range: must be between {low} and {high}", parameter=parameter
        )
    return number


def check_dim(dim: object) -> int:
    return check_int(dim, "dim", 1, MAX_DIM)


def check_k(k: object) -> int:
    return check_int(k, "k", 1, MAX_K)


def as_keys(keys: ArrayLike, parameter: str = "keys") -> np.ndarray:
    """A 1-D int64 array of non-negative keys (one int becomes a one-key array)."""
    try:
        array = np.asarray(keys)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"{parameter} must be an array of integers: {exc}", parameter=parameter) from exc
    if array.ndim > 1:
        raise InvalidParameterError(
            f"{parameter} must be one-dimensional, got shape {array.shape}", parameter=parameter
        )
    if array.size == 0:
        return np.empty(0, np.int64)
    if array.dtype.kind not in "iu":
        raise InvalidParameterError(f"{parameter} must be integers, got dtype {array.dtype}", parameter=parameter)
    if array.dtype.kind == "u" and array.max() > np.iinfo(np.int64).max:
        raise InvalidParameterError(f"{parameter} must fit in int64", parameter=parameter)
    array = np.atleast_1d(array).astype(np.int64)
    if array.min() < 0:
        raise InvalidParameterError(
            f"{parameter} must be non-negative (-1 pads search results), got {int(array.min())}",
            parameter=parameter,
        )
    return array


def as_key(key: object) -> int | None:
    """``key`` as an int when it is a non-negative integer, else None (for ``in`` tests)."""
    if isinstance(key, bool) or not isinstance(key, numbers.Integral):
        return None
    number = int(key)
    return number if number >= 0 else None


def as_unit_vectors(vectors: ArrayLike, dim: int, parameter: str) -> np.ndarray:
    """A C-contiguous float32 ``(n, dim)`` copy with unit rows; one ``(dim,)`` vector becomes ``(1, dim)``.

    Refuses non-numeric values, a wrong width, NaN or infinity, and zero vectors (no direction).
    """
    try:
        array = np.asarray(vectors)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"{parameter} must be a numeric array: {exc}", parameter=parameter) from exc
    if array.dtype.kind not in "fiu":
        raise InvalidParameterError(f"{parameter} must be numeric, got dtype {array.dtype}", parameter=parameter)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != dim:
        raise InvalidParameterError(
            f"{parameter} must have shape (n, {dim}) or ({dim},), got {np.shape(vectors)}", parameter=parameter
        )
    out = np.array(array, dtype=np.float32, order="C", copy=True)
    if not np.isfinite(out).all():
        row = int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])
        raise InvalidParameterError(f"{parameter} row {row} holds NaN or infinity", parameter=parameter)
    norms = np.linalg.norm(out, axis=1)
    if out.shape[0] and norms.min() < 1e-12:
        row = int(np.argmin(norms))
        raise InvalidParameterError(
            f"{parameter} row {row} is a zero vector: it has no direction to compare", parameter=parameter
        )
    out /= norms[:, None]
    return out


def last_occurrences(keys: np.ndarray) -> np.ndarray | None:
    """Positions that keep only the last occurrence of each key, in order; None when all are unique."""
    if keys.size < 2:
        return None
    reversed_keys = keys[::-1]
    _, first_in_reversed = np.unique(reversed_keys, return_index=True)
    if first_in_reversed.size == keys.size:
        return None
    return np.sort(keys.size - 1 - first_in_reversed)


def keys_and_vectors(keys: ArrayLike, vectors: ArrayLike, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``add`` arguments: int64 keys and unit float32 rows of equal length, repeats dropped
    (the last occurrence of a key wins)."""
    ks = as_keys(keys)
    vs = as_unit_vectors(vectors, dim, "vectors")
    if len(ks) != len(vs):
        raise InvalidParameterError(
            f"keys and vectors differ in length: {len(ks)} keys, {len(vs)} vectors", parameter="vectors"
        )
    keep = last_occurrences(ks)
    return (ks, vs) if keep is None else (ks[keep], vs[keep])


def frozen_hits(keys: np.ndarray, scores: np.ndarray) -> SearchHits:
    """SearchHits over read-only arrays, scores clipped to the cosine range."""
    np.clip(scores, -1.0, 1.0, out=scores, where=np.isfinite(scores))
    keys.flags.writeable = False
    scores.flags.writeable = False
    return SearchHits(keys=keys, scores=scores)


def blockwise(
    search: Callable[[np.ndarray, int], SearchHits], queries: ArrayLike, dim: int, k: int, block: int
) -> SearchHits:
    """``search`` over ``queries`` ``block`` at a time, stacked into one result (``search_batch``).

    Each block is its own search, so it takes the index's read lock on its own and writes can
    go in between blocks; memory beyond the result stays that of one block.
    """
    qs = as_unit_vectors(queries, dim, "queries")
    k = check_k(k)
    out_keys = np.full((len(qs), k), -1, np.int64)
    out_scores = np.full((len(qs), k), -np.inf, np.float32)
    for start in range(0, len(qs), block):
        hits = search(qs[start : start + block], k)
        out_keys[start : start + block] = hits.keys
        out_scores[start : start + block] = hits.scores
    return frozen_hits(out_keys, out_scores)
