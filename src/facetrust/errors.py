"""The one exception tree of facetrust.

::

    FacetrustError                      root: catch this to catch everything we raise
    ├── InvalidInputError               the caller sent something we cannot use
    │   ├── InvalidImageError           not a decodable JPEG/PNG image
    │   ├── ImageTooLargeError          over the byte or pixel limit
    │   ├── InvalidVideoError           not a decodable video file, or truncated/corrupt
    │   ├── VideoTooLargeError          over the duration, resolution or frame limit
    │   ├── VideoLocationError          a video named outside the video root, or not there
    │   └── InvalidParameterError       a parameter has a bad value
    │       └── InvalidPaginationTokenError  a next-token that we did not issue for this listing
    ├── NotFoundError                   a named thing does not exist
    ├── ConflictError                   a named thing already exists / is bound otherwise
    │   ├── ModelMismatchError          a collection is bound to another embedding model
    │   └── IdempotencyError            a request token reused for a different request
    ├── LimitExceededError              a quota would be exceeded (e.g. faces per user)
    ├── ServiceBusyError                the service is at capacity (decode budget): retry later
    ├── StoreBusyError                  another process held the store's write lock too long: retry later
    ├── GovernanceError                 the deployment's policy refuses the request
    │   ├── PurposeRefusedError         purpose forbidden/undeclared, search not allowed, threshold too low
    │   ├── ConsentRequiredError        enrolment needs a valid consent record for the subject
    │   └── RoleDeniedError             the caller's role may not call the operation
    ├── ModelError                      a model is missing, corrupt or cannot run
    │   └── ModelIntegrityError         a model file's SHA-256 does not match the catalog
    ├── AuditLogDamagedError            an audit entry no longer reads (altered outside facetrust)
    ├── CommitUnknownError              a write whose commit was not acknowledged: check before retrying
    └── ConfigurationError              settings or a config file are invalid
        └── StoreUnavailableError       the store's database cannot be connected to, or the connection
                                        was lost mid-operation (its transaction rolled back): retry later

Every error carries structured fields (``code`` and whatever the subclass adds) besides
its message, so the CLI and the HTTP layer can render it without parsing strings.
"""

from __future__ import annotations

__all__ = [
    "AuditLogDamagedError",
    "CommitUnknownError",
    "ConfigurationError",
    "ConflictError",
    "ConsentRequiredError",
    "FacetrustError",
    "GovernanceError",
    "IdempotencyError",
    "ImageTooLargeError",
    "InvalidImageError",
    "InvalidInputError",
    "InvalidPaginationTokenError",
    "InvalidParameterError",
    "InvalidVideoError",
    "LimitExceededError",
    "ModelError",
    "ModelIntegrityError",
    "ModelMismatchError",
    "NotFoundError",
    "PurposeRefusedError",
    "RoleDeniedError",
    "ServiceBusyError",
    "StoreBusyError",
    "StoreUnavailableError",
    "VideoLocationError",
    "VideoTooLargeError",
]


class FacetrustError(Exception):
    """Root of every exception facetrust raises on purpose."""

    code = "FacetrustError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(FacetrustError):
    """The caller sent something we cannot use; retrying unchanged will fail again."""

    code = "InvalidInput"


class InvalidImageError(InvalidInputError):
    """The bytes are not a decodable image of a supported format."""

    code = "InvalidImageFormat"

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(f"{source}: {message}" if source else message)
        self.source = source


class ImageTooLargeError(InvalidInputError):
    """The image exceeds the byte or pixel limit."""

    code = "ImageTooLarge"

    def __init__(self, message: str, *, limit: int, actual: int, source: str | None = None) -> None:
        super().__init__(f"{source}: {message}" if source else message)
        self.limit = limit
        self.actual = actual
        self.source = source


class InvalidVideoError(InvalidInputError):
    """The file is not a video PyAV's FFmpeg can decode, or it is truncated or corrupt."""

    code = "InvalidVideo"

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(f"{source}: {message}" if source else message)
        self.source = source


class VideoTooLargeError(InvalidInputError):
    """The video exceeds the duration, resolution or frame limit (``limit`` names which)."""

    code = "VideoTooLarge"

    def __init__(
        self, message: str, *, limit_name: str, limit: float, actual: float, source: str | None = None
    ) -> None:
        super().__init__(f"{source}: {message}" if source else message)
        self.limit_name = limit_name
        self.limit = limit
        self.actual = actual
        self.source = source


class VideoLocationError(InvalidInputError):
    """A video named (bucket and name) outside the video root, or not found under it."""

    code = "VideoLocation"


class InvalidParameterError(InvalidInputError):
    """A parameter has a value outside what it accepts."""

    code = "InvalidParameter"

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class InvalidPaginationTokenError(InvalidParameterError):
    """A pagination token is malformed or belongs to another listing."""

    code = "InvalidPaginationToken"

    def __init__(self, message: str) -> None:
        super().__init__(message, parameter="NextToken")


class NotFoundError(FacetrustError):
    """A named resource does not exist."""

    code = "NotFound"

    def __init__(self, message: str, *, resource: str | None = None) -> None:
        super().__init__(message)
        self.resource = resource


class ConflictError(FacetrustError):
    """A named resource already exists or is bound to something else."""

    code = "Conflict"

    def __init__(self, message: str, *, resource: str | None = None) -> None:
        super().__init__(message)
        self.resource = resource


class ModelMismatchError(ConflictError):
    """A collection's embeddings come from another model than the engine's."""

    code = "ModelMismatch"

    def __init__(self, message: str, *, resource: str, collection_model: str, engine_model: str) -> None:
        super().__init__(message, resource=resource)
        self.collection_model = collection_model
        self.engine_model = engine_model


class IdempotencyError(ConflictError):
    """A client request token reused with a different request."""

    code = "IdempotentParameterMismatch"


class LimitExceededError(FacetrustError):
    """An operation would exceed a fixed quota."""

    code = "LimitExceeded"

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class ServiceBusyError(FacetrustError):
    """The service is at capacity (e.g. too many image pixels being decoded at once); retry later."""

    code = "Throttling"

    def __init__(self, message: str, *, limit: int, requested: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.requested = requested


class StoreBusyError(FacetrustError):
    """Another process held the store's write lock for longer than the store waits (SQLite's busy
    timeout, or as long on PostgreSQL's writer lock: an upgrade of an older store, a long import, a
    replica stalled inside a write); nothing was done, retry later."""

    code = "StoreBusy"

    def __init__(self, message: str, *, where: str, waited_s: float) -> None:
        super().__init__(message)
        self.where = where
        self.waited_s = waited_s


class GovernanceError(FacetrustError):
    """The deployment's policy refuses the request; nothing was changed."""

    code = "AccessDenied"

    def __init__(self, message: str, *, purpose: str | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.purpose = purpose
        self.rule = rule


class PurposeRefusedError(GovernanceError):
    """The purpose is forbidden or undeclared, or the operation breaks one of its rules."""

    code = "PurposeRefused"


class ConsentRequiredError(GovernanceError):
    """Enrolment for this purpose needs a valid consent record for the subject."""

    code = "ConsentRequired"

    def __init__(self, message: str, *, purpose: str, subject: str | None) -> None:
        super().__init__(message, purpose=purpose, rule="consent_required")
        self.subject = subject


class RoleDeniedError(GovernanceError):
    """The caller's role (or key) may not call this operation, or not on this target."""

    code = "RoleDenied"

    def __init__(self, message: str, *, key_id: str, role: str, operation: str) -> None:
        super().__init__(message, rule="role")
        self.key_id = key_id
        self.role = role
        self.operation = operation


class ModelError(FacetrustError):
    """A model is missing, corrupt or cannot be run."""

    code = "ModelError"

    def __init__(self, message: str, *, model: str | None = None) -> None:
        super().__init__(message)
        self.model = model


class ModelIntegrityError(ModelError):
    """A model file's SHA-256 does not match the one pinned in the catalog."""

    code = "ModelIntegrity"

    def __init__(self, message: str, *, model: str, expected: str, actual: str) -> None:
        super().__init__(message, model=model)
        self.expected = expected
        self.actual = actual


class AuditLogDamagedError(FacetrustError):
    """An audit entry can no longer be read (not text, not JSON, or not a JSON object): the log
    was altered outside facetrust. Verification names where the chain breaks."""

    code = "AuditLogDamaged"

    def __init__(self, message: str, *, seq: int) -> None:
        super().__init__(message)
        self.seq = seq


class CommitUnknownError(FacetrustError):
    """The database's connection was lost while it committed a write, and whether the write
    committed could not be found out: the request may have taken effect. Check (list or describe
    what it would have changed) before sending it again; a blind retry may do it twice."""

    code = "CommitUnknown"

    def __init__(self, message: str, *, transaction_id: int | None) -> None:
        super().__init__(message)
        self.transaction_id = transaction_id


class ConfigurationError(FacetrustError):
    """Settings or a configuration file are invalid."""

    code = "Configuration"

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class StoreUnavailableError(ConfigurationError):
    """The store's database could not be connected to (a PostgreSQL server down or refusing
    connections): when opening, the ``store`` setting may be wrong; once open, an outage, in which
    nothing was done and a retry later may succeed. ``connection_lost``: the connection was lost
    in the middle of an operation instead (the server stopped, its backend ended); the database
    rolled back the transaction it had open, and the message says what became of the statement."""

    code = "StoreUnavailable"

    def __init__(self, message: str, *, setting: str | None = None, connection_lost: bool = False) -> None:
        super().__init__(message, setting=setting)
        self.connection_lost = connection_lost
