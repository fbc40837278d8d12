"""What raw HTTP clients may send that boto3 never would: every such request is a clear 4xx, never a 500."""

from __future__ import annotations

import base64
import gzip
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from facetrust.models.fake import face_png
from facetrust.server.rpc import BASE_BODY_BYTES

from .conftest import MAX_IMAGE_BYTES, Api

JSON_11 = "application/x-amz-json-1.1"


def post(
    api: Api,
    operation: str | None,
    body: bytes | dict[str, Any] | Iterator[bytes] = b"{}",
    *,
    content_type: str = JSON_11,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {"content-type": content_type, **(headers or {})}
    if operation is not None:
        sent["x-amz-target"] = f"RekognitionService.{operation}"
    content = json.dumps(body).encode() if isinstance(body, dict) else body
    return api.http.post("/", content=content, headers=sent)


def error(response: httpx.Response) -> tuple[int, str, str]:
    """(status, name, message), checking the one error shape on the way."""
    body = response.json()
    assert set(body) == {"__type", "message"}
    assert response.headers["x-amzn-errortype"] == body["__type"]
    assert response.headers["x-amzn-requestid"]
    assert "Traceback" not in body["message"]
    return response.status_code, body["__type"], body["message"]


def test_a_valid_raw_request_is_answered_with_json_and_a_request_id(api: Api) -> None:
    response = post(api, "ListCollections", {})

    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_11
    assert response.json() == {"CollectionIds": [], "FaceModelVersions": []}
    assert response.headers["x-amzn-requestid"] != post(api, "ListCollections").headers["x-amzn-requestid"]


def test_an_empty_body_is_an_empty_object(api: Api) -> None:
    assert post(api, "ListCollections", b"").status_code == 200


def test_malformed_json_is_a_serialization_exception(api: Api) -> None:
    status, name, message = error(post(api, "ListCollections", b'{"MaxResults": '))

    assert (status, name) == (400, "SerializationException")
    assert "not valid JSON" in message


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"3", b"null"])
def test_a_body_that_is_not_an_object_is_a_serialization_exception(api: Api, body: bytes) -> None:
    status, name, message = error(post(api, "ListCollections", body))

    assert (status, name) == (400, "SerializationException")
    assert "must be a JSON object" in message


@pytest.mark.parametrize("body", [b'{"MaxResults": NaN}', b'{"MaxResults": Infinity}', b"\xff\xfe{}"])
def test_non_json_numbers_and_undecodable_bytes_are_serialization_exceptions(api: Api, body: bytes) -> None:
    assert error(post(api, "ListCollections", body))[:2] == (400, "SerializationException")


def test_deeply_nested_json_is_refused_not_crashed_on(api: Api) -> None:
    body = b'{"MaxResults": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

    assert error(post(api, "ListCollections", body))[0] == 400


@pytest.mark.parametrize(
    ("operation", "body", "member", "expected"),
    [
        ("ListCollections", {"MaxResults": "ten"}, "MaxResults", "must be an integer, not a string"),
        ("ListCollections", {"MaxResults": 1.5}, "MaxResults", "must be an integer, not a number"),
        ("ListCollections", {"MaxResults": True}, "MaxResults", "must be an integer, not a boolean"),
        ("DescribeCollection", {"CollectionId": 7}, "CollectionId", "must be a string"),
        ("DeleteFaces", {"CollectionId": "c", "FaceIds": "abc"}, "FaceIds", "must be a list of strings"),
        ("DeleteFaces", {"CollectionId": "c", "FaceIds": [1]}, "FaceIds", "strings: its item 0 is a number"),
        ("ListFaces", {"CollectionId": "c", "FaceIds": ["f", None]}, "FaceIds", "strings: its item 1 is null"),
        ("SearchFaces", {"CollectionId": "c", "FaceId": "f", "FaceMatchThreshold": "80"}, "FaceMatchThreshold", ""),
        ("DetectFaces", {"Image": "base64"}, "Image", "must be an object with Bytes"),
        ("DetectFaces", {"Image": {"Bytes": 5}}, "Image.Bytes", "must be base64 text"),
        ("DetectFaces", {"Image": {}}, "Image.Bytes", "is required"),
        ("DetectFaces", {"Image": {"Bytes": "AA", "Url": "http://x"}}, "Image.Url", "not a member of Image"),
        ("CreateCollection", {"CollectionId": "c", "Tags": {"a": 1}}, "Tags", "strings: its 'a' is a number"),
        ("GetAuditLog", {"AfterSequence": 2**64}, "AfterSequence", "does not fit in a signed 64-bit integer"),
        ("ListCollections", {"MaxResults": -(2**70)}, "MaxResults", "does not fit in a signed 64-bit integer"),
    ],
)
def test_wrong_member_types_are_invalid_parameter_naming_the_member(
    api: Api, operation: str, body: dict[str, Any], member: str, expected: str
) -> None:
    status, name, message = error(post(api, operation, body))

    assert (status, name) == (400, "InvalidParameterException")
    assert message.startswith(member + " ")
    assert expected in message


@pytest.mark.parametrize(
    ("operation", "before", "member", "expected"),
    [
        ("ListCollections", b"", "MaxResults", "is out of range"),
        ("SearchFaces", b'"CollectionId": "c", "FaceId": "f", ', "FaceMatchThreshold", "is out of range"),
        ("CreateCollection", b'"CollectionId": "c", ', "Tags", "must be an object of strings, not a number"),
    ],
)
@pytest.mark.parametrize("digits", [4300, 4301, 100_000])
def test_an_integer_of_any_length_is_refused_naming_its_member(
    api: Api, operation: str, before: bytes, member: str, expected: str, digits: int
) -> None:
    # past 4300 digits (Python's int() limit) it was "not valid JSON ... use sys.set_int_max_str_digits()"
    body = b'{%s"%s": -%s}' % (before, member.encode(), b"9" * digits)
    status, name, message = error(post(api, operation, body))

    assert (status, name) == (400, "InvalidParameterException")
    assert message.startswith(f"{member} {expected}")
    assert len(message) < 200


def test_a_missing_required_member_is_invalid_parameter(api: Api) -> None:
    assert error(post(api, "DescribeCollection", {})) == (400, "InvalidParameterException", "CollectionId is required")


def test_an_unknown_member_is_invalid_parameter_naming_it(api: Api) -> None:
    status, name, message = error(post(api, "ListCollections", {"MaxResult": 5}))

    assert (status, name) == (400, "InvalidParameterException")
    assert message.startswith("MaxResult is not a member of this request; known: NextToken, MaxResults")


def test_null_members_count_as_absent(api: Api) -> None:
    assert post(api, "ListCollections", {"MaxResults": None, "NextToken": None}).status_code == 200


def test_bytes_that_are_not_base64_are_invalid_parameter(api: Api) -> None:
    status, name, message = error(post(api, "DetectFaces", {"Image": {"Bytes": "not base64!"}}))

    assert (status, name, message) == (400, "InvalidParameterException", "Image.Bytes is not valid base64")


def test_empty_bytes_are_invalid_parameter(api: Api) -> None:
    assert error(post(api, "DetectFaces", {"Image": {"Bytes": ""}}))[:2] == (400, "InvalidParameterException")


def test_base64_of_a_truncated_png_is_invalid_image_format(api: Api) -> None:
    data = base64.b64encode(face_png((10, 10, 80, 1))[:200]).decode()

    assert error(post(api, "DetectFaces", {"Image": {"Bytes": data}}))[:2] == (400, "InvalidImageFormatException")


def test_an_unknown_operation_is_unknown_operation_exception(api: Api) -> None:
    assert error(post(api, "DetectLabels")) == (
        400,
        "UnknownOperationException",
        "Operation 'DetectLabels' is not supported by facetrust",
    )


def test_a_missing_target_header_is_unknown_operation_exception(api: Api) -> None:
    status, name, message = error(post(api, None))

    assert (status, name) == (400, "UnknownOperationException")
    assert "X-Amz-Target header is missing" in message


def test_a_target_of_another_service_is_unknown_operation_exception(api: Api) -> None:
    response = post(api, None, headers={"x-amz-target": "DynamoDB_20120810.ListTables"})

    assert error(response)[:2] == (400, "UnknownOperationException")


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", ""])
def test_another_content_type_is_a_serialization_exception(api: Api, content_type: str) -> None:
    status, name, message = error(post(api, "ListCollections", content_type=content_type))

    assert (status, name) == (400, "SerializationException")
    assert "application/x-amz-json-1.1" in message


@pytest.mark.parametrize("content_type", ["application/x-amz-json-1.0", "application/json; charset=utf-8"])
def test_json_content_types_are_accepted(api: Api, content_type: str) -> None:
    assert post(api, "ListCollections", content_type=content_type).status_code == 200


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate, gzip", "GZIP"])
def test_a_compressed_body_is_refused_naming_its_content_encoding(api: Api, encoding: str) -> None:
    body = gzip.compress(b'{"CollectionId": "zipped"}')

    response = post(api, "CreateCollection", body, headers={"content-encoding": encoding})

    assert error(response) == (
        400,
        "SerializationException",
        f"Content-Encoding {encoding!r} is not supported: "
        "send the body uncompressed (no Content-Encoding, or identity)",
    )
    assert api.service.list_collections().names == ()


@pytest.mark.parametrize("encoding", ["identity", "Identity", ""])
def test_an_identity_content_encoding_is_accepted(api: Api, encoding: str) -> None:
    assert post(api, "ListCollections", headers={"content-encoding": encoding}).status_code == 200


def test_an_oversized_body_is_refused_from_its_content_length(api: Api) -> None:
    body = b'{"Image": {"Bytes": "' + b"A" * (BASE_BODY_BYTES + 2 * MAX_IMAGE_BYTES) + b'"}}'

    status, name, message = error(post(api, "DetectFaces", body))

    assert (status, name) == (413, "ImageTooLargeException")
    assert f"{len(body)} bytes" in message


def test_an_oversized_chunked_body_is_refused_while_streaming(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"CollectionId": "'
        for _ in range(40):
            yield b"a" * 65536
        yield b'"}'

    response = post(api, "DescribeCollection", chunks())

    assert "content-length" not in response.request.headers
    assert error(response)[:2] == (413, "ImageTooLargeException")


def test_a_body_without_images_is_limited_to_one_mib(api: Api) -> None:
    body = json.dumps({"CollectionId": "a" * (BASE_BODY_BYTES + 1)}).encode()

    assert error(post(api, "DescribeCollection", body))[:2] == (413, "ImageTooLargeException")


def test_another_method_or_path_has_the_error_shape_too(api: Api) -> None:
    assert error(api.http.put("/", content=b"{}"))[:2] == (405, "UnknownOperationException")  # GET / is served
    assert error(api.http.post("/nowhere", content=b"{}"))[:2] == (404, "UnknownOperationException")


def test_an_unexpected_failure_is_a_500_with_the_request_id_and_no_traceback(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals at /srv/facetrust")

    monkeypatch.setattr(api.service, "list_collections", broken)

    with caplog.at_level(logging.ERROR, logger="facetrust.server.errors"):
        response = post(api, "ListCollections")

    status, name, message = error(response)
    request_id = response.headers["x-amzn-requestid"]
    assert (status, name) == (500, "InternalServerError")
    assert request_id in message
    assert "secret internals" not in response.text and "RuntimeError" not in response.text
    (record,) = [r for r in caplog.records if request_id in r.getMessage()]
    assert record.exc_info is not None and "secret internals" in str(record.exc_info[1])


def test_boto3_sees_an_internal_error_as_internal_server_error(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise KeyError("oops")

    monkeypatch.setattr(api.service, "describe_collection", broken)

    with pytest.raises(api.client.exceptions.InternalServerError, match="quote request id"):
        api.client.describe_collection(CollectionId="staff")


def test_a_garbage_png_is_refused_without_a_memory_address(api: Api) -> None:
    garbage = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3
    body = {"Image": {"Bytes": base64.b64encode(garbage).decode()}}

    status, name, message = error(post(api, "DetectFaces", body))

    assert (status, name) == (400, "InvalidImageFormatException")
    assert message == "cannot decode PNG image: cannot identify image file"


@pytest.mark.parametrize(
    ("tags", "name", "quoted"),
    [
        ({f"{'k' * 1000}{n}": "v" for n in range(500)}, "InvalidParameterException", "k" * 64 + "…"),
        ({"facetrust:purpose": "p" * 500_000}, "InvalidParameterException", "p" * 64 + "…"),
        ({"facetrust:profile": "p" * 500_000}, "InvalidParameterException", "p" * 64 + "…"),
    ],
)
def test_a_collections_huge_tags_are_quoted_short_in_the_answer_and_the_audit_log(
    api: Api, tags: dict[str, str], name: str, quoted: str
) -> None:
    from facetrust.governance import audit

    status, error_name, message = error(post(api, "CreateCollection", {"CollectionId": "tagged", "Tags": tags}))

    assert (status, error_name) == (400, name)
    assert quoted in message and len(message) < 600
    with api.service.store.snapshot() as conn:
        refused = list(audit.entries(conn))[-1]
    assert refused.data["operation"] == "CreateCollection" and len(json.dumps(refused.data)) < 2_000
    assert api.service.list_collections().names == ()


HUGE = "x" * 300_000


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("IndexFaces", {"CollectionId": "c", "ExternalImageId": HUGE, "Image": {"Bytes": "aGk="}}),
        ("CreateUser", {"CollectionId": "c", "UserId": HUGE}),
        ("DeleteUser", {"CollectionId": "c", "UserId": HUGE}),
        ("AssociateFaces", {"CollectionId": "c", "UserId": HUGE, "FaceIds": ["0" * 36]}),
        ("SearchFaces", {"CollectionId": "c", "FaceId": HUGE}),
        ("DeleteFaces", {"CollectionId": "c", "FaceIds": [HUGE]}),
        ("ListFaces", {"CollectionId": "c", "UserId": HUGE}),
        ("RevokeConsent", {"Subject": HUGE}),
        ("EraseSubject", {"Subject": HUGE}),
    ],
)
def test_a_huge_identifier_is_quoted_short_in_the_answer_and_the_audit_log(
    api: Api, operation: str, body: dict[str, Any]
) -> None:
    from facetrust.governance import audit

    api.service.create_collection("c")
    status, name, message = error(post(api, operation, body))

    assert (status, name) == (400, "InvalidParameterException")
    assert "x" * 64 + "…" in message and len(message) < 300
    with api.service.store.snapshot() as conn:
        refused = list(audit.entries(conn))[-1]
    assert refused.data["operation"] == operation and len(json.dumps(refused.data)) < 1_000
