"""Who is asking, and in which case: recorded with every audited operation."""

from __future__ import annotations

import re
from dataclasses import dataclass

from facetrust.errors import InvalidParameterError
from facetrust.governance.policy import is_purpose_name

__all__ = ["LOCAL", "Actor", "check_case_ref", "check_purpose", "shown"]

_CASE = re.compile(r"[A-Za-z0-9_.:/#\-]{1,128}")


def check_case_ref(value: str | None) -> str | None:
    """A case reference is 1–128 of A-Z a-z 0-9 _ . : / # - (it goes into the audit log)."""
    if value is None or value == "":
        return None
    if not _CASE.fullmatch(value):
        raise InvalidParameterError(
            f"Case reference {shown(value, 128)} is invalid: use 1–128 characters from A-Z a-z 0-9 _ . : / # -",
            parameter="CaseReference",
        )
    return value


def check_purpose(value: str | None) -> str | None:
    """A purpose a request names (the ``x-facetrust-purpose`` header) is a name a policy could declare
    (1–64 of a-z 0-9 _ . -); refused otherwise before it is looked up, so its value (a header of any
    size) never goes into an audit entry or a message in full."""
    if value is None or value == "":
        return None
    if not is_purpose_name(value):
        raise InvalidParameterError(
            f"Purpose {shown(value, 64)} is not a purpose name: use 1–64 of a-z 0-9 _ . - (lower-case)",
            parameter="Purpose",
        )
    return value


def shown(value: str, limit: int = 64) -> str:
    """``value`` quoted for a message, cut at ``limit`` characters."""
    return repr(value) if len(value) <= limit else repr(value[:limit])[:-1] + "…" + repr(value[:limit])[-1]


@dataclass(frozen=True)
class Actor:
    """The access key and role behind a request, an optional case reference, and the purpose the
    request declares for operations that are not bound to a collection (CompareFaces)."""

    key_id: str
    role: str
    case_ref: str | None = None
    purpose: str | None = None

    def __post_init__(self) -> None:
        check_case_ref(self.case_ref)


LOCAL = Actor(key_id="local", role="admin")
