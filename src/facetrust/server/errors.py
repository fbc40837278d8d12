"""The ONE table from facetrust's errors to HTTP statuses and Rekognition's exception names, and the one error body.

Every error response has the body ``{"__type": "<Name>", "message": "<text>"}`` and the headers
``x-amzn-ErrorType: <Name>`` and ``x-amzn-RequestId``, so botocore raises
``client.exceptions.<Name>``. Errors that already speak the protocol (``RequestError`` here,
``AuthError`` from the auth module) carry their own name and status. Anything else is an
``InternalServerError`` (500) whose message holds only the request id; the log gets the
traceback under that id. A ``ConfigurationError`` (the server's own settings keep it from doing
the request) is an ``InternalServerError`` too, whose message names the setting; the log says
what, without a traceback.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from starlette.responses import Response

from facetrust.errors import (
    AuditLogDamagedError,
    CommitUnknownError,
    ConfigurationError,
    ConflictError,
    FacetrustError,
    GovernanceError,
    IdempotencyError,
    ImageTooLargeError,
    InvalidImageError,
    InvalidInputError,
    InvalidPaginationTokenError,
    InvalidParameterError,
    InvalidVideoError,
    LimitExceededError,
    ModelMismatchError,
    NotFoundError,
    ServiceBusyError,
    StoreBusyError,
    StoreUnavailableError,
    VideoLocationError,
    VideoTooLargeError,
)
from facetrust.server.auth import AuthError

__all__ = [
    "ERROR_TABLE",
    "JSON_CONTENT_TYPE",
    "ErrorRule",
    "RequestError",
    "describe_error",
    "error_response",
]

log = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"

# Rekognition answers a user that exists already (and other user conflicts) with ConflictException,
# a collection that exists already with ResourceAlreadyExistsException. facetrust's own operations
# whose conflicts are of the first kind (people corrections, a search reviewed twice) answer as users do.
_USER_OPERATIONS = frozenset(
    {
        "CreateUser",
        "DeleteUser",
        "AssociateFaces",
        "DisassociateFaces",
        "MergePeople",
        "SplitPerson",
        "NamePerson",
        "RecordReview",
    }
)


class RequestError(FacetrustError):
    """A request the protocol layer refuses before any operation runs: bad headers, body or operation name."""

    def __init__(self, code: str, message: str, *, status: int = 400, close: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.close = close  # the connection is closed after the answer (its framing cannot be trusted)


@dataclass(frozen=True)
class ErrorRule:
    """``error`` (or a subclass) raised by ``operations`` (empty: any) answers ``status`` / ``name``."""

    error: type[FacetrustError]
    status: int
    name: str
    operations: frozenset[str] = frozenset()


# First matching rule wins, so subclasses come before their parents.
ERROR_TABLE: tuple[ErrorRule, ...] = (
    ErrorRule(InvalidPaginationTokenError, 400, "InvalidPaginationTokenException"),
    ErrorRule(InvalidParameterError, 400, "InvalidParameterException"),
    ErrorRule(InvalidImageError, 400, "InvalidImageFormatException"),
    ErrorRule(ImageTooLargeError, 400, "ImageTooLargeException"),
    ErrorRule(InvalidVideoError, 400, "InvalidParameterException"),
    ErrorRule(VideoTooLargeError, 400, "VideoTooLargeException"),
    ErrorRule(VideoLocationError, 400, "InvalidS3ObjectException"),
    ErrorRule(InvalidInputError, 400, "InvalidParameterException"),
    ErrorRule(NotFoundError, 400, "ResourceNotFoundException"),
    ErrorRule(ModelMismatchError, 400, "InvalidParameterException"),
    ErrorRule(IdempotencyError, 400, "IdempotentParameterMismatchException"),
    ErrorRule(ConflictError, 400, "ConflictException", _USER_OPERATIONS),
    ErrorRule(ConflictError, 400, "ResourceAlreadyExistsException"),
    ErrorRule(LimitExceededError, 400, "LimitExceededException", frozenset({"StartFaceDetection", "StartFaceSearch"})),
    ErrorRule(LimitExceededError, 400, "ServiceQuotaExceededException"),
    ErrorRule(GovernanceError, 400, "AccessDeniedException"),
    ErrorRule(ServiceBusyError, 429, "ThrottlingException"),  # botocore retries it, with backoff
    ErrorRule(StoreBusyError, 503, "ServiceUnavailableException"),  # nothing done: botocore retries, with backoff
    # the database could not be reached (PostgreSQL down): nothing done, botocore retries it, with backoff
    ErrorRule(StoreUnavailableError, 503, "ServiceUnavailableException"),
    # a write that may have committed: a status botocore does not retry (a 500 it would retry, twice writing)
    ErrorRule(CommitUnknownError, 409, "CommitOutcomeUnknownException"),
    # the store was altered outside facetrust: a server-side fault, said plainly (no traceback)
    ErrorRule(AuditLogDamagedError, 500, "InternalServerError"),
)

INTERNAL = (500, "InternalServerError")
STORAGE_FULL = (503, "ServiceUnavailableException")  # botocore retries it, with backoff


def _storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` is the server's disk (or quota) running out: SQLite's "database or disk is
    full", or an OS write failing with ENOSPC or EDQUOT (an index snapshot, a crop)."""
    import errno
    import sqlite3

    if isinstance(exc, sqlite3.OperationalError):
        return getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or "database or disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _self_describing(exc: BaseException) -> tuple[int, str] | None:
    """(status, name) of an error that carries its own: RequestError, or the auth module's AuthError."""
    if isinstance(exc, (RequestError, AuthError)):
        return exc.status, exc.code
    return None


def _store_trouble(exc: StoreBusyError | StoreUnavailableError, operation: str | None, request_id: str) -> str:
    """The answer to a request the store could not take: the operator's log names the store (a data
    directory, a PostgreSQL URL), the client's answer does not."""
    if isinstance(exc, StoreBusyError):
        level, trouble = (
            logging.WARNING,
            f"The server's store is locked by another process writing to it for longer than {exc.waited_s:g} s, "
            "so nothing was done",
        )
    elif exc.connection_lost:  # the database rolled back the transaction the lost connection had open
        level, trouble = (
            logging.ERROR,
            "The server's connection to its database was lost during the request, so the request was not "
            "completed and the database rolled back its unfinished changes",
        )
    else:
        level, trouble = logging.ERROR, "The server's store cannot be reached, so nothing was done"
    log.log(level, "request %s (%s) refused: %s", request_id, operation or "-", exc.message)
    return f"{trouble}; retry later (request id {request_id})"


def _misconfigured(exc: ConfigurationError, operation: str | None, request_id: str) -> str:
    """The answer to a request the server's own configuration keeps it from doing (a purpose that keeps
    face crops on a server without a template key): the log says what, the client which setting."""
    log.error("request %s (%s) refused by the server's configuration: %s", request_id, operation or "-", exc.message)
    setting = f" (the {exc.setting} setting)" if exc.setting else ""
    return (
        f"The server's configuration{setting} does not allow this request, so it was not done; its operator "
        f"has the details under request id {request_id}"
    )


def describe_error(exc: BaseException, operation: str | None, request_id: str) -> tuple[int, str, str]:
    """(HTTP status, Rekognition exception name, message) for ``exc`` raised while serving ``operation``."""
    own = _self_describing(exc)
    if own is not None and isinstance(exc, FacetrustError):
        return own[0], own[1], exc.message
    if isinstance(exc, FacetrustError):
        for rule in ERROR_TABLE:
            if isinstance(exc, rule.error) and (not rule.operations or operation in rule.operations):
                if isinstance(exc, (StoreBusyError, StoreUnavailableError)):
                    return rule.status, rule.name, _store_trouble(exc, operation, request_id)
                return rule.status, rule.name, exc.message
    if isinstance(exc, ConfigurationError):  # the operator's to mend: named in the log, without a traceback
        return (*INTERNAL, _misconfigured(exc, operation, request_id))
    if _storage_full(exc):  # the operator's to mend: say what it is, not only a request id
        log.error("request %s (%s) failed: the server's storage is full", request_id, operation or "-", exc_info=exc)
        status, name = STORAGE_FULL
        return (
            status,
            name,
            (
                "The server's storage is full, so the request was not completed; retry once its operator has "
                f"freed space (request id {request_id})"
            ),
        )
    log.error("request %s (%s) failed unexpectedly", request_id, operation or "-", exc_info=exc)
    status, name = INTERNAL
    return status, name, f"The server could not complete the request; quote request id {request_id} to its operator"


def error_response(status: int, name: str, message: str, request_id: str) -> Response:
    """The one error shape: ``{"__type", "message"}`` with ``x-amzn-ErrorType`` and ``x-amzn-RequestId``."""
    body = json.dumps({"__type": name, "message": message}).encode()
    return Response(
        body,
        status_code=status,
        media_type=JSON_CONTENT_TYPE,
        # nosniff here too: an answer to an unexpected error is sent past the app's middleware
        headers={"x-amzn-ErrorType": name, "x-amzn-RequestId": request_id, "x-content-type-options": "nosniff"},
    )
