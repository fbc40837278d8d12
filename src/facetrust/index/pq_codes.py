"""A pq or ivf index's saved faiss indexes: its codebooks, and its per-shard codes packed into one array.

Saving the codes (``faiss.serialize_index`` of each shard's code index, which round-trips its
packed fast-scan codes exactly) lets a load skip re-encoding every row: an ivf index of
1,000,000 faces loads in 1.6 s instead of 20.8 s (bench/results/index-load.md).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from facetrust.errors import InvalidParameterError

__all__ = ["pack_codebook", "pack_codes", "unpack_codebook", "unpack_codes"]

logger = logging.getLogger(__name__)


def pack_codebook(trained: Any) -> np.ndarray:
    """The serialised trained (empty) code index; no bytes before training (``trained`` None)."""
    return np.empty(0, np.uint8) if trained is None else np.asarray(faiss.serialize_index(trained))


def unpack_codebook(data: Path, codebook: np.ndarray) -> Any:
    """The code index ``pack_codebook`` wrote to ``data``, or None when it wrote no bytes."""
    try:
        return faiss.deserialize_index(codebook) if codebook.size else None
    except RuntimeError as exc:
        raise InvalidParameterError(
            f"{data} holds unreadable codebooks ({exc}); rebuild it from the store", parameter="path"
        ) from exc


def pack_codes(shard_codes: list[Any]) -> dict[str, np.ndarray]:
    """``codes`` (every shard's serialised code index, end to end) and ``code_sizes`` (their
    lengths in bytes; 0 for a shard without codes, as before training)."""
    blobs = [pack_codebook(c) for c in shard_codes]
    return {
        "codes": np.concatenate(blobs) if blobs else np.empty(0, np.uint8),
        "code_sizes": np.array([len(b) for b in blobs], np.int64),
    }


def unpack_codes(data: Path, codes: np.ndarray, sizes: np.ndarray, shards: int) -> list[Any] | None:
    """The ``shards`` code indexes packed by ``pack_codes``; None when the file was saved with
    another number of shards (its rows are then dealt out afresh and re-encoded)."""

    def bad(why: str) -> InvalidParameterError:
        return InvalidParameterError(
            f"{data} holds unreadable shard codes ({why}); rebuild it from the store", parameter="path"
        )

    if codes.ndim != 1 or codes.dtype != np.uint8 or sizes.ndim != 1 or sizes.dtype.kind not in "iu":
        raise bad(f"codes {codes.dtype}{codes.shape}, sizes {sizes.dtype}{sizes.shape}")
    if len(sizes) and (int(sizes.min()) <= 0 or int(sizes.sum()) != len(codes)):
        raise bad(f"sizes add up to {int(sizes.sum())} of {len(codes)} bytes, or a shard has none")
    if len(sizes) != shards:
        logger.info("%s was saved with %d shards, this index has %d: its codes are rebuilt", data, len(sizes), shards)
        return None
    ends = np.cumsum(sizes)
    out = []
    for end, size in zip(ends.tolist(), sizes.tolist(), strict=True):
        try:
            out.append(faiss.deserialize_index(codes[end - size : end]))
        except RuntimeError as exc:
            raise bad(str(exc)) from exc
    return out
