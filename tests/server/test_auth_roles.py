"""Roles: every role × operation pair of the table, failing closed, and the table in docs/auth.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from facetrust.errors import InvalidParameterError
from facetrust.server.auth import AuthError, Principal
from facetrust.server.roles import OPERATIONS, ROLES, allowed_operations, authorize

DOCS = Path(__file__).resolve().parents[2] / "docs" / "auth.md"

REKOGNITION = {
    "DetectFaces",
    "CompareFaces",
    "CreateCollection",
    "DeleteCollection",
    "DescribeCollection",
    "ListCollections",
    "IndexFaces",
    "ListFaces",
    "DeleteFaces",
    "SearchFaces",
    "SearchFacesByImage",
    "CreateUser",
    "DeleteUser",
    "ListUsers",
    "AssociateFaces",
    "DisassociateFaces",
    "SearchUsers",
    "SearchUsersByImage",
}
VIDEO = {"StartFaceDetection", "GetFaceDetection", "StartFaceSearch", "GetFaceSearch", "RedactImage"}
AUDIT = {"GetAuditLog", "VerifyAuditLog"}
GOVERNANCE = {"RecordReview", "RecordConsent", "RevokeConsent", "EraseSubject", "SweepRetention"}
# Library and CLI operations: on the same governed path, so in the same role table
LIBRARY = {
    "ShowConsent",
    "EraseExternalImageId",
    "EraseUser",
    "RotateTemplates",
    "VerifyReceipt",
    "DiscloseAuditLog",
    "CreateKey",
    "RevokeKey",
}
# Video operations of the library and CLI (VideoSearch, Redact) and a search job's run (FaceSearchJob)
VIDEO_LIBRARY = {"VideoSearch", "FaceSearchJob", "Redact"}

PEOPLE = {"ListPeople", "DescribePerson", "ClusterFaces", "MergePeople", "SplitPerson", "NamePerson"}
CONSOLE = {"GetFaceCrop", "ListReviewQueue"}

TABLE = {
    "admin": REKOGNITION | VIDEO | AUDIT | GOVERNANCE | LIBRARY | VIDEO_LIBRARY | PEOPLE | CONSOLE,
    "enroller": {
        "IndexFaces",
        "DeleteFaces",
        "ListFaces",
        "CreateUser",
        "DeleteUser",
        "ListUsers",
        "AssociateFaces",
        "DisassociateFaces",
        "DescribeCollection",
        "ListCollections",
        "DetectFaces",
        "RecordConsent",
        "RevokeConsent",
        "ShowConsent",
        "EraseSubject",  # no people operation: a face enrolled and found in a person is identified
        "GetFaceCrop",
        "StartFaceDetection",
        "GetFaceDetection",
    },
    "searcher": {
        "SearchFaces",
        "SearchFacesByImage",
        "SearchUsers",
        "SearchUsersByImage",
        "CompareFaces",
        "DetectFaces",
        "DescribeCollection",
        "ListCollections",
        "ListPeople",
        "DescribePerson",
        "GetFaceCrop",
        *VIDEO,
        *VIDEO_LIBRARY,
    },
    "reviewer": {"RecordReview", "ListReviewQueue", "GetFaceCrop", "DescribeCollection", "ListCollections"},
    "auditor": {"GetAuditLog", "VerifyAuditLog", "DescribeCollection", "ListCollections"},
}

PAIRS = [(role, op) for role in ROLES for op in sorted(OPERATIONS)]


def test_the_roles_are_admin_enroller_searcher_reviewer_auditor() -> None:
    assert ROLES == ("admin", "enroller", "searcher", "reviewer", "auditor")


def test_the_operations_are_rekognitions_face_operations_the_audit_log_and_governance() -> None:
    assert OPERATIONS == REKOGNITION | VIDEO | AUDIT | GOVERNANCE | LIBRARY | VIDEO_LIBRARY | PEOPLE | CONSOLE


@pytest.mark.parametrize("role", ROLES)
def test_allowed_operations_match_the_table(role: str) -> None:
    assert allowed_operations(role) == TABLE[role]


@pytest.mark.parametrize(("role", "operation"), PAIRS, ids=[f"{r}-{o}" for r, o in PAIRS])
def test_authorize_follows_the_table(role: str, operation: str) -> None:
    principal = Principal("FTKAAAAAAAAAAAAAAAAA", role)
    if operation in TABLE[role]:
        authorize(principal, operation)
    else:
        with pytest.raises(AuthError) as caught:
            authorize(principal, operation)
        error = caught.value
        assert (error.code, error.status, error.key_id, error.role, error.operation) == (
            "AccessDeniedException",
            400,
            "FTKAAAAAAAAAAAAAAAAA",
            role,
            operation,
        )
        assert error.message == (
            f"User: FTKAAAAAAAAAAAAAAAAA (role {role}) is not authorized to perform: rekognition:{operation}"
        )


def test_the_anonymous_admin_of_a_server_without_auth_may_call_everything() -> None:
    for operation in OPERATIONS:
        authorize(Principal("anonymous", "admin"), operation)


def test_only_admin_may_call_an_operation_the_table_does_not_name() -> None:
    authorize(Principal("k", "admin"), "DetectLabels")
    for role in ("enroller", "searcher", "auditor"):
        with pytest.raises(AuthError):
            authorize(Principal("k", role), "DetectLabels")


def test_an_unknown_role_may_call_nothing() -> None:
    for operation in OPERATIONS:
        with pytest.raises(AuthError) as caught:
            authorize(Principal("k", "root"), operation)
        assert caught.value.code == "AccessDeniedException"


def test_allowed_operations_of_an_unknown_role_lists_the_valid_roles() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        allowed_operations("root")
    assert caught.value.message == "Unknown role 'root'; valid roles: admin, enroller, searcher, reviewer, auditor"
    assert caught.value.parameter == "role"


def _docs_table() -> dict[str, set[str]]:
    """docs/auth.md's roles table: ``| operation | admin | enroller | ... |`` rows, ``yes`` where allowed."""
    text = DOCS.read_text()
    header = re.search(r"^\| operation \|(.*)\|\s*$", text, re.M)
    assert header, "docs/auth.md has no '| operation | <roles> |' table"
    roles = [cell.strip() for cell in header.group(1).split("|")]
    found: dict[str, set[str]] = {role: set() for role in roles}
    for row in re.findall(r"^\| `(\w+)` \|(.*)\|\s*$", text, re.M):
        for role, cell in zip(roles, row[1].split("|"), strict=True):
            if cell.strip() == "yes":
                found[role].add(row[0])
    return found


def test_docs_auth_md_has_the_roles_table() -> None:
    assert _docs_table() == TABLE
