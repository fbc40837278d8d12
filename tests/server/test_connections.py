"""The connection layer: stalled clients are timed out, framing errors and stalls get the one error shape,
and ``GET /`` says where the web page is."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from facetrust.config import Settings
from facetrust.models.fake import fake_engine
from facetrust.server import create_app
from facetrust.server.http11 import GuardedH11Protocol
from facetrust.service import FaceService

from .conftest import Api
from .live import serving

HEAD = (
    b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: RekognitionService.ListCollections\r\n"
    b"Content-Type: application/x-amz-json-1.1\r\n"
)


class QuickHead(GuardedH11Protocol):
    head_timeout_s = 0.5


@pytest.fixture
def quick(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A server whose request heads must arrive within 0.5 s and bodies may pause 0.5 s at most."""
    with FaceService(tmp_path, fake_engine()) as service:
        app = create_app(service, authenticator=None, settings=Settings(data_dir=tmp_path), body_timeout_s=0.5)
        with serving(app, http=QuickHead) as url:
            host, port = url.removeprefix("http://").split(":")
            yield host, int(port)


def exchange(address: tuple[str, int], *parts: bytes, pause: float = 0.0, wait: float = 5.0) -> tuple[bytes, float]:
    """Send ``parts`` (``pause`` s apart) and read until the server closes; (what came back, seconds it took)."""
    started = time.monotonic()
    with socket.create_connection(address, timeout=wait) as sock:
        for part in parts:
            sock.sendall(part)
            time.sleep(pause)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass
    return received, time.monotonic() - started


def json_error(raw: bytes) -> tuple[int, dict[str, str], dict[str, str]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":  # one chunk holds the JSON
        body = body.split(b"\r\n")[1]
    return int(lines[0].split()[1]), headers, json.loads(body)


def test_a_stalled_request_head_is_closed_after_the_head_timeout(quick: tuple[str, int]) -> None:
    received, took = exchange(quick, b"POST / HTTP/1.1\r\nHost: localhost\r\n", b"X-Slow: 1\r\n", pause=0.3)

    assert received == b""
    assert took < 3


def test_an_idle_connection_is_closed_after_the_head_timeout(quick: tuple[str, int]) -> None:
    received, took = exchange(quick)

    assert received == b""
    assert took < 3


def test_a_stalled_body_gets_a_json_request_timeout(quick: tuple[str, int]) -> None:
    received, took = exchange(quick, HEAD + b"Content-Length: 100\r\n\r\n", b'{"Max')

    status, headers, body = json_error(received)
    assert (status, headers["x-amzn-errortype"], body["__type"]) == (
        408,
        "RequestTimeoutException",
        "RequestTimeoutException",
    )
    assert took < 3


def test_a_kept_alive_connection_is_closed_when_the_next_head_stalls(quick: tuple[str, int]) -> None:
    first = HEAD + b"Content-Length: 2\r\n\r\n{}"
    received, took = exchange(quick, first, b"POST / HTT", pause=0.2)

    assert received.startswith(b"HTTP/1.1 200 ")
    assert received.count(b"HTTP/1.1") == 1
    assert took < 3


def test_a_valid_chunked_body_is_served(quick: tuple[str, int]) -> None:
    received, _ = exchange(quick, HEAD + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n")

    assert received.startswith(b"HTTP/1.1 200 ")


def test_a_body_framed_both_ways_is_refused_and_the_connection_closed(quick: tuple[str, int]) -> None:
    # what a front proxy might see as a body
    smuggled = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}"
    framed = HEAD + b"Content-Length: 48\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + smuggled
    received, took = exchange(quick, framed)

    status, headers, body = json_error(received)
    assert (status, body["__type"], headers["connection"]) == (400, "SerializationException", "close")
    assert "Content-Length and Transfer-Encoding" in body["message"]
    assert received.count(b"HTTP/1.1 ") == 1 and took < 3  # the second request was never served


def test_copies_of_content_length_are_one_length_when_alike_and_refused_when_they_differ(
    quick: tuple[str, int],
) -> None:
    alike, _ = exchange(quick, HEAD + b"Content-Length: 2\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    differ, _ = exchange(quick, HEAD + b"Content-Length: 2\r\nContent-Length: 5\r\n\r\n{}")

    assert alike.startswith(b"HTTP/1.1 200 ")
    status, headers, body = json_error(differ)
    assert (status, body["__type"], headers["connection"]) == (400, "SerializationException", "close")


def test_a_header_too_large_to_parse_gets_the_json_answer_not_a_reset(quick: tuple[str, int]) -> None:
    huge = HEAD + b"Authorization: " + b"A" * 200_000 + b"\r\nContent-Length: 2\r\n\r\n{}"

    received, _ = exchange(quick, huge)

    status, headers, body = json_error(received)
    assert (status, body["__type"], headers["connection"]) == (400, "SerializationException", "close")
    assert headers["x-content-type-options"] == "nosniff"  # as every response of the server


def test_a_malformed_chunked_body_gets_a_rekognition_shaped_error(quick: tuple[str, int]) -> None:
    received, _ = exchange(quick, HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")

    status, headers, body = json_error(received)
    assert (status, headers["content-type"], body["__type"]) == (
        400,
        "application/x-amz-json-1.1",
        "SerializationException",
    )
    assert body["message"].startswith("The request is not valid HTTP/1.1")
    assert headers["x-amzn-errortype"] == "SerializationException"


def test_get_root_sends_a_browser_to_the_web_page(api: Api) -> None:
    response = api.http.get("/")

    assert (response.status_code, response.headers["location"]) == (307, "/ui/")
    assert response.json()["web"] == "/ui/"
    assert api.http.get("/", follow_redirects=True).url.path == "/ui/"


def test_get_root_over_the_network_follows_to_a_page(api: Api) -> None:
    page = httpx.get(api.url + "/", follow_redirects=True)

    assert page.status_code == 200
    assert "<html" in page.text.lower()


def test_a_body_that_trickles_in_is_timed_out_though_no_silence_reaches_the_timeout(quick: tuple[str, int]) -> None:
    started = time.monotonic()
    received = b""
    with socket.create_connection(quick, timeout=5) as sock:
        sock.sendall(HEAD + b"Content-Length: 40\r\n\r\n")
        try:
            for _ in range(40):  # a byte every 0.3 s: each pause shorter than the 0.5 s silence allowed
                sock.sendall(b" ")
                time.sleep(0.3)
        except OSError:  # the server answered and closed
            pass
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:
            pass
    status, _, body = json_error(received)
    assert (status, body["__type"]) == (408, "RequestTimeoutException")
    assert "slower than 16 KiB/s" in body["message"]
    assert time.monotonic() - started < 8  # not the 12 s the whole trickle takes


def test_a_request_without_a_valid_key_is_refused_without_its_body_being_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facetrust.server.auth import SigV4Authenticator
    from facetrust.server.keys import KeyStore
    from facetrust.server.rpc import RpcEndpoint

    kept: list[int] = []
    real = RpcEndpoint._read_body

    async def spying(self: RpcEndpoint, request: object, head: object, limit: int, *, keep: bool = True) -> bytes:
        body = await real(self, request, head, limit, keep=keep)  # type: ignore[arg-type]
        kept.append(len(body))
        return body

    monkeypatch.setattr(RpcEndpoint, "_read_body", spying)
    with FaceService(tmp_path, fake_engine()) as service, KeyStore.open(tmp_path) as keys:
        app = create_app(service, authenticator=SigV4Authenticator(keys), settings=Settings(data_dir=tmp_path))
        with serving(app) as url:
            target = {"X-Amz-Target": "RekognitionService.CompareFaces", "Content-Type": "application/x-amz-json-1.1"}
            now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            scope = f"FTKNOBODY/{now[:8]}/eu-west-1/rekognition/aws4_request"
            body = b'{"SourceImage": {"Bytes": "' + b"A" * 3_000_000 + b'"}}'
            anonymous = httpx.post(url, content=body, headers=target)
            unknown = httpx.post(
                url,
                content=body,
                headers={
                    **target,
                    "Authorization": f"AWS4-HMAC-SHA256 Credential={scope}, "
                    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64,
                    "X-Amz-Date": now,
                },
            )
    assert (anonymous.status_code, anonymous.json()["__type"]) == (403, "MissingAuthenticationTokenException")
    assert (unknown.status_code, unknown.json()["__type"]) == (403, "UnrecognizedClientException")
    assert kept == [0, 0]  # read and dropped: nothing of either body was held


def test_without_a_key_a_body_framed_both_ways_still_closes_the_connection(tmp_path: Path) -> None:
    from facetrust.server.auth import SigV4Authenticator
    from facetrust.server.keys import KeyStore

    with FaceService(tmp_path, fake_engine()) as service, KeyStore.open(tmp_path) as keys:
        app = create_app(service, authenticator=SigV4Authenticator(keys), settings=Settings(data_dir=tmp_path))
        with serving(app, http=QuickHead) as url:
            host, port = url.removeprefix("http://").split(":")
            framed = HEAD + b"Content-Length: 48\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
            received, _ = exchange((host, int(port)), framed)
    status, headers, body = json_error(received)
    assert (status, body["__type"], headers["connection"]) == (400, "SerializationException", "close")
