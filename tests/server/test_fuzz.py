"""Fuzzing the endpoint: random and malformed bodies, headers and images never get a 5xx, the
server keeps answering, and the data directory stays consistent afterwards."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from facetrust.config import Settings
from facetrust.models.fake import face_png, fake_engine
from facetrust.server import create_app
from facetrust.server.operations import OPERATIONS
from facetrust.server.protocol import Kind
from facetrust.service import FaceService

from .live import serving


@dataclass
class Target:
    http: httpx.Client
    service: FaceService
    face_ids: list[str]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    data: Path = tmp_path_factory.mktemp("fuzz")
    with FaceService(data, fake_engine()) as service:
        service.create_collection("fuzz")
        indexed = service.index_faces("fuzz", face_png((40, 40, 80, 1), (200, 60, 90, 2), (300, 200, 60, 3)))
        service.create_user("fuzz", "ann")
        app = create_app(service, authenticator=None, settings=Settings(max_image_bytes=200_000))
        with serving(app) as url, httpx.Client(base_url=url, timeout=60) as http:
            yield Target(http, service, [f.stored.face_id for f in indexed.indexed])


PNG = face_png((40, 40, 80, 1))
MEMBERS = sorted({name for op in OPERATIONS.values() for name in op.members})
NUMERIC_MEMBERS = sorted(
    {name for op in OPERATIONS.values() for name, m in op.members.items() if m.kind in (Kind.INTEGER, Kind.NUMBER)}
)

# Lone UTF-16 surrogates (JSON "\ud800") cannot be encoded as UTF-8: every string may hold one.
surrogate = st.integers(0xD800, 0xDFFF).map(chr)
strings = st.text(max_size=40) | st.builds(
    lambda a, s, b: a + s + b, st.text(max_size=8), surrogate, st.text(max_size=8)
)
# Past a double (10**400), at and past SQLite's signed 64-bit integers, and plain ones.
EXTREME_INTEGERS = [10**400, -(10**400), 2**63, -(2**63), 2**63 - 1, -(2**63) - 1, 2**64, 10**20]
integers = st.integers() | st.sampled_from(EXTREME_INTEGERS)
json_values = st.recursive(
    st.none() | st.booleans() | integers | st.floats(allow_nan=False) | strings,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(strings, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def image_bytes(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["png", "png", "png", "truncated", "flipped", "noise", "header"]))
    if kind == "png":
        return PNG
    if kind == "truncated":
        return PNG[: draw(st.integers(0, len(PNG)))]
    if kind == "flipped":
        data = bytearray(PNG)
        for position in draw(st.lists(st.integers(0, len(PNG) - 1), min_size=1, max_size=8)):
            data[position] ^= draw(st.integers(1, 255))
        return bytes(data)
    if kind == "header":
        return b"\x89PNG\r\n\x1a\n" + draw(st.binary(max_size=200))
    return draw(st.binary(max_size=300))


encoded = image_bytes().map(lambda b: {"Bytes": base64.b64encode(b).decode()})
images = st.one_of(
    encoded,
    encoded,
    encoded,
    st.fixed_dictionaries({"Bytes": st.text(max_size=40)}),
    st.fixed_dictionaries({"S3Object": st.fixed_dictionaries({"Bucket": st.text(max_size=5)})}),
    json_values,
)


@st.composite
def plausible(draw: st.DrawFn, operation: str, face_ids: list[str]) -> dict[str, Any]:
    """A body of the operation's members (required ones mostly there), values often right and often not."""
    ids = st.sampled_from([*face_ids, "00000000-0000-4000-8000-000000000000", "nope"]) | strings
    values: dict[str, st.SearchStrategy[Any]] = {
        "CollectionId": st.sampled_from(["fuzz", "fuzz", "fuzz", "other", "", "bad name", "x" * 300, "f\ud800"]),
        "Image": images,
        "SourceImage": images,
        "TargetImage": images,
        "FaceId": ids,
        "FaceIds": st.lists(ids, max_size=4),
        "UserId": st.sampled_from(["ann", "bob", "", "bad user!"]),
        "ExternalImageId": st.sampled_from(["photo-1", "ann", "bad id!"]),
        "QualityFilter": st.sampled_from(["NONE", "AUTO", "LOW", "HIGH", "best"]),
        "Attributes": st.lists(st.sampled_from(["ALL", "DEFAULT", "GENDER", "HAIR"]), max_size=3),
    }
    for name in ("MaxResults", "MaxFaces", "MaxUsers"):
        values[name] = st.integers(-1, 5000) | integers
    for name in ("FaceMatchThreshold", "UserMatchThreshold", "SimilarityThreshold"):
        values[name] = st.floats(-10, 110) | integers
    for name in NUMERIC_MEMBERS:  # every numeric member of every operation, extremes included
        values.setdefault(name, integers | st.floats(allow_nan=False))
    members = OPERATIONS[operation].members if operation in OPERATIONS else {}
    names = [name for name, member in members.items() if member.required and draw(st.integers(0, 9)) > 0]
    names += draw(st.lists(st.sampled_from(list(members) or ["Junk"]), max_size=3, unique=True))
    if draw(st.integers(0, 4)) == 0:
        names.append(draw(st.sampled_from([*MEMBERS, "Junk"])))
    return {name: draw(values.get(name, json_values)) for name in names}


@st.composite
def requests(draw: st.DrawFn, face_ids: list[str]) -> tuple[dict[str, str], bytes]:
    """Mostly well-addressed requests (so bodies reach the operations), sometimes not."""
    operation = draw(st.sampled_from([*OPERATIONS, "DetectLabels"]))
    target = f"RekognitionService.{operation}"
    if draw(st.integers(0, 9)) == 0:
        target = draw(
            st.sampled_from([operation, "RekognitionService.", ""])
            | st.from_regex(r"[!-~]([ -~]{0,38}[!-~])?", fullmatch=True)  # what HTTP allows in a header
        )
    content_type = "application/x-amz-json-1.1"
    if draw(st.integers(0, 9)) == 0:
        content_type = draw(st.sampled_from(["application/json", "text/plain", "", "application/x-amz-json-1.0"]))
    body = draw(
        st.one_of(
            plausible(operation, face_ids).map(lambda b: json.dumps(b).encode()),
            plausible(operation, face_ids).map(lambda b: json.dumps(b).encode()),
            plausible(operation, face_ids).map(lambda b: json.dumps(b).encode()),
            json_values.map(lambda v: json.dumps(v).encode()),
            st.binary(max_size=300),
        )
    )
    return {"x-amz-target": target, "content-type": content_type}, body


def test_fuzzed_requests_never_get_a_server_error_and_leave_the_data_consistent(target: Target) -> None:
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(requests(target.face_ids))
    def one(request: tuple[dict[str, str], bytes]) -> None:
        headers, body = request
        response = target.http.post("/", headers=headers, content=body)
        answer = response.json()
        event(f"{response.status_code} {answer.get('__type', 'ok') if isinstance(answer, dict) else ''}")
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert set(answer) == {"__type", "message"}
        assert response.headers["x-amzn-requestid"]

    one()

    assert target.http.get("/health").json()["status"] == "ok"
    service = target.service
    names = service.list_collections(max_results=4096).names
    for name in names:
        info = service.describe_collection(name)
        faces, token = 0, None
        while True:
            page = service.list_faces(name, max_results=100, next_token=token)
            faces += len(page.faces)
            token = page.next_token
            if token is None:
                break
        assert info.face_count == faces, name
        assert info.user_count == len(service.list_users(name).users), name
