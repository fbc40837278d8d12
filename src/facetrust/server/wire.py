"""One parsed, immutable view of an HTTP request (``WireRequest``), built once and read by every step.

Authentication, the replay check, dispatch, the role check, the content-type check and the
audit entry all read the same ``WireRequest``, so no two of them can see different values of
one header. A header that is signed or that selects behaviour may be sent only once: reading
one that was repeated raises ``InvalidSignatureException`` (400), whoever reads it first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from facetrust.server.auth import AuthError

__all__ = ["BEHAVIOUR_HEADERS", "CASE_HEADER", "PURPOSE_HEADER", "TARGET_HEADER", "WireRequest"]

TARGET_HEADER = "x-amz-target"
CASE_HEADER = "x-facetrust-case-ref"
"""Optional request header: the case a request belongs to, recorded in the audit log."""

PURPOSE_HEADER = "x-facetrust-purpose"
"""Optional request header: the purpose of an operation not bound to a collection (CompareFaces)."""

BEHAVIOUR_HEADERS = (TARGET_HEADER, "content-type", CASE_HEADER, PURPOSE_HEADER)
"""Headers whose value changes what the server does: when sent, they must be signed (and sent once)."""


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


@dataclass(frozen=True)
class WireRequest:
    """A request as received: method, raw path and query, headers (lower-case names), body.

    ``headers`` holds each name once (a repeated header's values joined with ``,``, as HTTP
    folds them); ``repeated`` names the headers sent more than once, which ``header`` refuses.
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    repeated: frozenset[str] = frozenset()
    body: bytes = b""

    @classmethod
    def build(
        cls, method: str, path: str, query: str, headers: Iterable[tuple[bytes | str, bytes | str]], body: bytes = b""
    ) -> WireRequest:
        """The view of a request whose headers are ``(name, value)`` pairs in the order sent."""
        values: dict[str, list[str]] = {}
        for name, value in headers:
            values.setdefault(_text(name).lower(), []).append(_text(value))
        return cls(
            method=method.upper(),
            path=path,
            query=query,
            headers=MappingProxyType({name: ",".join(found) for name, found in values.items()}),
            repeated=frozenset(name for name, found in values.items() if len(found) > 1),
            body=body,
        )

    @classmethod
    def from_scope(cls, scope: Mapping[str, Any], body: bytes = b"") -> WireRequest:
        """The view of an ASGI HTTP request (its body read separately)."""
        raw_path = scope.get("raw_path") or scope["path"].encode()
        return cls.build(
            scope["method"], _text(raw_path), _text(scope.get("query_string", b"")), scope["headers"], body
        )

    def with_body(self, body: bytes) -> WireRequest:
        return dataclasses.replace(self, body=body)

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (lower-case), None when absent; refused when it was repeated."""
        if name in self.repeated:
            raise AuthError(
                f"Header {name!r} is sent more than once; send each signed or behaviour-selecting header once",
                code="InvalidSignatureException",
                status=400,
            )
        return self.headers.get(name)

    @property
    def target(self) -> str | None:
        """The ``X-Amz-Target`` header: the operation the request names."""
        return self.header(TARGET_HEADER)

    def behaviour_headers(self) -> tuple[str, ...]:
        """The behaviour-selecting headers this request carries (each must be signed)."""
        return tuple(name for name in BEHAVIOUR_HEADERS if name in self.headers)
