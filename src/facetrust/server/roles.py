"""Roles: which Rekognition (and audit-log) operations each kind of key may call.

=========  =============================================================================
admin      every operation
enroller   index and delete faces and users; record/revoke consent, erase subjects;
           describe/list collections; detect faces (in images and stored video)
searcher   search faces and users (in images and stored video), compare faces, record
           review decisions; describe/list collections; detect faces
auditor    read and verify the audit log; describe/list collections
=========  =============================================================================

Authorisation fails closed: an unknown role may call nothing, and only ``admin`` may call an
operation this table does not name (so the server's own "unknown operation" answer applies).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from facetrust.errors import InvalidParameterError
from facetrust.server.auth import AuthError

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.server.auth import Principal

__all__ = ["OPERATIONS", "ROLES", "allowed_operations", "authorize", "check_role"]

ROLES = ("admin", "enroller", "searcher", "auditor")

_BROWSE = frozenset({"DescribeCollection", "ListCollections"})

_ENROLLER = _BROWSE | {
    "DetectFaces",
    "IndexFaces",
    "DeleteFaces",
    "ListFaces",
    "CreateUser",
    "DeleteUser",
    "ListUsers",
    "AssociateFaces",
    "DisassociateFaces",
    "RecordConsent",
    "RevokeConsent",
    "EraseSubject",
    "StartFaceDetection",
    "GetFaceDetection",
}
_SEARCHER = _BROWSE | {
    "DetectFaces",
    "CompareFaces",
    "SearchFaces",
    "SearchFacesByImage",
    "SearchUsers",
    "SearchUsersByImage",
    "RecordReview",
    "StartFaceDetection",
    "GetFaceDetection",
    "StartFaceSearch",
    "GetFaceSearch",
    "RedactImage",
}
_AUDITOR = _BROWSE | {"GetAuditLog", "VerifyAuditLog"}
_ADMIN_ONLY = frozenset({"CreateCollection", "DeleteCollection", "SweepRetention"})

OPERATIONS: frozenset[str] = _ENROLLER | _SEARCHER | _AUDITOR | _ADMIN_ONLY
"""Every operation the role table knows: the Rekognition face operations and the audit log's."""

_ALLOWED: dict[str, frozenset[str]] = {
    "admin": OPERATIONS,
    "enroller": _ENROLLER,
    "searcher": _SEARCHER,
    "auditor": _AUDITOR,
}


def check_role(role: str) -> str:
    """``role`` if it is one of ``ROLES``; else ``InvalidParameterError`` listing the valid ones."""
    if role not in _ALLOWED:
        raise InvalidParameterError(f"Unknown role {role!r}; valid roles: {', '.join(ROLES)}", parameter="role")
    return role


def allowed_operations(role: str) -> frozenset[str]:
    """The operations ``role`` may call (``admin``: all of ``OPERATIONS``, and any other)."""
    return _ALLOWED[check_role(role)]


def authorize(principal: Principal, operation: str) -> None:
    """Return if ``principal`` may call ``operation``; else raise ``AccessDeniedException``."""
    if principal.role == "admin":
        return
    if operation in _ALLOWED.get(principal.role, frozenset()):
        return
    raise AuthError(
        f"User: {principal.key_id} (role {principal.role}) is not authorized to perform: rekognition:{operation}",
        code="AccessDeniedException",
        status=400,
        key_id=principal.key_id,
        role=principal.role,
        operation=operation,
    )
