"""The suite's boto3 clients retry one thing only: a call whose connection closed unanswered after
the client sat idle about as long as the server keeps an idle connection (the keep-alive race)."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError

from .conftest import Api
from .live import retry_keep_alive_race

IDLE_S = 0.3  # the suite's clients use KEEP_ALIVE_S - 1; a short one keeps these tests quick


def _client(url: str) -> Any:
    client = boto3.session.Session().client(
        "rekognition",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"max_attempts": 0}),
    )
    retry_keep_alive_race(client, idle_s=IDLE_S)
    return client


def _drop_unsent(client: Any, times: int) -> list[str]:
    """The next ``times`` sends never reach the server; the connection closes unanswered, as botocore
    sees a server's idle close crossing the request. Returns the operations the server did get."""
    dropped: list[int] = []
    reached: list[str] = []

    def drop(request: Any, **_: Any) -> None:
        if len(dropped) < times:
            dropped.append(1)
            raise ConnectionClosedError(endpoint_url=request.url)
        reached.append(request.headers["X-Amz-Target"].decode())

    client.meta.events.register("before-send.rekognition", drop)
    return reached


def test_a_call_after_an_idle_spell_whose_connection_closed_unanswered_is_sent_once_more(api: Api) -> None:
    client = _client(api.url)
    client.create_collection(CollectionId="c")
    reached = _drop_unsent(client, times=1)
    time.sleep(IDLE_S + 0.1)

    response = client.describe_collection(CollectionId="c")

    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert reached == ["RekognitionService.DescribeCollection"]


def test_a_connection_closed_unanswered_without_an_idle_spell_fails_the_call(api: Api) -> None:
    client = _client(api.url)
    client.create_collection(CollectionId="c")
    reached = _drop_unsent(client, times=1)

    with pytest.raises(ConnectionClosedError):
        client.describe_collection(CollectionId="c")
    assert reached == []


def test_a_connection_closed_unanswered_twice_fails_the_call(api: Api) -> None:
    client = _client(api.url)
    client.create_collection(CollectionId="c")
    reached = _drop_unsent(client, times=2)
    time.sleep(IDLE_S + 0.1)

    with pytest.raises(ConnectionClosedError):
        client.describe_collection(CollectionId="c")
    assert reached == []


def test_the_first_call_of_a_client_is_not_retried(api: Api) -> None:
    client = _client(api.url)
    reached = _drop_unsent(client, times=1)
    time.sleep(IDLE_S + 0.1)  # idle, but no connection was kept: nothing the server could have closed

    with pytest.raises(ConnectionClosedError):
        client.list_collections()
    assert reached == []
