"""Keyed pseudonyms for the auditor's view of the audit log.

An auditor needs who searched what, when, under which purpose and case, how many candidates
came back and with what outcome; not who was found. So, unless full disclosure is asked for
(a separate privilege, itself logged), every identity in an entry (face ids, user ids, image
ids, ExternalImageIds and subjects) is replaced by ``HMAC-SHA256(deployment key, kind:value)``,
shortened: the same identity always gets the same pseudonym within one deployment (so an
auditor can follow one subject through the log), and nobody without the key can invert it.
Subjects are matched case-insensitively (``subject_key``), so their pseudonyms are too. The
key is made on first use and kept in the database (table ``pseudonym_key``, store/schema.py); review notes,
free text that may name people, are replaced by their length.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from typing import Any

from facetrust.store.records import subject_key

__all__ = ["Pseudonymiser", "deployment_key"]

# entry field -> kind of identity it holds (a list of them, or one)
_FIELDS = {
    "face_ids": "face",
    "crop_face_ids": "face",
    "repeated_face_ids": "face",  # an IndexFaces of an image indexed before: the faces answered again
    "searched_face_id": "face",
    "user_ids": "user",
    "searched_user_id": "user",
    "image_id": "image",
    "already_indexed": "image",  # a bulk ingest's images already indexed (a single IndexFaces says True)
    "external_image_id": "subject",
    "subject": "subject",
}
# erasure entries name their target: a subject or external image id, a user, a collection, ...
_TARGETS = {"subject": "subject", "external_image_id": "subject", "user": "user"}


def deployment_key(conn: sqlite3.Connection) -> bytes:
    """This deployment's pseudonym key, made (randomly) the first time; call inside a write transaction."""
    conn.execute("INSERT OR IGNORE INTO pseudonym_key(id, key) VALUES (1, ?)", (secrets.token_bytes(32),))
    return bytes(conn.execute("SELECT key FROM pseudonym_key WHERE id = 1").fetchone()[0])


class Pseudonymiser:
    """Replaces the identities in audit entry data with keyed pseudonyms."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def pseudonym(self, kind: str, value: str) -> str:
        text = subject_key(value) if kind == "subject" else value
        digest = hmac.new(self._key, f"{kind}:{text}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}-{digest[:20]}"

    def _one(self, kind: str, value: Any) -> Any:
        if isinstance(value, str):
            return self.pseudonym(kind, value)
        if isinstance(value, list):
            return [self._one(kind, v) for v in value]
        return value  # None, or something that is no identity

    def _fields(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` with its identity fields replaced, and those of the records it nests (a bulk
        ingest's entry lists each image's ids under ``images``)."""
        out = dict(data)
        for name, value in data.items():
            kind = _FIELDS.get(name)
            if kind is not None:
                out[name] = self._one(kind, value)
            elif isinstance(value, dict):
                out[name] = self._fields(value)
            elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
                out[name] = [self._fields(v) if isinstance(v, dict) else v for v in value]
        return out

    def entry(self, data: dict[str, Any]) -> dict[str, Any]:
        out = self._fields(data)
        target_kind = _TARGETS.get(str(out.get("erased")))
        if target_kind is not None and "target" in out:
            out["target"] = self._one(target_kind, out["target"])
        if isinstance(out.get("note"), str):
            out["note"] = f"<{len(out['note'])} characters, withheld>"
        if isinstance(out.get("error"), str):
            out["error"] = "<withheld: may name an identity>"
        out["pseudonymised"] = True
        return out
