"""The store the service's operations need, as a protocol: what a second store must provide.

``facetrust.store.sqlite.Store`` satisfies it (mypy checks it where ``FaceService`` hands its
store to the ``ServiceContext``). The operations reach the store only through these methods,
and through the SQL helper modules beside them (``records``, ``people``, ``crops``) that take
a connection the store opened. Connections are still SQLite's: a store over another database
provides connections with the same DB-API use (``execute``, ``?`` parameters), or these
signatures grow a connection type of their own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.store.anchor import HeadFile
    from facetrust.store.faces import Resealed
    from facetrust.store.rows import CollectionRow, FaceRow, NewFace, UserRow
    from facetrust.store.sealing import Keyring

__all__ = ["FaceStore"]


class FaceStore(Protocol):
    """Collections, faces and their templates, users, the change log (for derived indexes), the
    audit chain's table and head file, and transactions. Methods that write take the connection
    of a ``transaction()``; reads take an optional connection (a snapshot's) or open their own."""

    keyring: Keyring | None
    heads: HeadFile
    reclaimed: str  # when erased rows' storage is reclaimed, where not at once (an erasure receipt states it)
    resealed: str  # where a rotation's replaced templates remain until a vacuum ('' where nowhere)

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE): everything inside commits together, or nothing."""
        ...

    def snapshot(self) -> AbstractContextManager[sqlite3.Connection]:
        """A read transaction: every query inside sees one consistent state."""
        ...

    def connection(self) -> sqlite3.Connection: ...

    def checkpoint(self) -> bool: ...

    def retry_checkpoint(self) -> bool: ...

    def close(self) -> None: ...

    def check_keyring(self) -> str | None: ...

    def insert_collection(self, conn: sqlite3.Connection, name: str, model: str, purpose: str) -> CollectionRow: ...

    def get_collection(self, name: str, conn: sqlite3.Connection | None = None) -> CollectionRow | None: ...

    def list_collections(self, after_id: int, limit: int) -> list[CollectionRow]: ...

    def count_collections(self) -> int: ...

    def delete_collection(self, conn: sqlite3.Connection, collection_id: int) -> int: ...

    def counts(self, collection_id: int, conn: sqlite3.Connection | None = None) -> tuple[int, int]: ...

    def insert_faces(
        self, conn: sqlite3.Connection, collection_id: int, faces: Sequence[NewFace], *, now: float | None = None
    ) -> list[int]: ...

    def faces_by_ids(
        self, collection_id: int, face_ids: Sequence[str], conn: sqlite3.Connection | None = None
    ) -> dict[str, FaceRow]: ...

    def faces_of_image(self, collection_id: int, image_id: str, conn: sqlite3.Connection) -> list[FaceRow]: ...

    def faces_by_keys(
        self,
        collection_id: int,
        keys: Sequence[int],
        conn: sqlite3.Connection | None = None,
        *,
        users_only: bool = False,
    ) -> dict[int, FaceRow]: ...

    def list_faces(
        self, collection_id: int, *, after_key: int, limit: int, user_id: str | None = None
    ) -> list[FaceRow]: ...

    def embedding(self, collection_id: int, key: int, conn: sqlite3.Connection | None = None) -> bytes | None: ...

    def embeddings(
        self, collection_id: int, keys: Sequence[int] | None = None, conn: sqlite3.Connection | None = None
    ) -> Iterator[tuple[int, bytes]]: ...

    def reseal_batch(self, conn: sqlite3.Connection, after_key: int, limit: int) -> Resealed: ...

    def delete_faces(self, conn: sqlite3.Connection, collection_id: int, keys: Sequence[int]) -> None: ...

    def changes_since(
        self, collection_id: int, seq: int, conn: sqlite3.Connection | None = None
    ) -> list[tuple[int, int, str]]: ...

    def deleted_since(self, collection_id: int, seq: int, conn: sqlite3.Connection | None = None) -> bool: ...

    def count_expired(self, collection_id: int, now: float, conn: sqlite3.Connection | None = None) -> int: ...

    def expired_keys(
        self, collection_id: int, keys: Sequence[int], now: float, conn: sqlite3.Connection | None = None
    ) -> set[int]: ...

    def change_log_reaches(self, collection_id: int, seq: int, conn: sqlite3.Connection | None = None) -> bool: ...

    def last_change(self, collection_id: int, conn: sqlite3.Connection | None = None) -> int: ...

    def face_keys(self, collection_id: int, conn: sqlite3.Connection | None = None) -> list[int]: ...

    def insert_user(self, conn: sqlite3.Connection, collection_id: int, user_id: str) -> None: ...

    def get_user(
        self, collection_id: int, user_id: str, conn: sqlite3.Connection | None = None, now: float | None = None
    ) -> UserRow | None: ...

    def delete_user(self, conn: sqlite3.Connection, collection_id: int, user_id: str) -> None: ...

    def list_users(
        self, collection_id: int, after: str | None, limit: int, now: float | None = None
    ) -> list[UserRow]: ...

    def count_user_faces(self, collection_id: int, now: float) -> int: ...

    def set_user(
        self, conn: sqlite3.Connection, collection_id: int, keys: Sequence[int], user_id: str | None
    ) -> None: ...

    def record_ingested(
        self, conn: sqlite3.Connection, collection_id: int, sha256: str, image_id: str, now: float
    ) -> None: ...

    def record_ingested_many(
        self, conn: sqlite3.Connection, collection_id: int, images: Sequence[tuple[str, str]], now: float
    ) -> None: ...

    def ingested_images(
        self, conn: sqlite3.Connection, collection_id: int, hashes: Sequence[str], now: float | None = None
    ) -> dict[str, str]: ...

    def ingested(self, collection_id: int, hashes: Sequence[str], now: float | None = None) -> set[str]: ...

    def admit_signature(
        self, digest: str, signed_at: float, now: float, *, repeat_s: float, window_s: float
    ) -> str | None:
        """Record a presentation of a request signature (its SHA-256); why it is refused as a replay,
        or None (first use, or a repeat within ``repeat_s`` of the first). Shared by every process over
        the store (store/signatures.py)."""
        ...
