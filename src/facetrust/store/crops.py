"""SQL of face crops: small aligned face images kept for human review, always sealed.

A crop is sealed with the template keyring (associated data ``crop:<face id>``, so it can never
pass for a template) and references its face with ``ON DELETE CASCADE``: erasing or expiring
the face erases the crop in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from facetrust.errors import ConfigurationError
from facetrust.store.inlist import select_in

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.store.sealing import Keyring

__all__ = ["crop_keys", "face_ids_with_crops", "insert_crops", "read_crop", "require_keyring", "reseal_crops"]


def require_keyring(keyring: Keyring | None, purpose: str) -> Keyring:
    if keyring is None:
        raise ConfigurationError(
            f"Purpose {purpose!r} keeps face crops, which are only stored encrypted, and no template key is "
            "configured (FACETRUST_TEMPLATE_KEY or the template_key_file setting); nothing was indexed",
            setting="template_key",
        )
    return keyring


def _aad(face_id: str) -> bytes:
    return b"crop:" + face_id.encode()


def insert_crops(
    conn: sqlite3.Connection, keyring: Keyring | None, collection_id: int, rows: Sequence[tuple[int, str, bytes]]
) -> None:
    """Seal and store (face key, face id, encoded image) crops; refused without a keyring."""
    keyring = require_keyring(keyring, "(this collection's)")
    conn.executemany(
        "INSERT INTO face_crops(face_key, collection_id, crop) VALUES (?, ?, ?)",
        ((key, collection_id, keyring.seal(image, _aad(face_id))) for key, face_id, image in rows),
    )


def read_crop(conn: sqlite3.Connection, keyring: Keyring | None, collection_id: int, face_id: str) -> bytes | None:
    """The opened crop of a face, or None when the face has none."""
    found = conn.execute(
        "SELECT c.crop FROM face_crops c JOIN faces f ON f.id = c.face_key WHERE f.collection_id = ? AND f.face_id = ?",
        (collection_id, face_id),
    ).fetchone()
    if found is None:
        return None
    return require_keyring(keyring, "(stored crops)").open(bytes(found[0]), _aad(face_id))


def reseal_crops(conn: sqlite3.Connection, keyring: Keyring, faces: Sequence[tuple[int, str]]) -> int:
    """Re-seal the crops of these (face key, face id) faces that the current key did not seal
    (template rotation: once the old key is dropped, a crop left under it could not be opened)."""
    ids = dict(faces)
    sql = "SELECT face_key, crop FROM face_crops WHERE face_key IN ({marks})"
    stale = [
        (int(k), bytes(c)) for k, c in select_in(conn, sql, (), list(ids)) if not keyring.sealed_with_current(bytes(c))
    ]
    for key, blob in stale:
        image = keyring.open(blob, _aad(ids[key]))
        conn.execute("UPDATE face_crops SET crop = ? WHERE face_key = ?", (keyring.seal(image, _aad(ids[key])), key))
    return len(stale)


def crop_keys(conn: sqlite3.Connection, keys: Sequence[int]) -> set[int]:
    """Which of these face keys have a stored crop."""
    return {int(r[0]) for r in select_in(conn, "SELECT face_key FROM face_crops WHERE face_key IN ({marks})", (), keys)}


def face_ids_with_crops(conn: sqlite3.Connection, face_ids: list[str]) -> set[str]:
    """Which of ``face_ids`` (in any collection) have a stored crop."""
    if not face_ids:
        return set()
    sql = "SELECT f.face_id FROM faces f JOIN face_crops c ON c.face_key = f.id WHERE f.face_id IN ({marks})"
    return {str(r[0]) for r in select_in(conn, sql, (), face_ids)}
