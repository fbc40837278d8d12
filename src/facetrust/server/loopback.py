"""Loopback names: ``is_loopback`` (an address or Host name no other machine reaches) and
``LoopbackHostsOnly``, the guard of a server running without authentication.

A server without authentication listens on a loopback address only (``facetrust serve --no-auth``),
but a web page can still reach it: its own name, made to resolve to 127.0.0.1 (DNS rebinding),
makes the server the page's own origin, and every request the page sends is the anonymous admin's.
Such a request carries the page's name in its Host header, so the guard answers only requests
whose Host is a loopback name. With authentication on, the Host is signed and not restricted.
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from facetrust.server.errors import error_response
from facetrust.server.rpc import REQUEST_ID_KEY

__all__ = ["LoopbackHostsOnly", "is_loopback"]


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (brackets allowed): addresses no other machine can reach."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The name of a Host header, without its port (``[::1]:8000`` → ``[::1]``)."""
    if header.startswith("["):
        return header.partition("]")[0] + "]"
    return header.rpartition(":")[0] if ":" in header else header


class LoopbackHostsOnly:
    """Refuse (``AccessDeniedException``, before any route runs) an HTTP request whose Host header
    is not a loopback name; a request without one (HTTP/1.0, never a browser's) is served."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hosts = [value.decode("latin-1") for name, value in scope.get("headers", []) if name.lower() == b"host"]
        refused = [h for h in hosts if not is_loopback(_host_name(h.strip()))]
        if scope["type"] == "http" and refused:
            message = (
                f"Host {refused[0][:100]!r} is not a loopback name: a server without authentication answers only "
                "requests addressed to localhost, 127.0.0.0/8 or [::1]"
            )
            await error_response(400, "AccessDeniedException", message, str(scope.get(REQUEST_ID_KEY, "-")))(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)
