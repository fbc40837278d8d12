"""The HTTP/1.1 connection layer under the app: uvicorn's h11 protocol with a deadline and JSON errors.

``GuardedH11Protocol`` closes a connection whose request head (request line and headers) has
not fully arrived ``HEAD_TIMEOUT_S`` seconds after the connection opened or the previous
response ended, however slowly bytes trickle in (uvicorn's keep-alive timer restarts on every
byte, so a stalled client could hold a connection forever). A request that h11 cannot parse
(a malformed chunked body, conflicting framing headers) gets the one error shape
(``SerializationException``, 400) instead of uvicorn's plain text. Body stalls are the app's:
see ``RpcEndpoint``'s ``body_timeout_s``. ``server_config`` is how ``facetrust serve`` and the
tests run the app.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HEAD_TIMEOUT_S", "KEEP_ALIVE_S", "SERVER_OPTIONS", "GuardedH11Protocol", "server_config"]

HEAD_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 5.0
LINGER_S = 2.0  # after a framing error's answer: how long what the client still sends is read and dropped


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for each request head and JSON-shaped framing errors."""

    head_timeout_s = HEAD_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._lingering = False

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.cycle is None or self.cycle.response_complete:  # no request of this connection is being served
            self.logger.info("closing a connection whose request head did not arrive in %gs", self.head_timeout_s)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:  # the answer is sent: the rest of a refused request is dropped
            return
        super().data_received(data)
        if self._head_deadline is not None and self.cycle is not None and not self.cycle.response_complete:
            self._disarm()  # a request head arrived: the app and its body deadline take over

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def send_400_response(self, msg: str) -> None:
        name = "SerializationException"
        body = json.dumps({"__type": name, "message": f"The request is not valid HTTP/1.1 ({msg.rstrip('.')})"})
        headers = [
            (b"content-type", b"application/x-amz-json-1.1"),
            (b"x-amzn-errortype", name.encode()),
            (b"x-amzn-requestid", str(uuid.uuid4()).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"connection", b"close"),
        ]
        try:
            for event in (
                h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                h11.Data(data=body.encode()),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event))
        except h11.LocalProtocolError:  # a response had already started: nothing more can be said
            pass
        self._linger()

    def shutdown(self) -> None:
        if self._lingering:  # the answer is out and the connection closing: nothing more to say on it
            self.transport.close()
            return
        super().shutdown()

    def _linger(self) -> None:
        """Close after the answer without a reset: closing while the client is still sending (a huge
        header, say) makes the kernel answer with a reset that discards the answer. So stop writing,
        read and drop what still comes for ``LINGER_S``, then close."""
        self._disarm()
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)


SERVER_OPTIONS: dict[str, Any] = {
    "http": GuardedH11Protocol,
    "server_header": False,
    "timeout_keep_alive": KEEP_ALIVE_S,
}
"""uvicorn's options for facetrust: ``uvicorn.run(app, host=..., port=..., **SERVER_OPTIONS)``."""


def server_config(app: Any, **options: Any) -> uvicorn.Config:
    """A uvicorn configuration serving ``app`` with ``SERVER_OPTIONS`` (``options``: more of uvicorn's)."""
    return uvicorn.Config(app, **{**SERVER_OPTIONS, **options})
