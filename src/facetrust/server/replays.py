"""The signatures seen, kept in the shared store: a replay is refused by every replica over it.

``SigV4Authenticator(keys, store=…)`` uses a ``StoreReplays`` instead of its in-process
``ReplayCache``: each accepted signature is one upsert in the store (``FaceStore.admit_signature``,
store/signatures.py), keyed by the SHA-256 of the signature, and the store's answer decides. The
semantics are the cache's: a repeat within ``repeat_s`` of the first acceptance is allowed, a
later one refused with the same message, and a signature is remembered until its X-Amz-Date
leaves the skew window (``window_s``). No in-process front: a fresh signature, the common case,
must reach the store anyway, and only the store knows whether another replica saw it first.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.store.protocol import FaceStore

__all__ = ["StoreReplays"]


class StoreReplays:
    """``admit`` as ``ReplayCache.admit`` answers it, decided by ``store`` for every process sharing it."""

    def __init__(self, store: FaceStore, window_s: float, repeat_s: float = 0.0) -> None:
        if not 0 <= repeat_s <= window_s:
            raise ValueError(f"repeat_s must be between 0 and window_s ({window_s}), not {repeat_s}")
        self.store = store
        self.window_s = window_s
        self.repeat_s = repeat_s

    def __repr__(self) -> str:
        return f"StoreReplays({self.store!r}, window_s={self.window_s}, repeat_s={self.repeat_s})"

    def admit(self, signature: str, signed_at: float, now: float) -> str | None:
        """Record ``signature`` in the store; why it is refused instead (None: first use, or an honest repeat)."""
        digest = hashlib.sha256(signature.encode("ascii")).hexdigest()
        return self.store.admit_signature(digest, signed_at, now, repeat_s=self.repeat_s, window_s=self.window_s)
