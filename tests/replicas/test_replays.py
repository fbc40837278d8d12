"""A signed request is one request for the whole deployment: the signatures seen are a record in the
shared store, so a request replayed to another replica is refused as it is on the replica it reached."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from .conftest import Replica


def _capture(replica: Replica, **call: Any) -> dict[str, Any]:
    """Make a CreateCollection call through ``replica``'s boto3 client and keep what was sent, as signed."""
    sent: dict[str, Any] = {}

    def keep(request: Any, **_: Any) -> None:
        sent["headers"] = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        sent["headers"]["host"] = replica.url.removeprefix("http://")  # signed: botocore took it from the URL
        sent["body"] = request.body

    replica.client.meta.events.register("before-send.rekognition.CreateCollection", keep)
    try:
        replica.client.create_collection(**call)
    finally:
        replica.client.meta.events.unregister("before-send.rekognition.CreateCollection", keep)
    return sent


def _send(replica: Replica, sent: dict[str, Any]) -> httpx.Response:
    """The captured request, byte for byte, to ``replica`` (its Host header still the first replica's)."""
    return httpx.post(replica.url + "/", headers=sent["headers"], content=sent["body"], timeout=30)


def test_a_signed_request_replayed_to_another_replica_is_refused_there(replicas: Any) -> None:
    a, b = replicas("a"), replicas("b")
    before_first = time.monotonic()
    first = _capture(a, CollectionId="first")
    accepted_at = time.monotonic()
    honest = _capture(a, CollectionId="honest")
    repeated = _send(b, honest)  # an SDK repeat within the repeat window, to the other replica: accepted
    assert repeated.status_code == 400, repeated.text  # run again: the collection exists now
    assert repeated.json()["__type"] == "ResourceAlreadyExistsException"

    time.sleep(max(0.0, accepted_at + 10.5 - time.monotonic()))  # past the 10-second repeat window
    replayed = _send(b, first)

    assert replayed.status_code == 403, replayed.text
    assert replayed.json()["__type"] == "InvalidSignatureException"
    said = re.fullmatch(
        r"Signature replayed: this signed request was first accepted (\d+) s ago; sign each request anew",
        replayed.json()["message"],
    )
    assert said, replayed.json()["message"]
    # Past the window, and no older than the test itself (a slow machine may take longer than 20 s to get here).
    assert 10 <= int(said.group(1)) <= time.monotonic() - before_first + 1
    again = _send(a, first)
    assert again.status_code == 403 and again.json()["message"].startswith("Signature replayed")
