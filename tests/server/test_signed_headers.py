"""Signed means signed: a repeated or unsigned header that selects behaviour never changes what runs.

Requests are signed by real botocore and sent raw (httpx, headers in a chosen order) to the
real app under uvicorn with SigV4 authentication.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from facetrust.config import Settings
from facetrust.governance import audit
from facetrust.models.fake import fake_engine
from facetrust.server import create_app
from facetrust.server.auth import SigV4Authenticator
from facetrust.server.keys import KeyStore
from facetrust.service import FaceService

from .conftest import Api
from .live import serving

JSON_11 = "application/x-amz-json-1.1"


@dataclass
class Signed:
    url: str
    http: httpx.Client
    service: FaceService
    key: tuple[str, str]

    def headers(
        self, operation: str, body: bytes, *, extra: dict[str, str] | None = None, skip: str = ""
    ) -> list[tuple[str, str]]:
        """The headers botocore signs for ``operation`` (``extra`` signed too; ``skip`` sent but not signed)."""

        class Signer(SigV4Auth):
            def headers_to_sign(self, request: AWSRequest) -> Any:
                headers = super().headers_to_sign(request)
                if skip in headers:
                    del headers[skip]
                return headers

        request = AWSRequest(
            method="POST",
            url=self.url + "/",
            data=body,
            headers={"X-Amz-Target": f"RekognitionService.{operation}", "Content-Type": JSON_11, **(extra or {})},
        )
        Signer(Credentials(*self.key), "rekognition", "us-east-1").add_auth(request)
        return [(name, str(value)) for name, value in request.headers.items()]

    def send(self, headers: list[tuple[str, str]], body: bytes) -> httpx.Response:
        return self.http.post("/", content=body, headers=headers)

    def operations_in_audit_log(self) -> list[str]:
        with self.service.store.snapshot() as conn:
            return [entry.data["operation"] for entry in audit.entries(conn)]


@pytest.fixture
def signed(tmp_path: Path) -> Iterator[Signed]:
    settings = Settings(data_dir=tmp_path)
    with FaceService.open(tmp_path, settings, engine=fake_engine()) as service, KeyStore.open(tmp_path) as keys:
        app = create_app(service, authenticator=SigV4Authenticator(keys), settings=settings)
        with serving(app) as url, httpx.Client(base_url=url, timeout=30) as http:
            service.create_collection("staff")
            yield Signed(url, http, service, keys.create("admin"))


def answer(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert set(body) == {"__type", "message"}
    return response.status_code, body["__type"], body["message"]


def test_a_second_x_amz_target_before_the_signed_one_does_not_run_another_operation(signed: Signed) -> None:
    body = json.dumps({"CollectionId": "staff"}).encode()
    headers = [("X-Amz-Target", "RekognitionService.DeleteCollection"), *signed.headers("DescribeCollection", body)]

    status, name, message = answer(signed.send(headers, body))

    assert (status, name) == (400, "InvalidSignatureException")
    assert "'x-amz-target' is sent more than once" in message
    assert signed.service.list_collections().names == ("staff",)
    assert "DeleteCollection" not in signed.operations_in_audit_log()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Amz-Target", "RekognitionService.DeleteCollection"),
        ("Content-Type", "application/json"),
        ("X-Facetrust-Case-Ref", "case-2"),
        ("X-Amz-Date", "20240101T000000Z"),
        ("Authorization", "AWS4-HMAC-SHA256 Credential=x"),
        ("X-Amz-Content-SHA256", "0" * 64),
        ("X-Amz-Security-Token", "t"),
    ],
)
@pytest.mark.parametrize("where", ["before", "after"])
def test_a_repeated_signed_or_behaviour_selecting_header_is_refused(
    signed: Signed, name: str, value: str, where: str
) -> None:
    body = json.dumps({"CollectionId": "staff"}).encode()
    headers = signed.headers("DeleteCollection", body, extra={"X-Facetrust-Case-Ref": "case-1"})
    if not any(sent.lower() == name.lower() for sent, _ in headers):
        headers.append((name, value))  # sent once already, unsigned: the second copy makes it repeated
    headers = [(name, value), *headers] if where == "before" else [*headers, (name, value)]

    status, error, message = answer(signed.send(headers, body))

    assert (status, error) == (400, "InvalidSignatureException")
    assert f"{name.lower()!r} is sent more than once" in message
    assert signed.service.list_collections().names == ("staff",)


@pytest.mark.parametrize(
    ("skip", "extra"),
    [("x-amz-target", {}), ("content-type", {}), ("x-facetrust-case-ref", {"X-Facetrust-Case-Ref": "case-1"})],
)
def test_a_behaviour_selecting_header_that_is_not_signed_is_refused(
    signed: Signed, skip: str, extra: dict[str, str]
) -> None:
    body = json.dumps({"CollectionId": "staff"}).encode()

    status, name, message = answer(signed.send(signed.headers("DeleteCollection", body, extra=extra, skip=skip), body))

    assert (status, name, message) == (
        403,
        "IncompleteSignatureException",
        f"{skip!r} must be a SignedHeader in the Authorization header",
    )
    assert signed.service.list_collections().names == ("staff",)


def test_an_unsigned_case_reference_added_after_signing_is_refused(signed: Signed) -> None:
    body = json.dumps({"CollectionId": "staff"}).encode()
    headers = [*signed.headers("DescribeCollection", body), ("X-Facetrust-Case-Ref", "someone-elses-case")]

    assert answer(signed.send(headers, body))[:2] == (403, "IncompleteSignatureException")
    assert signed.operations_in_audit_log().count("DescribeCollection") == 0


def test_a_repeated_header_that_selects_nothing_is_ignored(signed: Signed) -> None:
    body = json.dumps({"CollectionId": "staff"}).encode()
    headers = [("Accept", "*/*"), *signed.headers("DescribeCollection", body), ("Accept", "application/json")]

    response = signed.send(headers, body)

    assert response.status_code == 200, response.text


def test_without_authentication_a_repeated_target_is_refused_too(api: Api) -> None:
    api.service.create_collection("staff")
    headers = [
        ("X-Amz-Target", "RekognitionService.DeleteCollection"),
        ("X-Amz-Target", "RekognitionService.DescribeCollection"),
        ("Content-Type", JSON_11),
    ]

    response = api.http.post("/", content=b'{"CollectionId": "staff"}', headers=headers)

    assert answer(response)[:2] == (400, "InvalidSignatureException")
    assert api.service.list_collections().names == ("staff",)
