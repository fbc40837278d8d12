"""Run an ASGI app under a real uvicorn server on a free 127.0.0.1 port, in a background thread."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import uvicorn
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError

from facetrust.server.http11 import KEEP_ALIVE_S, server_config

HTTP_DOCS = Path(__file__).resolve().parents[2] / "docs" / "http.md"


@contextmanager
def serving_signed(service: Any, holders: dict[str, str]) -> Iterator[tuple[str, dict[str, tuple[str, str]]]]:
    """``service`` served with SigV4 keys (a key store in its data directory): ``holders`` maps a
    name to its role; yields the URL and each name's (key id, secret)."""
    from facetrust.config import Settings
    from facetrust.server import create_app
    from facetrust.server.auth import SigV4Authenticator
    from facetrust.server.keys import KeyStore

    keys = KeyStore.open(service.data_dir)
    try:
        made = {name: keys.create(role) for name, role in holders.items()}
        app = create_app(service, authenticator=SigV4Authenticator(keys), settings=Settings(data_dir=service.data_dir))
        with serving(app) as url:
            yield url, made
    finally:
        keys.close()


@contextmanager
def serving(app: Any, *, lifespan: str = "off", **options: Any) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` while ``app`` is served as ``facetrust serve`` serves it (``options``: more
    uvicorn options); the server is stopped (and joined) after."""
    # proto IPPROTO_TCP, so asyncio sets TCP_NODELAY on accepted connections (proto 0 costs 40 ms a request)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(server_config(app, log_level="warning", lifespan=lifespan, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


_SESSION = boto3.session.Session()  # one session: the service model is loaded once, not per client


def rekognition(url: str, key_id: str = "x", secret: str = "y") -> Any:
    """An unmodified boto3 Rekognition client for ``url``; no retries, so errors surface at once, but
    for the one every HTTP/1.1 client meets: see ``retry_keep_alive_race``."""
    client = _SESSION.client(
        "rekognition",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 0}),
    )
    retry_keep_alive_race(client)
    return client


def retry_keep_alive_race(client: Any, idle_s: float = KEEP_ALIVE_S - 1.0) -> None:
    """Retry a call once, at once, when its connection closed before any answer after the client had
    been idle at least ``idle_s`` (about as long as the server keeps an idle connection,
    ``KEEP_ALIVE_S``): the server's idle close and the request crossed on the wire, and the server
    never read it. botocore's default retries cover this; these clients retry nothing else, so a
    server that drops a connection mid-call, or after a short idle, still fails the test."""
    state = {"answered": -1.0, "idle": 0.0}  # no answer yet: no connection has been kept for reuse

    def before_send(**_: Any) -> None:
        state["idle"] = time.monotonic() - state["answered"] if state["answered"] >= 0 else 0.0

    def needs_retry(attempts: int, response: Any = None, caught_exception: Any = None, **_: Any) -> float | None:
        if response is not None:
            state["answered"] = time.monotonic()
            return None
        raced = state["idle"] >= idle_s and isinstance(caught_exception, ConnectionClosedError)
        return 0.0 if raced and attempts == 1 else None

    client.meta.events.register("before-send.rekognition", before_send)
    client.meta.events.register("needs-retry.rekognition", needs_retry)


def docs_snippet(name: str) -> str:
    """The Python block after ``<!-- snippet: NAME -->`` in docs/http.md."""
    found = re.search(rf"<!-- snippet: {re.escape(name)} -->\n```python\n(.*?)```", HTTP_DOCS.read_text(), re.S)
    assert found, f"docs/http.md has no snippet {name!r}"
    return found.group(1)


def with_facetrust_fields(client: Any) -> Any:
    """``client`` with docs/http.md's hook registered, so responses keep facetrust's calibrated fields."""
    exec(docs_snippet("keep-facetrust-fields"), {"rek": client})
    return client
