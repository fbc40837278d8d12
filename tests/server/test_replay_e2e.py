"""Unmodified boto3 against a live signed server: honest repeats and retries are not replays.

botocore signs with a one-second X-Amz-Date and leaves its invocation id unsigned, so calls
made within one second carry one signature. The botocore clock is frozen at the current second
here, so every call below shares its second, as a fast script's calls do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from facetrust.config import Settings
from facetrust.governance import audit
from facetrust.models.fake import face_png, fake_engine
from facetrust.server import create_app
from facetrust.server.auth import SigV4Authenticator
from facetrust.server.keys import KeyStore
from facetrust.service import FaceService

from .live import serving

PHOTO = face_png((40, 40, 80, 1))


@dataclass
class Live:
    url: str
    key: tuple[str, str]
    service: FaceService

    def client(self, attempts: int = 1) -> Any:
        return boto3.client(
            "rekognition",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=self.key[0],
            aws_secret_access_key=self.key[1],
            config=Config(retries={"max_attempts": attempts, "mode": "standard"}),
        )


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    second = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: second)
    settings = Settings(data_dir=tmp_path)
    with FaceService.open(tmp_path, settings, engine=fake_engine()) as service, KeyStore.open(tmp_path) as keys:
        app = create_app(service, authenticator=SigV4Authenticator(keys), settings=settings)
        with serving(app) as url:
            yield Live(url, keys.create("admin"), service)


def test_the_same_delete_collection_twice_in_a_second_runs_twice(live: Live) -> None:
    client = live.client()
    with pytest.raises(ClientError) as caught:
        client.delete_collection(CollectionId="c")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    client.create_collection(CollectionId="c")
    client.index_faces(CollectionId="c", Image={"Bytes": PHOTO})
    client.search_faces_by_image(CollectionId="c", Image={"Bytes": PHOTO})

    assert client.delete_collection(CollectionId="c")["StatusCode"] == 200
    assert live.service.list_collections().names == ()


def test_indexing_the_same_photo_twice_in_a_second_indexes_it_twice(live: Live) -> None:
    client = live.client()
    client.create_collection(CollectionId="c")

    first = client.index_faces(CollectionId="c", Image={"Bytes": PHOTO})
    second = client.index_faces(CollectionId="c", Image={"Bytes": PHOTO})

    assert len(first["FaceRecords"]) == len(second["FaceRecords"]) == 1
    assert client.describe_collection(CollectionId="c")["FaceCount"] == 2


def test_a_refused_call_sent_again_is_answered_again(live: Live) -> None:
    client = live.client()
    for _ in range(3):
        with pytest.raises(ClientError) as caught:
            client.describe_collection(CollectionId="missing")
        assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def _drop_first_answer(client: Any, operation: str) -> list[int]:
    """Make the first ``operation`` call reach the server and then lose its answer (the connection
    drops), as botocore sees it; the status the server answered it with is appended to the list."""
    delivered: list[int] = []

    def deliver_then_drop(request: Any, **_: Any) -> None:
        if not delivered:
            headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
            delivered.append(httpx.post(request.url, headers=headers, content=request.body).status_code)
            raise ConnectionClosedError(endpoint_url=request.url)

    client.meta.events.register(f"before-send.rekognition.{operation}", deliver_then_drop)
    return delivered


def test_botocore_retrying_after_a_dropped_connection_gets_the_retry_s_outcome(live: Live) -> None:
    """The first attempt reaches the server, then the connection drops before the answer: botocore re-signs
    (within the same second: the same signature) and sends it again."""
    client = live.client(attempts=3)
    client.create_collection(CollectionId="c")
    delivered = _drop_first_answer(client, "IndexFaces")

    response = client.index_faces(CollectionId="c", Image={"Bytes": PHOTO})

    assert delivered == [200]
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert len(response["FaceRecords"]) == 1
    assert live.service.describe_collection("c").face_count == 2


def test_a_replay_refused_after_the_repeat_window_is_audited_with_the_key_that_signed_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: second)
    settings = Settings(data_dir=tmp_path)
    with FaceService.open(tmp_path, settings, engine=fake_engine()) as service, KeyStore.open(tmp_path) as keys:
        auth = SigV4Authenticator(keys, store=service.store, repeat_window_s=0.0)  # any repeat is a replay
        with serving(create_app(service, authenticator=auth, settings=settings)) as url:
            live = Live(url, keys.create("searcher"), service)
            live.client().list_collections()
            with pytest.raises(ClientError) as caught:
                live.client().list_collections()  # the same signature again
            with service.store.snapshot() as conn:
                last = list(audit.entries(conn))[-1].data

    assert "Signature replayed" in caught.value.response["Error"]["Message"]
    assert (last["operation"], last["key_id"], last["role"]) == ("ListCollections", live.key[0], "searcher")
    assert last["outcome"] == "InvalidSignatureException" and "replayed" in last["error"]


@pytest.mark.parametrize("operation", ["CreateUser", "AssociateFaces"])
def test_a_user_call_botocore_retries_after_a_lost_answer_succeeds_once(live: Live, operation: str) -> None:
    """botocore sends the same ClientRequestToken with the retry: the retry gets the first attempt's
    answer instead of a ConflictException for the user it made, and nothing is done twice."""
    client = live.client(attempts=3)
    client.create_collection(CollectionId="c")
    face_id = client.index_faces(CollectionId="c", Image={"Bytes": PHOTO})["FaceRecords"][0]["Face"]["FaceId"]
    if operation == "AssociateFaces":
        client.create_user(CollectionId="c", UserId="ann")
    delivered = _drop_first_answer(client, operation)

    if operation == "CreateUser":
        response = client.create_user(CollectionId="c", UserId="ann")
    else:
        response = client.associate_faces(CollectionId="c", UserId="ann", FaceIds=[face_id])
        assert response["AssociatedFaces"] == [{"FaceId": face_id}]

    assert delivered == [200] and response["ResponseMetadata"]["RetryAttempts"] == 1
    assert [u.face_count for u in live.service.list_users("c").users] == [int(operation == "AssociateFaces")]
    with live.service.store.snapshot() as conn:
        replays = [e.data.get("replayed", False) for e in audit.entries(conn) if e.data["operation"] == operation]
    assert replays == [False, True]


def test_a_client_request_token_sent_with_another_request_is_a_parameter_mismatch(live: Live) -> None:
    client = live.client()
    client.create_collection(CollectionId="c")
    client.create_user(CollectionId="c", UserId="ann", ClientRequestToken="tok")
    client.create_user(CollectionId="c", UserId="ann", ClientRequestToken="tok")  # the same request: its answer

    with pytest.raises(ClientError) as caught:
        client.create_user(CollectionId="c", UserId="bob", ClientRequestToken="tok")

    error = caught.value.response["Error"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Code"] == "IdempotentParameterMismatchException" and "'tok'" in error["Message"]
    assert [u.user_id for u in live.service.list_users("c").users] == ["ann"]
