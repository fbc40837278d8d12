"""The app factory: ``create_app(service, authenticator=..., settings=...)`` → a Starlette app.

Routes: ``POST /`` (Rekognition JSON 1.1, server/rpc.py), ``GET /`` (sends a browser to ``/ui/``),
``GET /health``, ``GET /metrics`` (Prometheus text), and ``/ui`` (the static folder server/web/,
when it exists). Every response carries ``x-amzn-RequestId``; errors of any route have the one error shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facetrust.config import Settings
from facetrust.errors import StoreBusyError, StoreUnavailableError
from facetrust.governance.actor import Actor
from facetrust.server.auth import SigV4Authenticator
from facetrust.server.errors import describe_error, error_response
from facetrust.server.loopback import LoopbackHostsOnly
from facetrust.server.metrics import CONTENT_TYPE, Metrics
from facetrust.server.rpc import BODY_TIMEOUT_S, REQUEST_ID_KEY, RpcEndpoint, request_id
from facetrust.service import FaceService
from facetrust.service.anchoring import ChainAnchorer
from facetrust.service.replica import policy_fingerprint
from facetrust.service.sweeper import LeasedSweeper
from facetrust.service.tailkeeper import LeasedTailKeeper
from facetrust.service.vacuumer import LeasedVacuumer

__all__ = ["UI_PATH", "WEB_DIR", "create_app"]

WEB_DIR = Path(__file__).resolve().parent / "web"
UI_PATH = "/ui/"
SWEEPER = Actor(key_id="retention-sweeper", role="admin")
VACUUMER = Actor(key_id="store-vacuumer", role="admin")
REFRESH_S = 5.0  # how often a server catches its open indexes up with the store, at the longest
log = logging.getLogger(__name__)


# The console's pages load only their own scripts and style sheet, and show pictures the browser
# made itself (blob: URLs); no other page may frame them, and nothing is sniffed into another type.
CONSOLE_POLICY = (
    "default-src 'self'; img-src 'self' blob:; media-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_EVERY_RESPONSE = {"x-content-type-options": "nosniff"}
_CONSOLE_HEADERS = {
    "content-security-policy": CONSOLE_POLICY,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


class RequestIdMiddleware:
    """Give each HTTP request an id (``x-amzn-RequestId`` on its response, and in the log lines about
    it); every response is ``X-Content-Type-Options: nosniff``, and the console's pages (``/ui``) also
    carry a content security policy that allows only the console's own files, and no framing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = str(uuid.uuid4())
        scope[REQUEST_ID_KEY] = rid
        extra = dict(_EVERY_RESPONSE)
        if scope["path"] == "/ui" or scope["path"].startswith(UI_PATH):
            extra.update(_CONSOLE_HEADERS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "x-amzn-requestid" not in headers:
                    headers.append("x-amzn-RequestId", rid)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _attempt(what: str, run: Callable[[], Any]) -> Any:
    """``run()``, or None when it failed: logged, and tried again at the next step. The store out of
    reach (PostgreSQL down) or locked by a long write is said in one line naming it, without a
    traceback: every part of every step would otherwise log one, every few seconds of an outage."""
    try:
        return run()
    except (StoreUnavailableError, StoreBusyError) as exc:
        log.warning("%s put off to the next step: %s", what, exc.message)
    except Exception:
        log.exception("%s failed", what)
    return None


def _replica_step(
    service: FaceService,
    sweeper: LeasedSweeper | None,
    settings: Settings,
    keeper: LeasedTailKeeper | None = None,
    anchorer: ChainAnchorer | None = None,
    vacuumer: LeasedVacuumer | None = None,
) -> None:
    """One background step: the retention sweep (on the replica holding its lease), the store's vacuum
    when an erasure is due for one (on the replica that takes its lease), every open index caught up
    with the store, video jobs whose replica died taken over, a bounded batch of per-face statistics
    computed (on the replica holding their lease), the audit chain's new entries verified and its tip
    anchored in this replica's head file (on every replica). A failure is logged and retried."""
    result = _attempt("retention sweep", sweeper.tick) if sweeper is not None else None
    if result is not None and result.expired:
        log.info("retention sweep erased %d expired faces", len(result.expired))
    vacuumed = vacuumer.tick() if vacuumer is not None else None  # logs its own failures
    if vacuumed is not None:
        log.info("store vacuumed after erasures: %s", vacuumed)
    _attempt("index refresh", service.indexes.refresh)
    _attempt("WAL checkpoint retry", service.store.retry_checkpoint)  # an erasure's, a long reader kept back
    if settings.video_root is not None:
        from facetrust.service.video_jobs import jobs_of

        _attempt("video job takeover", lambda: jobs_of(service).adopt())
    caught = _attempt("per-face statistics catch-up", keeper.tick) if keeper is not None else None
    if caught:
        log.info("per-face statistics computed for %d faces", sum(c.computed for c in caught))
    if anchorer is not None:
        _attempt("anchoring the audit chain's head", anchorer.tick)


def _replica_loop(
    service: FaceService, settings: Settings, interval: float, anchorer: ChainAnchorer
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """A lifespan that runs ``_replica_step`` every few seconds while the app runs (docs/replicas.md);
    ``anchorer`` (every replica, no lease: each anchors the whole chain) is the one /health reports on."""
    lease = settings.lease_seconds
    sweeper = None
    if interval > 0:
        sweeper = LeasedSweeper(service, SWEEPER, interval_s=interval, lease_s=lease, holder=service.holder)
    tick = min(REFRESH_S, lease / 3, interval if interval > 0 else REFRESH_S)
    keeper = LeasedTailKeeper(service.ctx, lease_s=lease, holder=service.holder)
    vacuumer = None
    if settings.vacuum_seconds > 0:
        vacuumer = LeasedVacuumer(
            service.store, VACUUMER, interval_s=settings.vacuum_seconds, lease_s=lease, holder=service.holder
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async def forever() -> None:
            while True:
                await asyncio.sleep(tick)
                await run_in_threadpool(_replica_step, service, sweeper, settings, keeper, anchorer, vacuumer)

        task = asyncio.create_task(forever())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if sweeper is not None:
                await run_in_threadpool(sweeper.stop)
            await run_in_threadpool(keeper.stop)
            if vacuumer is not None:
                await run_in_threadpool(vacuumer.stop)

    return lifespan


def _anchoring(anchorer: ChainAnchorer) -> str:
    if anchorer.stopped is not None or anchorer.store.heads.halted is not None:
        return "halted"
    return "failing" if anchorer.store.heads.failing is not None else "ok"


class WholeFiles:
    """The console's files, each served whole: the Range and If-Range headers are ignored (RFC 9110
    lets a server do so) and no Accept-Ranges is offered. Starlette answered a malformed or
    unsatisfiable range itself, in plain text, past the app's one error shape; the files are a
    few kilobytes, so nothing is lost."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in (b"range", b"if-range")]

        async def send_whole(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"accept-ranges"]
                message = {**message, "headers": kept}
            await send(message)

        await self.app({**scope, "headers": headers}, receive, send_whole)


def create_app(
    service: FaceService,
    *,
    authenticator: SigV4Authenticator | None,
    settings: Settings,
    retention_sweep_seconds: float | None = None,
    body_timeout_s: float = BODY_TIMEOUT_S,
) -> Starlette:
    """An app serving ``service`` over the Rekognition protocol.

    ``authenticator``: checks each ``POST /`` (SigV4) before anything else runs; None
    disables authentication (every caller is the anonymous admin: loopback use only, which
    ``facetrust serve`` enforces), and every route then answers only requests whose Host is a
    loopback name (server/loopback.py: no web page reaches it by DNS rebinding).
    ``settings.max_image_bytes`` bounds request bodies.
    The caller owns ``service`` and closes it after the server stops. Every
    ``retention_sweep_seconds`` (default: the setting; 0: never) expired faces are erased
    (``FaceService.sweep_retention``) by the one replica holding the sweep lease; within
    ``settings.vacuum_seconds`` of an erasure (0: never) the store is vacuumed, by one replica
    (``service/vacuumer.py``); every few seconds
    the open indexes catch up with the store, and (``face_tail_stats = "background"``) the replica
    holding the statistics lease computes a bounded batch of per-face statistics (docs/replicas.md).
    A request body that stops arriving for ``body_timeout_s`` is answered ``RequestTimeoutException`` (408).
    """
    metrics = Metrics()
    if authenticator is not None:  # a video job runs only while the key that started it is active
        service.key_role = authenticator.keys.role_of
    anchorer = ChainAnchorer(service.store)
    rpc = RpcEndpoint(service, authenticator, settings, metrics, body_timeout_s=body_timeout_s)

    async def health(request: Request) -> Response:
        engine = service.engine
        try:
            # from the store: FaceService.list_collections would write an audit entry (a synced
            # transaction) on every probe, and a count reveals no name
            collections = await run_in_threadpool(service.store.count_collections)
        except Exception as exc:  # the database is down or unreachable: say so, so traffic goes elsewhere
            log.error("health: the store cannot be read: %s", exc)
            down = {"status": "unavailable", "store": "unreachable", "replica": service.replica_id}
            return Response(json.dumps(down).encode(), status_code=503, media_type="application/json")
        replays = getattr(service.store, "replays", None)  # SQLite: the signatures seen, in their own file
        if authenticator is not None and replays is not None:
            try:  # every signed request records its signature there: unreadable, none can be served
                await run_in_threadpool(replays.connection)
            except Exception as exc:
                log.error("health: the replay record cannot be opened: %s", exc)
                down = {"status": "unavailable", "replay_record": "unreadable", "replica": service.replica_id}
                return Response(json.dumps(down).encode(), status_code=503, media_type="application/json")
        body: dict[str, Any] = {
            "status": "ok",
            "models": [
                {"role": "detector", "name": engine.detector.name, "id": engine.detector.model_id},
                {"role": "recogniser", "name": engine.recogniser.name, "id": engine.recogniser.model_id},
            ],
            "face_model_version": engine.model_id,
            "collections": collections,
            "authentication": authenticator is not None,
            # replicas over one store must agree on these (docs/replicas.md)
            "replica": service.replica_id,
            "policy": policy_fingerprint(service.policy),
            # "halted": this replica found a break in the audit chain and anchors it no more (its log says
            # where); "failing": its last append to the head file failed (disk full...), retried each commit
            "audit_anchoring": _anchoring(anchorer),
        }
        return Response(json.dumps(body).encode(), media_type="application/json")

    async def root(request: Request) -> Response:
        """``GET /``: where the web page is (a browser is sent there), and how to call the API."""
        body = {
            "web": UI_PATH if WEB_DIR.is_dir() else None,
            "api": "POST / with X-Amz-Target: RekognitionService.<Operation> (AWS JSON 1.1, SigV4)",
            "health": "/health",
        }
        headers = {"location": UI_PATH} if WEB_DIR.is_dir() else None
        status = 307 if WEB_DIR.is_dir() else 200
        return Response(json.dumps(body).encode(), status_code=status, media_type="application/json", headers=headers)

    async def to_ui(request: Request) -> Response:
        """``GET /ui``: to the web page, by a relative location (never one built from the Host header)."""
        return Response(status_code=307, headers={"location": UI_PATH})

    async def prometheus(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        message = f"{request.method} {request.url.path} is not served: send POST / with X-Amz-Target, or GET /health"
        return error_response(status, "UnknownOperationException", message, request_id(request))

    async def internal_error(request: Request, exc: Exception) -> Response:
        status, name, message = describe_error(exc, None, request_id(request))
        return error_response(status, name, message, request_id(request))

    routes: list[BaseRoute] = [
        Route("/", rpc.handle, methods=["POST"]),
        Route("/", root, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
    if WEB_DIR.is_dir():
        routes.append(Route(UI_PATH.rstrip("/"), to_ui, methods=["GET", "HEAD"]))
        routes.append(Mount("/ui", app=WholeFiles(StaticFiles(directory=WEB_DIR, html=True)), name="ui"))
    app = Starlette(
        routes=routes,
        lifespan=_replica_loop(
            service,
            settings,
            settings.retention_sweep_seconds if retention_sweep_seconds is None else retention_sweep_seconds,
            anchorer,
        ),
        middleware=[
            Middleware(RequestIdMiddleware),
            *([Middleware(LoopbackHostsOnly)] if authenticator is None else []),
        ],
        exception_handlers={HTTPException: http_error, Exception: internal_error},
    )
    # Starlette sends a path with (or without) a trailing slash it does not serve to the other form,
    # an absolute URL built from the request's Host header: a forged Host was echoed into Location.
    # Such paths are not served; the web page's one is redirected above, to a relative location.
    app.router.redirect_slashes = False
    return app
