"""AWS Signature Version 4 verification: who signed a request (a ``Principal``), or ``AuthError``.

The canonical request is rebuilt the way botocore builds it (``botocore.auth.SigV4Auth``), so an
unmodified boto3 client authenticates with a facetrust key as its access key id and secret.
What is checked, in order, and the error each check raises, is listed in docs/auth.md.
"""

from __future__ import annotations

import calendar
import hashlib
import heapq
import hmac
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

from facetrust.errors import ConfigurationError, FacetrustError, StoreUnavailableError
from facetrust.server.replays import StoreReplays
from facetrust.store.signatures import replayed

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.server.keys import KeyStore
    from facetrust.server.wire import WireRequest
    from facetrust.store.protocol import FaceStore

__all__ = ["AuthError", "Principal", "ReplayCache", "SigV4Authenticator", "SignedHead"]

logger = logging.getLogger(__name__)

AuthCode = Literal[
    "InvalidSignatureException",
    "UnrecognizedClientException",
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "AccessDeniedException",
]

_STATUS: dict[str, int] = {
    "InvalidSignatureException": 403,
    "UnrecognizedClientException": 403,
    "MissingAuthenticationTokenException": 403,
    "IncompleteSignatureException": 403,
    "AccessDeniedException": 400,
}

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "rekognition"
_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")  # YYYYMMDDTHHMMSSZ, exactly
_REGION = re.compile(r"(?![0-9]+$)(?!-)[a-zA-Z0-9-]{1,63}(?<!-)")  # botocore's validate_region_name
_DATE = re.compile(r"[0-9]{8}")
_KEY_ID = re.compile(r"[A-Za-z0-9]{1,128}")
_HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_UNRECOGNIZED = "The security token included in the request is invalid."
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method."
)


class AuthError(FacetrustError):
    """A request is not authenticated, or its principal may not call the operation.

    ``code`` is the AWS error name the HTTP layer returns, ``status`` its HTTP status (403 for
    signature and key problems, 400 for ``AccessDeniedException`` as Rekognition models it).
    ``key_id``, ``role`` and ``operation`` are set when known. Messages never hold a secret.
    """

    code = "AuthError"

    def __init__(
        self,
        message: str,
        *,
        code: AuthCode,
        status: int | None = None,
        key_id: str | None = None,
        role: str | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = _STATUS[code] if status is None else status
        self.key_id = key_id
        self.role = role
        self.operation = operation


@dataclass(frozen=True)
class Principal:
    """Who made a request: the key's id and its role."""

    key_id: str
    role: str


@dataclass(frozen=True)
class SignedHead:
    """What ``SigV4Authenticator.check_head`` found: the parsed Authorization header, the signing
    time (as written, and in seconds), and the active key's secret and role."""

    auth: _Authorization
    amz_date: str
    signed_at: float
    secret: str = field(repr=False)
    role: str


@dataclass(frozen=True)
class _Authorization:
    """The parts of an ``Authorization: AWS4-HMAC-SHA256 ...`` header."""

    key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def _incomplete(message: str) -> AuthError:
    return AuthError(message, code="IncompleteSignatureException")


def parse_authorization(value: str) -> _Authorization:
    """Split an Authorization header; ``IncompleteSignatureException`` when it is malformed."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _incomplete(f"Authorization header must use {ALGORITHM}; got {algorithm[:40]!r}")
    params: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, text = part.strip().partition("=")
        if not eq or name in params:
            raise _incomplete(f"Authorization header has a malformed or repeated parameter {part.strip()[:40]!r}")
        params[name] = text.strip()
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not params.get(name):
            raise _incomplete(f"Authorization header requires '{name}' parameter")
    if len(params) != 3:
        raise _incomplete("Authorization header must have exactly Credential, SignedHeaders and Signature")
    parts = params["Credential"].split("/")
    if (
        len(parts) != 5
        or not _KEY_ID.fullmatch(parts[0])
        or not _DATE.fullmatch(parts[1])
        or not _REGION.fullmatch(parts[2])
    ):
        raise _incomplete("Credential must be KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request")
    if parts[4] != "aws4_request":
        raise _incomplete(f"Credential should be scoped with a valid terminator: 'aws4_request', not {parts[4]!r}")
    signed = tuple(params["SignedHeaders"].split(";"))
    if any(not h or h != h.lower() or h.strip() != h for h in signed) or len(set(signed)) != len(signed):
        raise _incomplete("SignedHeaders must be distinct lower-case header names separated by ';'")
    if not _HEX_SIGNATURE.fullmatch(params["Signature"]):
        raise _incomplete("Signature must be 64 lower-case hexadecimal digits")
    return _Authorization(parts[0], parts[1], parts[2], parts[3], signed, params["Signature"])


def canonical_uri(path: str) -> str:
    """The raw (still percent-encoded) request path, normalised and encoded as botocore does."""
    segments = [s for s in path.split("/") if s and s != "."]
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        else:
            kept.append(segment)
    normal = ("/" if path.startswith("/") else "") + "/".join(kept)
    if path.endswith("/") and kept:
        normal += "/"
    return quote(normal or "/", safe="/~")


def canonical_query(query: str) -> str:
    """The raw query string's ``key=value`` pairs sorted, as botocore signs a URL's query."""
    if not query:
        return ""
    pairs = [(key, value) for key, _, value in (pair.partition("=") for pair in query.split("&"))]
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def canonical_request(
    method: str, path: str, query: str, headers: Mapping[str, str], signed: tuple[str, ...], payload_hash: str
) -> str:
    """The SigV4 canonical request; ``headers`` has lower-case names and holds every signed one."""
    lines = [f"{name}:{' '.join(headers[name].split())}" for name in signed]
    return "\n".join(
        [method.upper(), canonical_uri(path), canonical_query(query), *lines, "", ";".join(signed), payload_hash]
    )


def signature(secret: str, auth: _Authorization, amz_date: str, canonical: str) -> str:
    """The hex HMAC-SHA256 signature of ``canonical`` under the key derived from ``secret``."""
    to_sign = "\n".join([ALGORITHM, amz_date, auth.scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (auth.date, auth.region, auth.service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class ReplayCache:
    """Signatures accepted within the skew window, with when each was first accepted.

    A signature seen again within ``repeat_s`` of its first acceptance is an honest repeat
    (botocore signs with a one-second X-Amz-Date and leaves its invocation id unsigned, so
    identical calls and retries made within one second carry one signature); seen again later,
    it is a replay and refused. Entries expire ``window_s`` after their X-Amz-Date. At most
    ``capacity`` are kept: when full, the oldest is dropped and every request signed at or
    before its time is refused from then on, so a dropped signature can never be replayed.
    """

    def __init__(self, window_s: float, capacity: int, repeat_s: float = 0.0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        if not 0 <= repeat_s <= window_s:
            raise ValueError(f"repeat_s must be between 0 and window_s ({window_s}), not {repeat_s}")
        self.window_s = window_s
        self.capacity = capacity
        self.repeat_s = repeat_s
        self._heap: list[tuple[float, str]] = []
        self._seen: dict[str, float] = {}
        self._floor = float("-inf")
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, signature: str, signed_at: float, now: float) -> str | None:
        """Remember ``signature``; return why it is refused instead (None: first use, or an honest repeat)."""
        with self._lock:
            while self._heap and self._heap[0][0] + self.window_s < now:
                self._seen.pop(heapq.heappop(self._heap)[1], None)
            first = self._seen.get(signature)
            if first is not None:
                if abs(now - first) < self.repeat_s:  # not a negative age: a clock stepped back opens no window
                    return None
                return replayed(now - first)
            if signed_at <= self._floor:
                return (
                    "Signature too old to check for replay (the replay cache is full); "
                    "sign requests just before sending them"
                )
            heapq.heappush(self._heap, (signed_at, signature))
            self._seen[signature] = now
            if len(self._heap) > self.capacity:
                dropped_at, dropped = heapq.heappop(self._heap)
                self._seen.pop(dropped, None)
                self._floor = max(self._floor, dropped_at)
            return None


class SigV4Authenticator:
    """Verify AWS SigV4 header-signed requests against a ``KeyStore``.

    ``max_skew_s``: how far X-Amz-Date may be from ``clock()``, either way. ``repeat_window_s``:
    how long after its first acceptance a signature may be presented again (an honest SDK
    repeat or retry within the same signing second); later it is refused as a replay (0:
    refuse every repeat). ``replay_capacity``: how many signatures are remembered at most
    (see ``ReplayCache``). ``store``: the store shared by every replica; when given, the
    signatures seen are recorded there (``StoreReplays``) and a replay to any replica is refused;
    without it this process remembers them (``ReplayCache``, ``replay_capacity``).
    """

    def __init__(
        self,
        keys: KeyStore,
        *,
        max_skew_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        repeat_window_s: float = 10.0,
        replay_capacity: int = 200_000,
        store: FaceStore | None = None,
    ) -> None:
        self.keys = keys
        self.max_skew_s = max_skew_s
        self.clock = clock
        self.replays: ReplayCache | StoreReplays = (
            ReplayCache(max_skew_s, replay_capacity, repeat_window_s)
            if store is None
            else StoreReplays(store, max_skew_s, repeat_window_s)
        )

    def __repr__(self) -> str:
        return f"SigV4Authenticator({self.keys!r}, max_skew_s={self.max_skew_s})"

    def check_head(self, request: WireRequest) -> SignedHead:
        """What can be checked before the body arrives: an Authorization header, its dates, and an
        active key. A request failing these is refused without its body being kept, so that nobody
        without a key makes the server hold bodies (``RpcEndpoint`` drains them); what it found is
        given to ``authenticate`` with the body, so the key is looked up once a request."""
        value = request.header("authorization")
        if not value:
            raise AuthError(
                "Missing Authentication Token: sign requests with AWS Signature Version 4 using a facetrust key",
                code="MissingAuthenticationTokenException",
            )
        auth = parse_authorization(value)
        amz_date, signed_at = self._check_date(auth, request)
        now = self.clock()
        self._check_skew(amz_date, signed_at, now, auth.key_id)
        secret, role = self._secret(auth.key_id, request)
        return SignedHead(auth, amz_date, signed_at, secret, role)

    def authenticate(self, request: WireRequest, head: SignedHead | None = None) -> Principal:
        """The principal whose key signed ``request``; ``AuthError`` otherwise. ``head``: what
        ``check_head`` found for this request before its body arrived (checked here otherwise).

        Every header is read through ``request.header``, so a signed header sent twice is refused.
        """
        head = head or self.check_head(request)
        auth, role = head.auth, head.role
        payload_hash = hashlib.sha256(request.body).hexdigest()
        claimed = request.header("x-amz-content-sha256")
        if claimed is not None and claimed != payload_hash:
            raise self._refuse("x-amz-content-sha256 does not match the SHA-256 of the body", auth.key_id)
        signed = {name: request.header(name) or "" for name in auth.signed_headers}
        canonical = canonical_request(
            request.method, request.path, request.query, signed, auth.signed_headers, payload_hash
        )
        expected = signature(head.secret, auth, head.amz_date, canonical)
        if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
            logger.debug("Signature mismatch for key %s; canonical request:\n%s", auth.key_id, canonical)
            raise self._refuse(_MISMATCH, auth.key_id)
        refused = self.replays.admit(auth.signature, head.signed_at, self.clock())
        if refused is not None:  # the signature verified: who replayed it is known (AuthError.role)
            error = self._refuse(refused, auth.key_id)
            error.role = role
            raise error
        logger.debug("Authenticated key %s (role %s)", auth.key_id, role)
        return Principal(auth.key_id, role)

    @staticmethod
    def _refuse(message: str, key_id: str) -> AuthError:
        logger.info("Refused a request signed by key %s: %s", key_id, message)
        return AuthError(message, code="InvalidSignatureException", key_id=key_id)

    def _check_date(self, auth: _Authorization, request: WireRequest) -> tuple[str, float]:
        """X-Amz-Date and its time; the signed headers and the credential scope checked against it."""
        for required in ("host", "x-amz-date", *request.behaviour_headers()):
            if required not in auth.signed_headers:
                raise _incomplete(f"'{required}' must be a SignedHeader in the Authorization header")
        missing = [name for name in auth.signed_headers if request.header(name) is None]
        if missing:
            raise _incomplete(f"Signed header {missing[0]!r} is not in the request")
        amz_date = (request.header("x-amz-date") or "").strip()
        try:
            if _AMZ_DATE.fullmatch(amz_date) is None:  # strptime alone takes "t"/"z" and unpadded fields
                raise ValueError(amz_date)
            signed_at = float(calendar.timegm(time.strptime(amz_date, _TIMESTAMP)))
        except ValueError:
            raise _incomplete(
                f"X-Amz-Date must be an ISO 8601 basic time like 20240131T235959Z; got {amz_date[:40]!r}"
            ) from None
        if auth.service != SERVICE:
            raise self._refuse(f"Credential should be scoped to correct service: '{SERVICE}'", auth.key_id)
        if auth.date != amz_date[:8]:
            raise self._refuse(
                f"Date in Credential scope does not match YYYYMMDD from X-Amz-Date: {auth.date!r} != "
                f"{amz_date[:8]!r}, from {amz_date!r}",
                auth.key_id,
            )
        return amz_date, signed_at

    def _check_skew(self, amz_date: str, signed_at: float, now: float, key_id: str) -> None:
        minutes = f"{self.max_skew_s / 60:g} min."
        stamp = time.strftime(_TIMESTAMP, time.gmtime(now))
        if now - signed_at > self.max_skew_s:
            bound = time.strftime(_TIMESTAMP, time.gmtime(now - self.max_skew_s))
            raise self._refuse(
                f"Signature expired: {amz_date} is now earlier than {bound} ({stamp} - {minutes})", key_id
            )
        if signed_at - now > self.max_skew_s:
            bound = time.strftime(_TIMESTAMP, time.gmtime(now + self.max_skew_s))
            raise self._refuse(
                f"Signature not yet current: {amz_date} is still later than {bound} ({stamp} + {minutes})", key_id
            )

    def _secret(self, key_id: str, request: WireRequest) -> tuple[str, str]:
        """The secret and role of an active key; ``UnrecognizedClientException`` otherwise."""
        try:
            found = self.keys.lookup(key_id)
        except StoreUnavailableError:  # the database is down: nothing known of the key, answered 503 and retried
            raise
        except ConfigurationError as exc:  # a secret this server cannot open: the operator must act
            logger.error("Refused a request signed by key %s: its secret cannot be opened here: %s", key_id, exc)
            raise AuthError(_UNRECOGNIZED, code="UnrecognizedClientException", key_id=key_id) from None
        if request.header("x-amz-security-token") is not None:
            reason = "a session token was sent (facetrust issues no temporary credentials)"
        elif found is None:
            reason = "unknown key"
        elif found[0].revoked_at is not None:
            reason = "revoked key"
        else:
            return found[1], found[0].role
        logger.info("Refused a request signed by key %s: %s", key_id, reason)
        raise AuthError(_UNRECOGNIZED, code="UnrecognizedClientException", key_id=key_id)
