"""Sealing templates at rest: a ``Keyring`` seals with AES-256-GCM under its current key, opens under any.

Each sealed blob starts with ``MAGIC`` and the id of the key that sealed it; the face id is
bound in as associated data. Where keys come from (files, the environment, the per-user
default) is ``facetrust.governance.crypto``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

from facetrust.errors import ConfigurationError

__all__ = ["MAGIC", "Keyring", "TemplateKey", "is_sealed"]

MAGIC = b"FTE1"
_NONCE = 12


@dataclass(frozen=True)
class TemplateKey:
    key_id: bytes  # first 8 bytes of SHA-256(key)
    secret: bytes

    def __repr__(self) -> str:  # never show the secret
        return f"TemplateKey(key_id={self.key_id.hex()})"

    @classmethod
    def from_bytes(cls, secret: bytes) -> TemplateKey:
        if len(secret) != 32:
            raise ConfigurationError(f"A template key is 32 bytes; got {len(secret)}", setting="template_key")
        return cls(hashlib.sha256(secret).digest()[:8], secret)


class Keyring:
    """Seals with the current key; opens with any key it holds.

    ``plain_ok``: templates stored in the clear are read as they are (the default key of a
    store made before encryption was the default: ``facetrust templates rotate`` seals them);
    otherwise they are refused.
    """

    def __init__(self, current: TemplateKey, older: tuple[TemplateKey, ...] = (), *, plain_ok: bool = False) -> None:
        self.current = current
        self.plain_ok = plain_ok
        self._keys = {k.key_id: k for k in (*older, current)}
        self._ciphers: dict[bytes, Any] = {}  # key id → its AESGCM, made once (a bulk import seals millions)

    def __repr__(self) -> str:
        return f"Keyring(current={self.current.key_id.hex()}, keys={len(self._keys)})"

    @property
    def older(self) -> tuple[TemplateKey, ...]:
        return tuple(k for k in self._keys.values() if k.key_id != self.current.key_id)

    def _cipher(self, key: TemplateKey) -> Any:
        found = self._ciphers.get(key.key_id)
        if found is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            found = self._ciphers[key.key_id] = AESGCM(key.secret)
        return found

    def seal(self, plain: bytes, associated: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        sealed: bytes = self._cipher(self.current).encrypt(nonce, plain, associated)
        return MAGIC + self.current.key_id + nonce + sealed

    def open(self, blob: bytes, associated: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag

        if not is_sealed(blob):
            if self.plain_ok:
                return blob
            raise ConfigurationError(
                "A stored template is not encrypted, but a template key is configured; "
                "run `facetrust templates rotate` to encrypt existing templates"
            )
        key = self._keys.get(blob[4:12])
        if key is None:
            raise ConfigurationError(
                f"A stored template was sealed with key {blob[4:12].hex()}, which is not "
                "configured (FACETRUST_TEMPLATE_KEY / template_key_file / old keys)"
            )
        nonce = blob[12 : 12 + _NONCE]
        try:
            plain: bytes = self._cipher(key).decrypt(nonce, blob[12 + _NONCE :], associated)
            return plain
        except InvalidTag:
            raise ConfigurationError("A stored template failed authentication: it was altered or moved") from None

    def knows(self, key_id: bytes) -> bool:
        """Whether this keyring holds the key with ``key_id`` (a sealed blob's bytes 4–12)."""
        return key_id in self._keys

    def sealed_with_current(self, blob: bytes) -> bool:
        return is_sealed(blob) and blob[4:12] == self.current.key_id


def is_sealed(blob: bytes) -> bool:
    return blob[:4] == MAGIC
