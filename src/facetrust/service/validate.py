"""Checks of names, ids, limits and pagination tokens, with Rekognition's patterns."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Sequence

from facetrust.errors import InvalidPaginationTokenError, InvalidParameterError
from facetrust.governance.actor import shown

__all__ = [
    "LAST_TIME",
    "MAX_TOKEN",
    "check_client_token",
    "check_collection_id",
    "check_external_image_id",
    "check_face_ids",
    "check_limit",
    "check_subject",
    "check_text",
    "check_threshold",
    "check_time",
    "check_user_id",
    "decode_position",
    "decode_ranked",
    "decode_token",
    "decode_user_id",
    "encode_token",
    "read_iso_time",
]

_COLLECTION = re.compile(r"[a-zA-Z0-9_.\-]{1,255}")
_EXTERNAL = re.compile(r"[a-zA-Z0-9_.\-:]{1,255}")
_USER = re.compile(r"[a-zA-Z0-9_.\-:]{1,128}")
_CLIENT_TOKEN = re.compile(r"[a-zA-Z0-9_\-]{1,64}")
_FACE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _check(pattern: re.Pattern[str], value: object, parameter: str, rule: str) -> str:
    """``value`` when it is a string ``pattern`` matches whole; refused otherwise, quoted short (a
    value of any size never goes whole into a message, nor through it into the audit log)."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        quoted = shown(value) if isinstance(value, str) else _cut(repr(value))
        raise InvalidParameterError(f"{parameter} {quoted} is invalid: {rule}", parameter=parameter)
    return value


def _cut(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def check_collection_id(value: object, parameter: str = "CollectionId") -> str:
    return _check(_COLLECTION, value, parameter, "use 1–255 characters from a-z A-Z 0-9 _ . -")


def check_client_token(value: object) -> str:
    return _check(_CLIENT_TOKEN, value, "ClientRequestToken", "use 1–64 characters from a-z A-Z 0-9 _ -")


def check_external_image_id(value: object, parameter: str = "ExternalImageId") -> str:
    return _check(_EXTERNAL, value, parameter, "use 1–255 characters from a-z A-Z 0-9 _ . - :")


def check_subject(value: object) -> str:
    """A subject is the ExternalImageId its faces are indexed under; refused naming ``Subject``, as it is given."""
    return check_external_image_id(value, "Subject")


def check_user_id(value: object) -> str:
    return _check(_USER, value, "UserId", "use 1–128 characters from a-z A-Z 0-9 _ . - :")


def check_text(value: object, parameter: str, most: int, *, empty: bool = False, lines: bool = False) -> str:
    """Free text (a consent's basis, a review's note): a string of at most ``most`` characters
    (and, unless ``empty``, not blank) that is valid Unicode, so it can be stored, and holds no
    control character (``lines``: line breaks and tabs allowed), so it prints as it reads."""
    if not isinstance(value, str) or len(value) > most or (not empty and not value.strip()):
        size = f"0–{most}" if empty else f"1–{most}"
        raise InvalidParameterError(f"{parameter} must be text of {size} characters", parameter=parameter)
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidParameterError(
            f"{parameter} is not valid Unicode (it holds a lone surrogate)", parameter=parameter
        ) from None
    allowed = "\n\t" if lines else ""
    bad = next((c for c in value if (c < " " or "\x7f" <= c <= "\x9f") and c not in allowed), None)
    if bad is not None:
        raise InvalidParameterError(f"{parameter} holds the control character {bad!r}", parameter=parameter)
    turn = next((c for c in value if c in _BIDI_CONTROLS), None)
    if turn is not None:
        raise InvalidParameterError(
            f"{parameter} holds the bidirectional control U+{ord(turn):04X}, which makes text print in "
            "another order than it reads",
            parameter=parameter,
        )
    return value


# Embeddings, overrides and isolates reorder the text after them as it is shown ("Trojan Source",
# CVE-2021-42574); the marks U+200E, U+200F and U+061C, which right-to-left writing needs, only mark.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_time(value: object, parameter: str) -> float:
    """A time in seconds since the epoch, from 1970 to 9998-12-31T00:00:00Z (a date every renderer can show)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= LAST_TIME:
        raise InvalidParameterError(
            f"{parameter} {_cut(repr(value))} is invalid: give seconds since 1970 up to 9998-12-31T00:00:00Z",
            parameter=parameter,
        )
    return float(value)


def read_iso_time(text: str, what: str) -> float:
    """An ISO 8601 date or time given as text (``2027-01-15``, ``2027-01-15T08:00:00Z``,
    ``2027-01-15T10:00:00+02:00``; ``t`` and ``z`` in either case) → seconds since the epoch, UTC
    where it gives no offset, from 1970 to 9998-12-31T00:00:00Z. Refused as ``InvalidParameterError``
    naming ``what`` (the parameter, as the caller spells it) and the value cut at 64 characters:
    a leap second (``:60``) as not supported, a year before 1970 or past 9998 as out of range."""
    if not isinstance(text, str):
        raise InvalidParameterError(
            f"{what} must be an ISO 8601 date or time (text); got {type(text).__name__}", parameter=what
        )
    upper = text.upper()  # Python reads "T" and "Z" only
    try:
        if not text.isascii():  # digits of other scripts, and separators Python would take
            raise ValueError("not ASCII")
        when = dt.datetime.fromisoformat(upper)
    except ValueError as exc:
        raise InvalidParameterError(f"{what} {shown(text)} {_unread(upper, str(exc))}", parameter=what) from None
    seconds = (when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)).timestamp()
    if not 0 <= seconds <= LAST_TIME:
        raise InvalidParameterError(f"{what} {shown(text)} {_OUT_OF_RANGE}", parameter=what)
    return seconds


_OUT_OF_RANGE = "is out of range: give a time from 1970 to 9998-12-31T00:00:00Z"
_LEAP_SECOND = re.compile(r"(?<=[T ])(\d\d:?\d\d:?)60(?=$|[.,Z+\-])")
_FAR_YEAR = re.compile(r"-\d|\+?\d{5,}-")  # a year before year 0, or one of five digits or more
_FIELD = re.compile(r"(year|month|day|hour|minute|second|microsecond) [a-z0-9 .]+|offset .*")


def _unread(upper: str, reason: str) -> str:
    """Why ``upper`` (a time, upper-cased) did not read, given Python's ``reason``."""
    if _FAR_YEAR.match(upper) or reason.startswith("year "):
        return _OUT_OF_RANGE
    if reason.startswith("second ") and _LEAP_SECOND.search(upper):
        return "names a leap second (:60), which is not supported: give the second before it (:59)"
    field = _FIELD.fullmatch(reason)
    if field is not None:
        why = "its offset must be less than 24 hours" if reason.startswith("offset") else reason
        return f"is not a valid date or time: {why}"
    return "is not an ISO 8601 date or time (e.g. 2027-01-15 or 2027-01-15T08:00:00Z)"


def check_face_ids(values: object, *, parameter: str = "FaceIds", most: int = 4096) -> list[str]:
    if not isinstance(values, Sequence) or isinstance(values, (str, bytes)):
        raise InvalidParameterError(f"{parameter} must be a list of face ids", parameter=parameter)
    if not 1 <= len(values) <= most:
        raise InvalidParameterError(f"{parameter} must hold 1–{most} face ids; got {len(values)}", parameter=parameter)
    return [_check(_FACE, v, parameter, "a face id is a lowercase UUID") for v in values]


def check_limit(value: object, parameter: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParameterError(
            f"{parameter} {_cut(repr(value))} must be a whole number from {low} to {high}", parameter=parameter
        )
    return value


def check_threshold(value: object, parameter: str = "FaceMatchThreshold") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 100.0:
        raise InvalidParameterError(
            f"{parameter} {_cut(repr(value))} must be a number from 0 to 100", parameter=parameter
        )
    return float(value)


def _foreign(kind: str) -> InvalidPaginationTokenError:
    return InvalidPaginationTokenError(f"NextToken is not a token this {kind} listing issued; start again without it")


def decode_position(token: object, kind: str, scope: str | int) -> int:
    """``decode_token`` for a listing that pages by integer positions (row keys, indexes)."""
    after = decode_token(token, kind, scope)
    if not isinstance(after, int):
        raise _foreign(kind)
    return after


_RANKED = re.compile(r"(0|[1-9][0-9]{0,18}):([A-Za-z0-9-]{1,64})")


def decode_ranked(token: object, kind: str, scope: str | int) -> tuple[int, str]:
    """``decode_token`` for a listing ordered by a count, largest first, then by id (ListPeople:
    ``encode_token(kind, scope, f"{count}:{id}")``): the last item's count and id."""
    after = decode_token(token, kind, scope)
    found = _RANKED.fullmatch(after) if isinstance(after, str) else None
    if found is None:
        raise _foreign(kind)
    return int(found.group(1)), found.group(2)


def decode_user_id(token: object, kind: str, scope: str | int) -> str:
    """``decode_token`` for a listing that pages by user id (ListUsers): the position must be a
    UserId, so nothing else (a NUL, which PostgreSQL cannot compare) reaches the store."""
    after = decode_token(token, kind, scope)
    if not isinstance(after, str) or not _USER.fullmatch(after):
        raise _foreign(kind)
    return after


def encode_token(kind: str, scope: str | int, after: str | int) -> str:
    """An opaque next-token for listing ``kind`` in ``scope`` after ``after``. Scopes and positions
    are short (a row id, a job id, a UserId), so every token fits ``MAX_TOKEN``."""
    raw = json.dumps({"k": kind, "s": scope, "a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


LAST_TIME = 253_370_678_400.0  # 9998-12-31T00:00:00Z: the latest time a consent or receipt may name
_MAX_POSITION = 2**63 - 1  # a position is a row key or an index: a signed 64-bit integer at most
MAX_TOKEN = 255  # botocore's PaginationToken (and Rekognition's): the longest token issued or taken


def _same(value: object, wanted: str | int) -> bool:
    """Equal and of the same type (JSON's true is not the row id 1, nor "7" the row id 7)."""
    return type(value) is type(wanted) and value == wanted


def decode_token(token: object, kind: str, scope: str | int) -> str | int:
    """The position a token from ``encode_token(kind, scope, …)`` stands for (a name, or an integer
    from 0 to 2**63 − 1); anything else is ``InvalidPaginationTokenError``. A token longer than
    ``MAX_TOKEN`` was not issued, and refusing it first bounds what ``json.loads`` is given (a
    hand-made ``[[[…`` nested deeper than the interpreter's recursion limit)."""
    if not isinstance(token, str) or not 1 <= len(token) <= MAX_TOKEN:
        shown = token[:100] + "…" if isinstance(token, str) and len(token) > 100 else token
        raise InvalidPaginationTokenError(
            f"NextToken {shown!r} is not a token this listing issued (a token is 1–{MAX_TOKEN} characters)"
        )
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(data, dict) or not _same(data.get("k"), kind) or not _same(data.get("s"), scope):
            raise ValueError("wrong listing")
        after: str | int = data["a"]
        if isinstance(after, str):
            after.encode()  # a lone surrogate is no name
        elif isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= _MAX_POSITION:
            raise ValueError("bad position")
        return after
    except (ValueError, KeyError, binascii.Error, UnicodeError, RecursionError):  # RecursionError: nesting, as above
        raise _foreign(kind) from None
