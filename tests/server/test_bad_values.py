"""Values no client should send, in every member of every operation: each is a logged 400, never a 5xx.

Lone UTF-16 surrogates (JSON ``"\\ud800"``) in every string, integers far past a double
(``10**400``) and at the edges of SQLite's 64-bit integers in every numeric member. The other
members are valid, so each value reaches as deep into the service as it can.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from facetrust.config import Settings
from facetrust.governance import audit
from facetrust.models.fake import face_png, fake_engine
from facetrust.server import create_app
from facetrust.server.operations import OPERATIONS
from facetrust.server.protocol import Kind, Member
from facetrust.service import FaceService

from .live import serving

PNG = face_png((40, 40, 80, 1))
EXTREMES = [str(10**400), str(-(10**400)), str(2**63), str(-(2**63)), str(2**63 - 1), str(-(2**63) - 1), "1e308"]
SURROGATES = ['"\\ud800"', '"face-\\udfff"']


@dataclass
class Target:
    http: httpx.Client
    service: FaceService
    face_id: str


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    data: Path = tmp_path_factory.mktemp("bad-values")
    (data / "videos" / "lobby").mkdir(parents=True)
    (data / "videos" / "lobby" / "clip.mp4").write_text("not a video: a job over it fails at once")
    engine = fake_engine(Settings(flip_augment=False, video_root=data / "videos"))
    with FaceService(data, engine) as service:
        service.create_collection("c")
        face_id = service.index_faces("c", PNG).indexed[0].stored.face_id
        service.create_user("c", "u")
        app = create_app(service, authenticator=None, settings=Settings(max_image_bytes=200_000))
        with serving(app) as url, httpx.Client(base_url=url, timeout=60) as http:
            yield Target(http, service, face_id)


def valid(member: Member, name: str, face_id: str) -> Any:
    """A value of ``member`` that the service accepts (so a bad neighbour is what gets refused)."""
    if member.choices:
        return member.choices[0]
    values: dict[Kind, Any] = {
        Kind.STRING: {"CollectionId": "c", "UserId": "u", "FaceId": face_id}.get(name, "x"),
        Kind.INTEGER: 1,
        Kind.NUMBER: 50,
        Kind.BOOLEAN: True,
        Kind.IMAGE: {"Bytes": base64.b64encode(PNG).decode()},
        Kind.STRINGS: [face_id],
        Kind.STRING_MAP: {},
        Kind.OBJECT: {"S3Object": {"Bucket": "lobby", "Name": "clip.mp4"}},  # Video, the one object member
    }
    return values[member.kind]


def body_with(operation: str, name: str, raw: str, face_id: str) -> bytes:
    """The JSON body of ``operation``: its required members valid, and ``name`` set to the raw JSON ``raw``."""
    members = OPERATIONS[operation].members
    others = {n: valid(m, n, face_id) for n, m in members.items() if m.required and n != name}
    text = json.dumps(others)
    return (text[:-1] + (", " if others else "") + f'"{name}": {raw}}}').encode()


def cases(kinds: tuple[Kind, ...], raws: list[str]) -> list[tuple[str, str, str]]:
    return [
        (operation, name, raw)
        for operation, op in sorted(OPERATIONS.items())
        for name, member in op.members.items()
        if member.kind in kinds
        for raw in raws
    ]


def wrap(kind: Kind, raw: str) -> str:
    """``raw`` (a JSON string) placed where ``kind`` holds strings."""
    if kind is Kind.STRINGS:
        return f"[{raw}]"
    if kind is Kind.STRING_MAP:
        return f'{{"k": {raw}}}'
    return raw


def post(target: Target, operation: str, body: bytes) -> httpx.Response:
    headers = {"x-amz-target": f"RekognitionService.{operation}", "content-type": "application/x-amz-json-1.1"}
    return target.http.post("/", content=body, headers=headers)


def assert_refused_and_logged(response: httpx.Response, caplog: pytest.LogCaptureFixture) -> None:
    assert response.status_code == 400, response.text
    name = response.json()["__type"]
    rid = response.headers["x-amzn-requestid"]
    assert [
        r for r in caplog.records if rid in r.getMessage() and "refused" in r.getMessage() and name in r.getMessage()
    ]


def out_of_range(kind: Kind, raw: str) -> bool:
    """Whether ``raw`` is past what a member of ``kind`` holds: a double, or SQLite's signed 64-bit integer."""
    if "e" in raw:
        return False  # a finite double: in range for a number, "not an integer" for an integer
    value = int(raw)
    if abs(value) > 10**308:
        return True
    return kind is Kind.INTEGER and not -(2**63) <= value < 2**63


@pytest.mark.parametrize(("operation", "name", "raw"), cases((Kind.INTEGER, Kind.NUMBER), EXTREMES))
def test_an_extreme_number_in_any_numeric_member_is_never_a_server_error(
    target: Target, caplog: pytest.LogCaptureFixture, operation: str, name: str, raw: str
) -> None:
    caplog.set_level(logging.INFO, logger="facetrust")
    response = post(target, operation, body_with(operation, name, raw, target.face_id))

    assert response.status_code < 500, response.text
    if out_of_range(OPERATIONS[operation].members[name].kind, raw):
        assert_refused_and_logged(response, caplog)
        assert response.json()["message"].startswith(f"{name} is out of range")


@pytest.mark.parametrize(("operation", "name", "raw"), cases((Kind.STRING, Kind.STRINGS, Kind.STRING_MAP), SURROGATES))
def test_a_lone_surrogate_in_any_string_is_a_logged_400(
    target: Target, caplog: pytest.LogCaptureFixture, operation: str, name: str, raw: str
) -> None:
    caplog.set_level(logging.INFO, logger="facetrust")
    kind = OPERATIONS[operation].members[name].kind
    response = post(target, operation, body_with(operation, name, wrap(kind, raw), target.face_id))

    assert_refused_and_logged(response, caplog)


@pytest.mark.parametrize("part", ["Bucket", "Name"])
@pytest.mark.parametrize("raw", SURROGATES)
def test_a_lone_surrogate_in_a_videos_bucket_or_name_is_a_logged_400(
    target: Target, caplog: pytest.LogCaptureFixture, part: str, raw: str
) -> None:
    caplog.set_level(logging.INFO, logger="facetrust")
    video = {"Bucket": "lobby", "Name": "clip.mp4"}
    text = json.dumps({"S3Object": {k: v for k, v in video.items() if k != part}})
    body = f'{{"Video": {text[:-2]}, "{part}": {raw}}}}}'.encode()
    response = post(target, "StartFaceDetection", body)

    assert_refused_and_logged(response, caplog)


def test_a_refused_collection_id_with_a_lone_surrogate_is_written_to_the_audit_log(target: Target) -> None:
    response = post(target, "CreateCollection", b'{"CollectionId": "bad\\ud800"}')

    assert response.status_code == 400
    with target.service.store.snapshot() as conn:
        last = list(audit.entries(conn))[-1]
        assert audit.verify_chain(conn).ok
    assert last.data["operation"] == "CreateCollection"
    assert last.data["outcome"] != "ok"
    assert "bad\\ud800" in last.data["error"]


@pytest.mark.parametrize("operation", ["StartFaceDetection", "StartFaceSearch"])
def test_an_unknown_member_of_a_videos_s3_object_is_refused_naming_it(target: Target, operation: str) -> None:
    # Video's own unknown members were refused, S3Object's ignored: a job started as if they were not sent
    video = {"S3Object": {"Bucket": "lobby", "Name": "clip.mp4", "VersionId": "7"}}
    body = {"Video": video, **({"CollectionId": "c"} if operation == "StartFaceSearch" else {})}
    response = post(target, operation, json.dumps(body).encode())

    assert response.status_code == 400, response.text
    assert response.json()["__type"] == "InvalidParameterException"
    assert "Video.S3Object.VersionId is not a member" in response.json()["message"]
