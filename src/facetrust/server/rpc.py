"""POST /: one Rekognition JSON 1.1 request, from bytes on the wire to the JSON answer.

Order: parse the request once (``WireRequest``, server/wire.py; every later step reads it) →
read the body (bounded, with a deadline between chunks) → authenticate → name the operation →
authorize → check the content type → parse and check the members → run the operation in a
worker thread → shape the response. Every failure becomes the one error shape (server/errors.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from facetrust.config import Settings
from facetrust.errors import FacetrustError
from facetrust.governance.actor import Actor, check_case_ref, check_purpose
from facetrust.governance.recorder import logged_or_refused
from facetrust.server.auth import AuthError, Principal, SignedHead, SigV4Authenticator
from facetrust.server.errors import JSON_CONTENT_TYPE, RequestError, describe_error, error_response
from facetrust.server.metrics import Metrics
from facetrust.server.operations import OPERATIONS, Operation
from facetrust.server.protocol import (
    check_content_encoding,
    check_content_type,
    operation_name,
    parse_body,
    parse_params,
    target_operation,
)
from facetrust.server.roles import authorize
from facetrust.server.wire import CASE_HEADER, PURPOSE_HEADER, WireRequest
from facetrust.service import FaceService

__all__ = [
    "ANONYMOUS",
    "BASE_BODY_BYTES",
    "BODY_TIMEOUT_S",
    "DRAIN_BYTES",
    "MIN_BODY_RATE",
    "RpcEndpoint",
    "request_id",
]

log = logging.getLogger(__name__)

BASE_BODY_BYTES = 1024 * 1024  # a body without images: 4096 face ids fit several times over
BODY_TIMEOUT_S = 30.0  # the longest silence while a request body arrives
DRAIN_BYTES = 32 * 1024 * 1024  # read (and drop) this much of an oversized body so the client sees the answer
MIN_BODY_RATE = 16 * 1024  # bytes a second a body must average after its first BODY_TIMEOUT_S
REQUEST_ID_KEY = "facetrust.request_id"
ANONYMOUS = Principal("anonymous", "admin")  # every caller, when authentication is disabled


def request_id(request: Request) -> str:
    rid = request.scope.get(REQUEST_ID_KEY)
    return rid if isinstance(rid, str) else "-"


REVIEW_HEADER = "x-facetrust-review-required"
"""Response header on searches whose purpose requires human review of the candidates."""


class RpcEndpoint:
    """The Rekognition protocol endpoint of one app."""

    def __init__(
        self,
        service: FaceService,
        authenticator: SigV4Authenticator | None,
        settings: Settings,
        metrics: Metrics,
        operations: Mapping[str, Operation] = OPERATIONS,
        *,
        body_timeout_s: float = BODY_TIMEOUT_S,
    ) -> None:
        self.body_timeout_s = body_timeout_s
        self.service = service
        self.authenticator = authenticator
        self.settings = settings
        self.metrics = metrics
        self.operations = operations

    def body_limit(self, operation: Operation | None) -> int:
        """Bytes a body may have: room for the members plus each image in base64."""
        images = operation.images if operation is not None else 0
        return BASE_BODY_BYTES + images * 4 * math.ceil(self.settings.max_image_bytes / 3)

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        rid = request_id(request)
        label = "unknown"
        try:
            wire = WireRequest.from_scope(request.scope)
            claimed = self._claimed(wire)
            label = claimed.name if claimed is not None else "unknown"
            result = await self._serve(request, wire, claimed)
            response = Response(json.dumps(result, allow_nan=False).encode(), media_type=JSON_CONTENT_TYPE)
            if result.get("ReviewRequired"):
                response.headers[REVIEW_HEADER] = "true"
            self.metrics.completed(label, result)
        except Exception as exc:  # every failure answers in the one error shape
            status, name, message = describe_error(exc, label, rid)
            if status < 500:
                log.info("request %s %s refused: %s %s", rid, label, name, message)
            response = error_response(status, name, message, rid)
            if status == 408 or (isinstance(exc, RequestError) and exc.close):
                response.headers["connection"] = "close"  # the rest of the body is not waited for
        self.metrics.observe(label, response.status_code, time.perf_counter() - started)
        return response

    def _claimed(self, wire: WireRequest) -> Operation | None:
        """The operation X-Amz-Target names, before authentication (for the body limit and metrics)."""
        named = target_operation(wire.target or "")
        return self.operations.get(named) if named is not None else None

    async def _serve(self, request: Request, head: WireRequest, claimed: Operation | None) -> dict[str, Any]:
        refused: AuthError | None = None
        checked: SignedHead | None = None
        if self.authenticator is not None:  # no key, no body kept: it is read and dropped, then refused
            try:
                checked = await run_in_threadpool(self.authenticator.check_head, head)
            except AuthError as exc:
                refused = exc
        # a body that cannot be read (framing, a stall, too large) is answered as such first, and
        # the connection closed where that says so, with or without a key
        body = await self._read_body(request, head, self.body_limit(claimed), keep=refused is None)
        if refused is not None:
            raise refused
        wire = head.with_body(body)
        principal = await self._authenticate(wire, checked)
        try:
            name = operation_name(wire.target)
            operation = self.operations.get(name)
            if operation is None:
                raise RequestError(
                    "UnknownOperationException", f"Operation {name[:100]!r} is not supported by facetrust"
                )
        except RequestError as exc:  # a signed request for nothing served: its key's attempt is logged too
            asked = target_operation(wire.target or "") or "-"
            await run_in_threadpool(
                self.service.record_refusal, asked[:100], exc, actor=Actor(principal.key_id, principal.role)
            )
            raise
        try:
            authorize(principal, name)
            check_content_type(wire.header("content-type"))
            check_content_encoding(wire.header("content-encoding"))
            params = parse_params(
                parse_body(wire.body), operation.members, max_image_bytes=self.settings.max_image_bytes
            )
            actor = Actor(
                key_id=principal.key_id,
                role=principal.role,
                case_ref=check_case_ref(wire.header(CASE_HEADER)),
                purpose=check_purpose(wire.header(PURPOSE_HEADER)),
            )
        except FacetrustError as exc:  # a role denial or a malformed request: logged with who made it
            await run_in_threadpool(
                self.service.record_refusal, name, exc, actor=Actor(principal.key_id, principal.role)
            )
            raise

        def run() -> dict[str, Any]:  # a check of the handler's own, before the service's audited path, is logged
            return logged_or_refused(
                lambda: operation.handler(self.service, params, actor),
                lambda exc: self.service.record_refusal(name, exc, actor=actor),
            )

        return await run_in_threadpool(run)

    async def _authenticate(self, wire: WireRequest, checked: SignedHead | None) -> Principal:
        if self.authenticator is None:
            return ANONYMOUS
        try:
            return await run_in_threadpool(self.authenticator.authenticate, wire, checked)
        except AuthError as exc:
            if exc.key_id is not None and exc.role is not None:  # a verified signature, refused (a replay)
                asked = target_operation(wire.target or "") or "-"
                actor = Actor(exc.key_id, exc.role)
                await run_in_threadpool(self.service.record_refusal, asked[:100], exc, actor=actor)
            raise

    async def _read_body(self, request: Request, head: WireRequest, limit: int, *, keep: bool = True) -> bytes:
        """The body, or ImageTooLargeException (413) once it passes ``limit``, from Content-Length or while streaming.

        An oversized body is read on (and dropped) up to DRAIN_BYTES past the limit, so that an
        HTTP/1.1 client still sending it reads the answer instead of a reset connection; so is the
        body of a request already refused (``keep`` false: nothing of it is held). A body must keep
        arriving (no silence of ``body_timeout_s``) and on average at ``MIN_BODY_RATE`` bytes a
        second after its first ``body_timeout_s``: a trickle cannot hold a buffer open.
        """
        declared = head.header("content-length")
        if declared is not None and head.header("transfer-encoding") is not None:
            raise RequestError(  # which of the two frames the body is what request smuggling plays on
                "SerializationException",
                "Content-Length and Transfer-Encoding are both set: frame the body one way",
                close=True,
            )
        if declared is not None:
            if not declared.isdigit():
                raise RequestError("SerializationException", f"Content-Length {declared[:40]!r} is not a number")
            if int(declared) > limit + DRAIN_BYTES:
                raise _too_large(int(declared), limit)
        chunks: list[bytes] = []
        total = 0
        stream = request.stream()
        begun = time.monotonic()
        while True:
            allowed = self.body_timeout_s + total / MIN_BODY_RATE - (time.monotonic() - begun)
            wait = min(self.body_timeout_s, allowed)
            try:
                if wait <= 0:
                    raise TimeoutError
                chunk = await asyncio.wait_for(anext(stream), wait)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise RequestError(
                    "RequestTimeoutException",
                    f"The request body stopped arriving, or arrived slower than {MIN_BODY_RATE // 1024} KiB/s "
                    f"after its first {self.body_timeout_s:g} s; send the whole body at once",
                    status=408,
                ) from None
            except ClientDisconnect:
                raise RequestError("SerializationException", "The client closed the connection mid-body") from None
            total += len(chunk)
            if total <= limit and keep:
                chunks.append(chunk)
            elif total > limit + DRAIN_BYTES:
                break
        if total > limit:
            raise _too_large(max(total, int(declared or 0)), limit)
        return b"".join(chunks)


def _too_large(size: int, limit: int) -> RequestError:
    return RequestError(
        "ImageTooLargeException",
        f"The request body is {size} bytes; this operation accepts at most {limit} "
        "(images up to the server's max_image_bytes, base64-encoded, plus 1 MiB)",
        status=413,
    )
