"""AWS JSON 1.1 requests: the target header, the content type, the JSON body and its members.

``parse_params`` checks a body against an operation's members (types, required, unknown
ones) and decodes ``Image.Bytes`` from base64, so operations get plain, checked values.
Value rules (patterns, ranges) stay with the library, which names the parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from facetrust.errors import ImageTooLargeError, InvalidParameterError
from facetrust.server.errors import RequestError

__all__ = [
    "CONTENT_TYPES",
    "EXTENSION_PREFIX",
    "TARGET_PREFIX",
    "Kind",
    "Member",
    "check_content_type",
    "operation_name",
    "parse_body",
    "parse_params",
    "target_operation",
]

TARGET_PREFIX = "RekognitionService."
EXTENSION_PREFIX = "FacetrustService."  # facetrust's own operations may be named either way
CONTENT_TYPES = ("application/x-amz-json-1.1", "application/x-amz-json-1.0", "application/json")


class Kind(Enum):
    STRING = "a string"
    INTEGER = "an integer"
    NUMBER = "a number"
    BOOLEAN = "true or false"
    IMAGE = "an object with Bytes"
    STRINGS = "a list of strings"
    STRING_MAP = "an object of strings"
    OBJECT = "an object"


@dataclass(frozen=True)
class Member:
    """One request member: its kind, whether it is required, and (strings) the values allowed or their pattern."""

    kind: Kind
    required: bool = False
    choices: tuple[str, ...] = ()
    pattern: str | None = None


def target_operation(target: str) -> str | None:
    """The operation of an ``X-Amz-Target`` value (``RekognitionService.`` or ``FacetrustService.``)."""
    for prefix in (TARGET_PREFIX, EXTENSION_PREFIX):
        if target.startswith(prefix):
            return target[len(prefix) :]
    return None


def operation_name(target: str | None) -> str:
    """The operation named by ``X-Amz-Target: RekognitionService.<Operation>`` (``target``: its value)."""
    if not target:
        raise RequestError(
            "UnknownOperationException", "The X-Amz-Target header is missing; send RekognitionService.<Operation>"
        )
    name = target_operation(target)
    if name is None or len(target) > 128:
        raise RequestError(
            "UnknownOperationException",
            f"X-Amz-Target {target[:128]!r} is not RekognitionService.<Operation>",
        )
    return name


def check_content_type(raw: str | None) -> None:
    """Refuse a Content-Type header (``raw``: its value) that is not one of ``CONTENT_TYPES``."""
    raw = raw or ""
    media = raw.split(";", 1)[0].strip().lower()
    if media not in CONTENT_TYPES:
        raise RequestError(
            "SerializationException",
            f"Content-Type {raw[:100]!r} is not supported; send {CONTENT_TYPES[0]}",
        )


def check_content_encoding(raw: str | None) -> None:
    """Refuse a Content-Encoding header (``raw``: its value) naming any coding but identity: the body
    is read as it came, and a compressed one would otherwise fail as JSON that is not valid."""
    raw = raw or ""
    if any(c.strip().lower() not in ("", "identity") for c in raw.split(",")):
        raise RequestError(
            "SerializationException",
            f"Content-Encoding {raw[:100]!r} is not supported: "
            "send the body uncompressed (no Content-Encoding, or identity)",
        )


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


class _LongInteger(float):
    """A JSON integer of more digits than ``int()`` reads (4300 by default): read as ±infinity, as no
    double or 64-bit integer holds it, and refused as out of range by the check of its member."""

    digits: int


def _parse_int(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:  # Python's limit on the digits int() converts, not a JSON error
        big = _LongInteger(-math.inf if text.startswith("-") else math.inf)
        big.digits = len(text.lstrip("-"))
        return big


def parse_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body (an empty body is ``{}``)."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body, parse_constant=_no_constant, parse_int=_parse_int)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise RequestError("SerializationException", f"The request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise RequestError("SerializationException", f"The request body must be a JSON object, not {_json_type(value)}")
    return value


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _bad(name: str, message: str) -> InvalidParameterError:
    return InvalidParameterError(f"{name} {message}", parameter=name)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if choices and value not in choices:
        raise _bad(name, f"{value[:100]!r} is invalid; use one of {', '.join(choices)}")


def _image_bytes(name: str, value: object, max_image_bytes: int) -> bytes:
    if not isinstance(value, dict):
        raise _bad(name, f"must be {Kind.IMAGE.value}, not {_json_type(value)}")
    unknown = sorted(set(value) - {"Bytes", "S3Object"})
    if unknown:
        raise _bad(f"{name}.{unknown[0]}", "is not a member of Image; send Bytes")
    if "S3Object" in value:
        raise _bad(f"{name}.S3Object", "is not supported: facetrust does not read S3; send the image as Bytes")
    data = value.get("Bytes")
    if data is None:
        raise _bad(f"{name}.Bytes", "is required")
    if not isinstance(data, str):
        raise _bad(f"{name}.Bytes", f"must be base64 text, not {_json_type(data)}")
    encoded_limit = 4 * math.ceil(max_image_bytes / 3)
    if len(data) > encoded_limit:
        actual = len(data) * 3 // 4 - data[-2:].count("=")
        raise ImageTooLargeError(
            f"{name} is about {actual} bytes; the limit is {max_image_bytes}", limit=max_image_bytes, actual=actual
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{name}.Bytes", "is not valid base64") from None
    if not raw:
        raise _bad(f"{name}.Bytes", "is empty; send the JPEG or PNG file's bytes")
    return raw


def _wrong_item(value: object, kind: Kind) -> str:
    """Which item of a list (or object) of strings is not one: its type alone would say "not an array"."""
    if kind is Kind.STRINGS and isinstance(value, list):
        items = [(f"item {i}", item) for i, item in enumerate(value)]
    elif kind is Kind.STRING_MAP and isinstance(value, dict):
        items = [(repr(str(key)[:100]), item) for key, item in value.items()]
    else:
        return ""
    where, item = next((w, v) for w, v in items if not isinstance(v, str))
    return f"its {where} is {_json_type(item)}"


def _finite(value: float) -> bool:
    """True for a number a double holds (a JSON integer like 10**400 does not)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1  # JSON integers are unbounded in Python; SQLite's are not


def _check(name: str, value: object, member: Member, max_image_bytes: int) -> object:
    kind = member.kind
    if isinstance(value, _LongInteger) and kind in (Kind.INTEGER, Kind.NUMBER):
        raise _bad(name, f"is out of range: an integer of {value.digits} digits does not fit in any number")
    if kind is Kind.IMAGE:
        return _image_bytes(name, value, max_image_bytes)
    ok: bool
    if kind is Kind.STRING:
        ok = isinstance(value, str)
    elif kind is Kind.INTEGER:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is Kind.NUMBER:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not _finite(value):  # type: ignore[arg-type]
            raise _bad(name, f"is out of range: {str(value)[:40]} is not a finite double-precision number")
    elif kind is Kind.BOOLEAN:
        ok = isinstance(value, bool)
    elif kind is Kind.STRINGS:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif kind is Kind.OBJECT:  # its members are checked by the operation
        ok = isinstance(value, dict)
    else:
        ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    if not ok:
        item = _wrong_item(value, kind)
        raise _bad(name, f"must be {kind.value}: {item}" if item else f"must be {kind.value}, not {_json_type(value)}")
    if kind is Kind.INTEGER and not _INT64_MIN <= value <= _INT64_MAX:  # type: ignore[operator]
        digits = str(value)
        shown = digits if len(digits) <= 40 else digits[:40] + "…"
        raise _bad(name, f"is out of range: {shown} does not fit in a signed 64-bit integer")
    if kind is Kind.NUMBER:
        return float(value)  # type: ignore[arg-type]  # a double, as in Rekognition: never an int SQLite cannot hold
    if isinstance(value, str):
        _check_choice(name, value, member.choices)
        if member.pattern is not None and not re.fullmatch(member.pattern, value):
            raise _bad(name, f"{value[:100]!r} is invalid; it must match {member.pattern}")
    elif isinstance(value, list):
        for item in value:
            _check_choice(name, item, member.choices)
    return value


def parse_params(body: Mapping[str, Any], members: Mapping[str, Member], *, max_image_bytes: int) -> dict[str, Any]:
    """``body`` checked against ``members``: unknown and missing members are refused, images decoded.

    JSON null counts as absent, as botocore never sends it.
    """
    unknown = sorted(set(body) - set(members))
    if unknown:
        raise _bad(unknown[0][:100], f"is not a member of this request; known: {', '.join(members) or 'none'}")
    params: dict[str, Any] = {}
    for name, member in members.items():
        value = body.get(name)
        if value is None:
            if member.required:
                raise _bad(name, "is required")
            continue
        params[name] = _check(name, value, member, max_image_bytes)
    return params
