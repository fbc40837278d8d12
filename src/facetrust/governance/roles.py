"""Roles: which operations each kind of key may call, enforced by the library's governed path.

=========  =============================================================================
admin      every operation
enroller   index and delete faces and users; record/revoke/show consent, erase subjects;
           read face crops; describe/list collections; detect faces (in images and stored
           video). No people operation: placing a new face among people identifies it
searcher   search faces and users (in images and stored video), compare faces, redact
           images; list/describe people; read face crops; describe/list collections;
           detect faces
reviewer   list the review queue and record review decisions on searches (never on its own
           key's searches); read face crops; describe/list collections
auditor    read (pseudonymised) and verify the audit log; describe/list collections
=========  =============================================================================

People's corrections and full passes (cluster, merge, split, name) are an admin's: grouping is
1:N matching, and a correction can move faces between users.

Authorisation fails closed: an unknown role may call nothing, and only ``admin`` may call an
operation this table does not name. ``DiscloseAuditLog`` is the privilege of reading the audit
log with real identities instead of pseudonyms; only ``admin`` holds it.
"""

from __future__ import annotations

from facetrust.errors import InvalidParameterError, RoleDeniedError

__all__ = ["OPERATIONS", "ROLES", "allowed_operations", "check_role", "require_role"]

ROLES = ("admin", "enroller", "searcher", "reviewer", "auditor")

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
    "ShowConsent",
    "EraseSubject",
    "GetFaceCrop",
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
    "ListPeople",
    "DescribePerson",
    "GetFaceCrop",
    "StartFaceDetection",
    "GetFaceDetection",
    "StartFaceSearch",
    "FaceSearchJob",
    "GetFaceSearch",
    "VideoSearch",
    "Redact",
    "RedactImage",
}
_REVIEWER = _BROWSE | {"RecordReview", "ListReviewQueue", "GetFaceCrop"}
_AUDITOR = _BROWSE | {"GetAuditLog", "VerifyAuditLog"}
_ADMIN_ONLY = frozenset(
    {
        "CreateCollection",
        "DeleteCollection",
        "SweepRetention",
        "EraseExternalImageId",
        "EraseUser",
        "RotateTemplates",
        "VerifyReceipt",
        "DiscloseAuditLog",
        "CreateKey",
        "RevokeKey",
        # people: grouping is 1:N matching (identifying), and corrections change users too
        "ClusterFaces",
        "MergePeople",
        "SplitPerson",
        "NamePerson",
    }
)

OPERATIONS: frozenset[str] = _ENROLLER | _SEARCHER | _REVIEWER | _AUDITOR | _ADMIN_ONLY
"""Every operation the role table knows."""

_ALLOWED: dict[str, frozenset[str]] = {
    "admin": OPERATIONS,
    "enroller": _ENROLLER,
    "searcher": _SEARCHER,
    "reviewer": _REVIEWER,
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


def may(role: str, operation: str) -> bool:
    return role == "admin" or operation in _ALLOWED.get(role, frozenset())


def require_role(key_id: str, role: str, operation: str) -> None:
    """Return if ``role`` may call ``operation``; else ``RoleDeniedError`` naming key, role and operation."""
    if not may(role, operation):
        raise RoleDeniedError(
            f"User: {key_id} (role {role}) is not authorized to perform: rekognition:{operation}",
            key_id=key_id,
            role=role,
            operation=operation,
        )
