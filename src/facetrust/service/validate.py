"""Checks of names, ids, limits and pagination tokens, with Rekognition's patterns."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence

from facetrust.errors import InvalidPaginationTokenError, InvalidParameterError

__all__ = [
    "check_collection_id",
    "check_external_image_id",
    "check_face_ids",
    "check_limit",
    "check_threshold",
    "check_user_id",
    "decode_token",
    "encode_token",
]

_COLLECTION = re.compile(r"[a-zA-Z0-9_.\-]{1,255}")
_EXTERNAL = re.compile(r"[a-zA-Z0-9_.\-:]{1,255}")
_USER = re.compile(r"[a-zA-Z0-9_.\-:]{1,128}")
_FACE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _check(pattern: re.Pattern[str], value: object, parameter: str, rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidParameterError(f"{parameter} {value!r} is invalid: {rule}", parameter=parameter)
    return value


def check_collection_id(value: object) -> str:
    return _check(_COLLECTION, value, "CollectionId", "use 1–255 characters from a-z A-Z 0-9 _ . -")


def check_external_image_id(value: object) -> str:
    return _check(_EXTERNAL, value, "ExternalImageId", "use 1–255 characters from a-z A-Z 0-9 _ . - :")


def check_user_id(value: object) -> str:
    return _check(_USER, value, "UserId", "use 1–128 characters from a-z A-Z 0-9 _ . - :")


def check_face_ids(values: object, *, parameter: str = "FaceIds", most: int = 4096) -> list[str]:
    if not isinstance(values, Sequence) or isinstance(values, (str, bytes)):
        raise InvalidParameterError(f"{parameter} must be a list of face ids", parameter=parameter)
    if not 1 <= len(values) <= most:
        raise InvalidParameterError(f"{parameter} must hold 1–{most} face ids; got {len(values)}", parameter=parameter)
    return [_check(_FACE, v, parameter, "a face id is a lowercase UUID") for v in values]


def check_limit(value: object, parameter: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParameterError(
            f"{parameter} {value!r} must be a whole number from {low} to {high}", parameter=parameter
        )
    return value


def check_threshold(value: object, parameter: str = "FaceMatchThreshold") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 100.0:
        raise InvalidParameterError(f"{parameter} {value!r} must be a number from 0 to 100", parameter=parameter)
    return float(value)


def encode_token(kind: str, scope: str, after: str | int) -> str:
    """An opaque next-token for listing ``kind`` in ``scope`` after ``after``."""
    raw = json.dumps({"k": kind, "s": scope, "a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: object, kind: str, scope: str) -> str | int:
    """The position a token from ``encode_token(kind, scope, …)`` stands for."""
    if not isinstance(token, str) or not 1 <= len(token) <= 2048:
        raise InvalidPaginationTokenError(f"NextToken {token!r} is not a token this listing issued")
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(data, dict) or data.get("k") != kind or data.get("s") != scope:
            raise ValueError("wrong listing")
        after = data["a"]
        if not isinstance(after, (str, int)) or isinstance(after, bool):
            raise ValueError("bad position")
        return after
    except (ValueError, KeyError, binascii.Error, UnicodeDecodeError):
        raise InvalidPaginationTokenError(
            f"NextToken is not a token this {kind} listing issued; start again without it"
        ) from None
