"""Who is asking, and in which case: recorded with every audited operation."""

from __future__ import annotations

import re
from dataclasses import dataclass

from facetrust.errors import InvalidParameterError

__all__ = ["LOCAL", "Actor", "check_case_ref"]

_CASE = re.compile(r"[A-Za-z0-9_.:/#\-]{1,128}")


def check_case_ref(value: str | None) -> str | None:
    """A case reference is 1–128 of A-Z a-z 0-9 _ . : / # - (it goes into the audit log)."""
    if value is None or value == "":
        return None
    if not _CASE.fullmatch(value):
        raise InvalidParameterError(
            f"Case reference {value!r} is invalid: use 1–128 characters from A-Z a-z 0-9 _ . : / # -",
            parameter="CaseReference",
        )
    return value


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
