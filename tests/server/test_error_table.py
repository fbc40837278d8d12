"""The one mapping table: every facetrust error class has an answer, and the body shape is fixed."""

from __future__ import annotations

import errno
import inspect
import json
import sqlite3

import pytest

import facetrust.errors as errors_module
from facetrust.errors import (
    CommitUnknownError,
    ConfigurationError,
    ConflictError,
    FacetrustError,
    ImageTooLargeError,
    InvalidImageError,
    InvalidPaginationTokenError,
    InvalidParameterError,
    LimitExceededError,
    ModelError,
    ModelMismatchError,
    NotFoundError,
    PurposeRefusedError,
    ServiceBusyError,
    StoreBusyError,
    StoreUnavailableError,
)
from facetrust.server.auth import AuthError
from facetrust.server.errors import ERROR_TABLE, RequestError, describe_error, error_response
from facetrust.server.errors import INTERNAL as INTERNAL_ERROR

# Server-side failures, not the caller's: they are InternalServerError on purpose.
INTERNAL = {"FacetrustError", "ModelError", "ModelIntegrityError", "ConfigurationError"}


@pytest.mark.parametrize(
    ("error", "operation", "expected"),
    [
        (InvalidParameterError("bad", parameter="X"), "ListFaces", (400, "InvalidParameterException")),
        (InvalidPaginationTokenError("bad"), "ListFaces", (400, "InvalidPaginationTokenException")),
        (InvalidImageError("bad"), "DetectFaces", (400, "InvalidImageFormatException")),
        (ImageTooLargeError("big", limit=1, actual=2), "DetectFaces", (400, "ImageTooLargeException")),
        (NotFoundError("gone"), "DescribeCollection", (400, "ResourceNotFoundException")),
        (ConflictError("dup"), "CreateCollection", (400, "ResourceAlreadyExistsException")),
        (ConflictError("dup"), "CreateUser", (400, "ConflictException")),
        (
            ModelMismatchError("other model", resource="c", collection_model="a", engine_model="b"),
            "IndexFaces",
            (400, "InvalidParameterException"),
        ),
        (LimitExceededError("full", limit=100), "AssociateFaces", (400, "ServiceQuotaExceededException")),
        (LimitExceededError("busy", limit=20), "StartFaceDetection", (400, "LimitExceededException")),
        (LimitExceededError("busy", limit=20), "StartFaceSearch", (400, "LimitExceededException")),
        (PurposeRefusedError("no", purpose="p"), "SearchFaces", (400, "AccessDeniedException")),
        (ServiceBusyError("busy", limit=1, requested=2), "DetectFaces", (429, "ThrottlingException")),
        (StoreBusyError("locked", where="d", waited_s=30.0), "IndexFaces", (503, "ServiceUnavailableException")),
        (CommitUnknownError("lost", transaction_id=7), "IndexFaces", (409, "CommitOutcomeUnknownException")),
        (AuthError("no", code="InvalidSignatureException"), "ListFaces", (403, "InvalidSignatureException")),
        (AuthError("no", code="AccessDeniedException", status=400), "ListFaces", (400, "AccessDeniedException")),
        (RequestError("UnknownOperationException", "?"), None, (400, "UnknownOperationException")),
        (ModelError("broken"), "DetectFaces", (500, "InternalServerError")),
        (ZeroDivisionError(), "DetectFaces", (500, "InternalServerError")),
    ],
)
def test_errors_map_to_status_and_rekognition_name(
    error: Exception, operation: str | None, expected: tuple[int, str]
) -> None:
    assert describe_error(error, operation, "rid")[:2] == expected


def test_every_facetrust_error_class_is_mapped_or_deliberately_internal() -> None:
    classes = [
        obj
        for name in errors_module.__all__
        if inspect.isclass(obj := getattr(errors_module, name)) and issubclass(obj, FacetrustError)
    ]
    unmapped = [
        cls.__name__
        for cls in classes
        if cls.__name__ not in INTERNAL and not any(issubclass(cls, rule.error) for rule in ERROR_TABLE)
    ]
    assert not unmapped, f"add {unmapped} to server/errors.py ERROR_TABLE (or to INTERNAL here, with a reason)"


def test_an_internal_error_message_holds_only_the_request_id() -> None:
    status, name, message = describe_error(RuntimeError("db password is hunter2"), "ListFaces", "abc-123")

    assert (status, name) == (500, "InternalServerError")
    assert "abc-123" in message and "hunter2" not in message


def test_the_error_body_and_headers() -> None:
    response = error_response(400, "InvalidParameterException", "MaxResults 0 must be …", "rid-1")

    assert json.loads(response.body) == {"__type": "InvalidParameterException", "message": "MaxResults 0 must be …"}
    assert response.headers["x-amzn-errortype"] == "InvalidParameterException"
    assert response.headers["x-amzn-requestid"] == "rid-1"
    assert response.headers["content-type"] == "application/x-amz-json-1.1"


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.OperationalError("database or disk is full"),
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
    ],
    ids=["sqlite", "enospc", "quota"],
)
def test_a_full_disk_is_named_and_answered_503_which_botocore_retries(error: BaseException) -> None:
    status, name, message = describe_error(error, "IndexFaces", "abc-123")

    assert (status, name) == (503, "ServiceUnavailableException")
    assert message.startswith("The server's storage is full") and "abc-123" in message


def test_other_os_and_database_errors_stay_internal() -> None:
    assert describe_error(sqlite3.OperationalError("disk I/O error"), "IndexFaces", "r")[:2] == INTERNAL_ERROR
    assert describe_error(OSError(errno.EACCES, "Permission denied"), "IndexFaces", "r")[:2] == INTERNAL_ERROR


@pytest.mark.parametrize(
    "error",
    [
        StoreBusyError(
            "PostgreSQL store postgresql://app@db.internal/faces is locked by another process", where="x", waited_s=30.0
        ),
        StoreUnavailableError("Cannot open the PostgreSQL store postgresql://app@db.internal/faces: refused"),
    ],
)
def test_an_answer_the_store_could_not_take_names_no_store_to_the_client_only_to_the_log(
    error: FacetrustError, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="facetrust.server.errors"):
        status, name, message = describe_error(error, "SearchFaces", "rid-7")
    assert (status, name) == (503, "ServiceUnavailableException")
    assert "nothing was done" in message and "rid-7" in message and "db.internal" not in message
    assert "postgresql://app@db.internal/faces" in caplog.text and "Traceback" not in caplog.text


def test_a_request_the_servers_configuration_refuses_names_the_setting_and_logs_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = ConfigurationError(
        "Purpose 'cases' keeps face crops, which are only stored encrypted, and no template key is configured",
        setting="template_key",
    )
    with caplog.at_level("ERROR", logger="facetrust.server.errors"):
        status, name, message = describe_error(error, "IndexFaces", "rid-9")

    assert (status, name) == INTERNAL_ERROR
    assert "template_key" in message and "rid-9" in message and "not done" in message
    assert "keeps face crops" in caplog.text and "rid-9" in caplog.text and "Traceback" not in caplog.text
