"""SigV4Authenticator against requests signed by real botocore (SigV4Auth), at a frozen time."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from facetrust.server.auth import AuthError, Principal, ReplayCache, SigV4Authenticator
from facetrust.server.keys import KeyStore
from facetrust.server.wire import WireRequest

NOW = dt.datetime(2024, 5, 1, 12, 0, 0)  # naive UTC, as botocore's clock returns it
NOW_S = NOW.replace(tzinfo=dt.UTC).timestamp()
URL = "http://127.0.0.1:8000/"


@pytest.fixture(autouse=True)
def _frozen_botocore_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: NOW)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[KeyStore]:
    with KeyStore.open(tmp_path) as keys:
        yield keys


@pytest.fixture
def key(store: KeyStore) -> tuple[str, str]:
    return store.create("searcher", "tests")


@pytest.fixture
def auth(store: KeyStore) -> SigV4Authenticator:
    return SigV4Authenticator(store, clock=lambda: NOW_S)


@dataclass
class Signed:
    """A signed request as the server sees it: lower-case header names, raw path and query."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def replace(self, **changes: Any) -> Signed:
        return Signed(**{**self.__dict__, **changes})

    def with_header(self, name: str, value: str | None) -> Signed:
        headers = {k: v for k, v in self.headers.items() if k != name}
        if value is not None:
            headers[name] = value
        return self.replace(headers=headers)


def sign(
    key_id: str,
    secret: str,
    *,
    body: bytes = b"{}",
    url: str = URL,
    target: str = "ListCollections",
    headers: Mapping[str, str] | None = None,
    service: str = "rekognition",
    region: str = "us-east-1",
    token: str | None = None,
    signer: type[SigV4Auth] = SigV4Auth,
) -> Signed:
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "X-Amz-Target": f"RekognitionService.{target}",
            "Content-Type": "application/x-amz-json-1.1",
            **(headers or {}),
        },
    )
    signer(Credentials(key_id, secret, token), service, region).add_auth(request)
    parts = urlsplit(request.url)
    sent = {name.lower(): str(value) for name, value in request.headers.items()}
    sent["host"] = parts.netloc  # what the HTTP client adds on the wire
    return Signed("POST", parts.path, parts.query, sent, request.body or b"")


def call(auth: SigV4Authenticator, request: Signed) -> Principal:
    return auth.authenticate(
        WireRequest.build(request.method, request.path, request.query, request.headers.items(), request.body)
    )


def refused(auth: SigV4Authenticator, request: Signed) -> AuthError:
    with pytest.raises(AuthError) as caught:
        call(auth, request)
    return caught.value


MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method."
)


# -- accepted ---------------------------------------------------------------------------------


def test_a_validly_signed_request_authenticates_as_its_key(auth: SigV4Authenticator, key: tuple[str, str]) -> None:
    assert call(auth, sign(*key)) == Principal(key[0], "searcher")


@pytest.mark.parametrize("role", ["admin", "enroller", "searcher", "auditor"])
def test_the_principal_carries_the_role_of_the_key(store: KeyStore, auth: SigV4Authenticator, role: str) -> None:
    key_id, secret = store.create(role)
    assert call(auth, sign(key_id, secret)).role == role


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1", "local", "on-prem-2"])
def test_any_region_is_accepted(auth: SigV4Authenticator, key: tuple[str, str], region: str) -> None:
    assert call(auth, sign(*key, region=region)).key_id == key[0]


@pytest.mark.parametrize("query", ["a=1", "b=2&a=1", "a=2&a=1", "x=a%20b&flag", "k=%2F%3D"])
def test_a_signed_query_string_is_verified(auth: SigV4Authenticator, key: tuple[str, str], query: str) -> None:
    assert call(auth, sign(*key, url=f"{URL}?{query}")).key_id == key[0]


def test_an_empty_body_is_signed_as_the_empty_hash(auth: SigV4Authenticator, key: tuple[str, str]) -> None:
    assert call(auth, sign(*key, body=b"")).key_id == key[0]


def test_signed_header_values_are_compared_with_whitespace_trimmed(
    auth: SigV4Authenticator, key: tuple[str, str]
) -> None:
    request = sign(*key, headers={"X-Note": "  a   b  "})
    assert call(auth, request.with_header("x-note", "a b")).key_id == key[0]


def test_header_names_may_arrive_in_any_case(auth: SigV4Authenticator, key: tuple[str, str]) -> None:
    request = sign(*key)
    upper = request.replace(headers={name.title(): value for name, value in request.headers.items()})
    assert call(auth, upper).key_id == key[0]


def test_unsigned_headers_may_change(auth: SigV4Authenticator, key: tuple[str, str]) -> None:
    request = sign(*key).with_header("user-agent", "something else").with_header("x-forwarded-for", "10.0.0.1")
    assert call(auth, request).key_id == key[0]


def test_a_matching_x_amz_content_sha256_is_accepted(auth: SigV4Authenticator, key: tuple[str, str]) -> None:
    body = b'{"MaxResults": 5}'
    request = sign(*key, body=body, headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    assert call(auth, request).key_id == key[0]


@pytest.mark.parametrize("offset", [-300.0, 300.0])
def test_a_request_at_the_skew_limit_is_accepted(store: KeyStore, key: tuple[str, str], offset: float) -> None:
    auth = SigV4Authenticator(store, clock=lambda: NOW_S + offset)
    assert call(auth, sign(*key)).key_id == key[0]


# -- tampered ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "tamper"),
    [
        ("body", lambda r: r.replace(body=b'{"MaxResults": 1}')),
        ("method", lambda r: r.replace(method="PUT")),
        ("path", lambda r: r.replace(path="/other")),
        ("query", lambda r: r.replace(query="a=1")),
        ("target", lambda r: r.with_header("x-amz-target", "RekognitionService.DeleteCollection")),
        ("content type", lambda r: r.with_header("content-type", "application/json")),
        ("host", lambda r: r.with_header("host", "evil.example:8000")),
        ("invocation id", lambda r: r.with_header("amz-sdk-invocation-id", "0000")),
    ],
)
def test_a_tampered_request_is_refused(auth: SigV4Authenticator, key: tuple[str, str], what: str, tamper: Any) -> None:
    request = sign(*key, headers={"amz-sdk-invocation-id": "1234"})

    error = refused(auth, tamper(request))

    assert (error.code, error.status, error.message, error.key_id) == (
        "InvalidSignatureException",
        403,
        MISMATCH,
        key[0],
    )


def test_a_wrong_secret_is_refused(auth: SigV4Authenticator, key: tuple[str, str]) -> None:
    error = refused(auth, sign(key[0], key[1][:-1] + ("A" if key[1][-1] != "A" else "B")))
    assert (error.code, error.message) == ("InvalidSignatureException", MISMATCH)


def test_a_body_that_does_not_match_x_amz_content_sha256_is_refused(
    auth: SigV4Authenticator, key: tuple[str, str]
) -> None:
    request = sign(*key, headers={"X-Amz-Content-SHA256": hashlib.sha256(b"{}").hexdigest()})

    error = refused(auth, request.replace(body=b'{"x": 1}'))

    assert (error.code, error.message) == (
        "InvalidSignatureException",
        "x-amz-content-sha256 does not match the SHA-256 of the body",
    )


def test_an_unsigned_payload_is_refused(auth: SigV4Authenticator, key: tuple[str, str]) -> None:
    error = refused(auth, sign(*key, headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}))
    assert error.code == "InvalidSignatureException"


# -- keys -------------------------------------------------------------------------------------


UNRECOGNIZED = "The security token included in the request is invalid."


def test_an_unknown_key_is_unrecognized(auth: SigV4Authenticator) -> None:
    error = refused(auth, sign("FTKAAAAAAAAAAAAAAAAA", "x" * 40))
    assert (error.code, error.status, error.message) == ("UnrecognizedClientException", 403, UNRECOGNIZED)


def test_a_revoked_key_is_unrecognized_at_once_even_when_revoked_elsewhere(
    tmp_path: Path, auth: SigV4Authenticator, key: tuple[str, str]
) -> None:
    assert call(auth, sign(*key, body=b'{"n": 1}')).key_id == key[0]
    with KeyStore.open(tmp_path) as other:  # as `facetrust keys revoke` in another process
        other.revoke(key[0])

    error = refused(auth, sign(*key, body=b'{"n": 2}'))

    assert (error.code, error.message, error.key_id) == ("UnrecognizedClientException", UNRECOGNIZED, key[0])


def test_a_session_token_is_unrecognized(auth: SigV4Authenticator, key: tuple[str, str]) -> None:
    error = refused(auth, sign(*key, token="session"))
    assert error.code == "UnrecognizedClientException"


# -- time and scope ---------------------------------------------------------------------------


def test_a_request_older_than_the_skew_is_expired(store: KeyStore, key: tuple[str, str]) -> None:
    auth = SigV4Authenticator(store, clock=lambda: NOW_S + 301)

    error = refused(auth, sign(*key))

    assert (error.code, error.status, error.message) == (
        "InvalidSignatureException",
        403,
        "Signature expired: 20240501T120000Z is now earlier than 20240501T120001Z (20240501T120501Z - 5 min.)",
    )


def test_a_request_from_beyond_the_skew_in_the_future_is_refused(store: KeyStore, key: tuple[str, str]) -> None:
    auth = SigV4Authenticator(store, clock=lambda: NOW_S - 301)

    error = refused(auth, sign(*key))

    assert (error.code, error.message) == (
        "InvalidSignatureException",
        "Signature not yet current: 20240501T120000Z is still later than 20240501T115959Z (20240501T115459Z + 5 min.)",
    )


def test_the_skew_limit_is_configurable(store: KeyStore, key: tuple[str, str]) -> None:
    auth = SigV4Authenticator(store, max_skew_s=60.0, clock=lambda: NOW_S + 61)
    assert refused(auth, sign(*key)).message.startswith("Signature expired: ")


def test_a_credential_scope_date_other_than_x_amz_date_is_refused(
    auth: SigV4Authenticator, key: tuple[str, str]
) -> None:
    request = sign(*key)
    header = request.headers["authorization"].replace("/20240501/", "/20240430/")

    error = refused(auth, request.with_header("authorization", header))

    assert (error.code, error.message) == (
        "InvalidSignatureException",
        "Date in Credential scope does not match YYYYMMDD from X-Amz-Date: '20240430' != '20240501', "
        "from '20240501T120000Z'",
    )


def test_a_signature_for_another_service_is_refused(auth: SigV4Authenticator, key: tuple[str, str]) -> None:
    error = refused(auth, sign(*key, service="s3"))
    assert (error.code, error.message) == (
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'rekognition'",
    )


# -- missing and malformed --------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, ""])
def test_a_request_without_authorization_is_missing_a_token(
    auth: SigV4Authenticator, key: tuple[str, str], value: str | None
) -> None:
    error = refused(auth, sign(*key).with_header("authorization", value))
    assert (error.code, error.status) == ("MissingAuthenticationTokenException", 403)
    assert error.key_id is None


GOOD = "Credential=FTKAAAAAAAAAAAAAAAAA/20240501/us-east-1/rekognition/aws4_request"
SIG = "Signature=" + "0" * 64


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Basic dXNlcjpwYXNz", "Authorization header must use AWS4-HMAC-SHA256; got 'Basic'"),
        ("AWS4-HMAC-SHA256", "Authorization header has a malformed or repeated parameter ''"),
        (f"AWS4-HMAC-SHA256 {GOOD}, {SIG}", "Authorization header requires 'SignedHeaders' parameter"),
        (
            f"AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, {SIG}",
            "Authorization header requires 'Credential' parameter",
        ),
        (
            f"AWS4-HMAC-SHA256 {GOOD}, SignedHeaders=host;x-amz-date",
            "Authorization header requires 'Signature' parameter",
        ),
        (
            f"AWS4-HMAC-SHA256 {GOOD}, SignedHeaders=host;x-amz-date, {SIG}, Extra=1",
            "Authorization header must have exactly Credential, SignedHeaders and Signature",
        ),
        (
            f"AWS4-HMAC-SHA256 {GOOD}, {GOOD}, SignedHeaders=host;x-amz-date, {SIG}",
            f"Authorization header has a malformed or repeated parameter {GOOD[:40]!r}",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential=FTKAAAAAAAAAAAAAAAAA/2024-05-01/us-east-1/rekognition/aws4_request, "
            f"SignedHeaders=host;x-amz-date, {SIG}",
            "Credential must be KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential=FTK%0A/20240501/us-east-1/rekognition/aws4_request, "
            f"SignedHeaders=host;x-amz-date, {SIG}",
            "Credential must be KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential=FTKAAAAAAAAAAAAAAAAA/20240501/us_east/rekognition/aws4_request, "
            f"SignedHeaders=host;x-amz-date, {SIG}",
            "Credential must be KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential=FTKAAAAAAAAAAAAAAAAA/20240501/us-east-1/rekognition, "
            f"SignedHeaders=host;x-amz-date, {SIG}",
            "Credential must be KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential=FTKAAAAAAAAAAAAAAAAA/20240501/us-east-1/rekognition/aws4, "
            f"SignedHeaders=host;x-amz-date, {SIG}",
            "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4'",
        ),
        (
            f"AWS4-HMAC-SHA256 {GOOD}, SignedHeaders=Host;x-amz-date, {SIG}",
            "SignedHeaders must be distinct lower-case header names separated by ';'",
        ),
        (
            f"AWS4-HMAC-SHA256 {GOOD}, SignedHeaders=host;host;x-amz-date, {SIG}",
            "SignedHeaders must be distinct lower-case header names separated by ';'",
        ),
        (
            f"AWS4-HMAC-SHA256 {GOOD}, SignedHeaders=host;x-amz-date, Signature=XYZ",
            "Signature must be 64 lower-case hexadecimal digits",
        ),
        (
            f"AWS4-HMAC-SHA256 {GOOD}, SignedHeaders=content-type;host;x-absent;x-amz-date;x-amz-target, {SIG}",
            "Signed header 'x-absent' is not in the request",
        ),
    ],
)
def test_a_malformed_authorization_header_is_an_incomplete_signature(
    auth: SigV4Authenticator, key: tuple[str, str], header: str, message: str
) -> None:
    error = refused(auth, sign(*key).with_header("authorization", header))
    assert (error.code, error.status, error.message) == ("IncompleteSignatureException", 403, message)


@pytest.mark.parametrize(
    "value", ["", "2024-05-01T12:00:00Z", "20240501T120000", "20240501t120000z", "20240501T12000Z", "２0240501T120000Z"]
)
def test_a_malformed_x_amz_date_is_an_incomplete_signature(
    auth: SigV4Authenticator, key: tuple[str, str], value: str
) -> None:
    error = refused(auth, sign(*key).with_header("x-amz-date", value))
    assert error.code == "IncompleteSignatureException"
    assert error.message.startswith("X-Amz-Date must be an ISO 8601 basic time like 20240131T235959Z; got ")


@pytest.mark.parametrize("unsigned", ["host", "x-amz-date"])
def test_host_and_x_amz_date_must_be_signed(auth: SigV4Authenticator, key: tuple[str, str], unsigned: str) -> None:
    class Skipping(SigV4Auth):
        def headers_to_sign(self, request: AWSRequest) -> Any:
            headers = super().headers_to_sign(request)
            del headers[unsigned]
            return headers

    error = refused(auth, sign(*key, signer=Skipping))

    assert (error.code, error.message) == (
        "IncompleteSignatureException",
        f"'{unsigned}' must be a SignedHeader in the Authorization header",
    )


# -- replay -----------------------------------------------------------------------------------


def replayed(after_s: int) -> str:
    return f"Signature replayed: this signed request was first accepted {after_s} s ago; sign each request anew"


class Clock:
    """A settable clock for the authenticator."""

    def __init__(self, now: float = NOW_S) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("target", ["IndexFaces", "DeleteFaces", "DeleteCollection", "ListCollections", "Unknown"])
def test_a_signature_repeated_within_the_repeat_window_is_accepted(
    auth: SigV4Authenticator, key: tuple[str, str], target: str
) -> None:
    request = sign(*key, target=target)
    assert call(auth, request) == call(auth, request) == Principal(key[0], "searcher")


@pytest.mark.parametrize("target", ["IndexFaces", "DeleteCollection", "ListCollections"])
def test_a_signature_presented_after_the_repeat_window_is_refused_as_a_replay(
    store: KeyStore, key: tuple[str, str], target: str
) -> None:
    clock = Clock()
    auth = SigV4Authenticator(store, clock=clock)
    request = sign(*key, target=target)
    call(auth, request)
    clock.now += 9
    call(auth, request)  # still an honest repeat: 9 s after the first acceptance (window: 10 s)

    clock.now += 2
    error = refused(auth, request)

    assert (error.code, error.status, error.message) == ("InvalidSignatureException", 403, replayed(11))


def test_a_repeat_window_of_zero_refuses_every_repeat(store: KeyStore, key: tuple[str, str]) -> None:
    auth = SigV4Authenticator(store, clock=lambda: NOW_S, repeat_window_s=0)
    request = sign(*key, target="ListCollections")
    call(auth, request)

    assert refused(auth, request).message == replayed(0)


def test_a_present_x_amz_target_must_be_signed(auth: SigV4Authenticator, key: tuple[str, str]) -> None:
    class Skipping(SigV4Auth):
        def headers_to_sign(self, request: AWSRequest) -> Any:
            headers = super().headers_to_sign(request)
            del headers["x-amz-target"]
            return headers

    error = refused(auth, sign(*key, signer=Skipping))

    assert (error.code, error.message) == (
        "IncompleteSignatureException",
        "'x-amz-target' must be a SignedHeader in the Authorization header",
    )


def test_a_refused_request_does_not_use_up_its_signature(store: KeyStore, key: tuple[str, str]) -> None:
    request = sign(*key, target="IndexFaces")
    refused(SigV4Authenticator(store, clock=lambda: NOW_S + 301), request)
    assert call(SigV4Authenticator(store, clock=lambda: NOW_S), request).key_id == key[0]


def test_only_one_of_many_concurrent_late_replays_is_remembered_once(store: KeyStore, key: tuple[str, str]) -> None:
    clock = Clock()
    auth = SigV4Authenticator(store, clock=clock)
    request = sign(*key, target="IndexFaces")
    call(auth, request)
    clock.now += 60
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            outcomes.append(call(auth, request).key_id)
        except AuthError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes == ["InvalidSignatureException"] * 8
    assert len(auth.replays) == 1


def test_replay_cache_expires_signatures_after_the_window() -> None:
    cache = ReplayCache(window_s=300.0, capacity=10, repeat_s=5.0)
    assert cache.admit("a", signed_at=1000.0, now=1000.0) is None
    assert cache.admit("a", signed_at=1000.0, now=1004.0) is None
    assert cache.admit("a", signed_at=1000.0, now=1300.0) == replayed(300)
    assert cache.admit("b", signed_at=1301.0, now=1301.0) is None
    assert len(cache) == 1


def test_a_clock_set_back_opens_no_repeat_window_in_either_replay_memory(tmp_path: Path) -> None:
    from facetrust.store import signatures

    cache = ReplayCache(window_s=300.0, capacity=10, repeat_s=10.0)
    shared = signatures.ReplayFile(tmp_path / "replays.db")
    conn = shared.connection()
    assert cache.admit("a", signed_at=1000.0, now=1030.0) is None
    assert signatures.admit(conn, "a", 1000.0, 1030.0, 10.0) is None
    assert cache.admit("a", signed_at=1000.0, now=1035.0) is None  # an honest repeat within 10 s
    for now in (1045.0, 985.0, 975.0):  # 15 s on; then the clock set back 60 s, 15 and 25 s after first use
        assert cache.admit("a", signed_at=1000.0, now=now) is not None
        assert signatures.admit(conn, "a", 1000.0, now, 10.0) is not None
    shared.close()


def test_a_full_replay_cache_refuses_what_it_can_no_longer_check() -> None:
    cache = ReplayCache(window_s=300.0, capacity=2)
    for signature, at in [("a", 10.0), ("b", 20.0), ("c", 30.0)]:  # "a" is dropped: floor 10
        assert cache.admit(signature, signed_at=at, now=30.0) is None
    assert len(cache) == 2
    assert cache.admit("a", signed_at=10.0, now=31.0) is not None  # dropped, still refused
    assert cache.admit("d", signed_at=15.0, now=31.0) is None  # dropped at once: floor 15
    assert cache.admit("d", signed_at=15.0, now=31.0) is not None
    assert cache.admit("e", signed_at=15.0, now=31.0) == (
        "Signature too old to check for replay (the replay cache is full); sign requests just before sending them"
    )
    assert cache.admit("b", signed_at=20.0, now=31.0) == replayed(1)


def _boto3_requests(key: tuple[str, str], calls: Any) -> list[Signed]:
    """The requests an unmodified boto3 client sends for ``calls(client)``, answered by a stub."""
    import boto3
    from botocore.awsrequest import AWSResponse

    client = boto3.client(
        "rekognition",
        endpoint_url=URL,
        region_name="us-east-1",
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
    )
    seen: list[Signed] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        parts = urlsplit(request.url)
        headers = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        headers["host"] = parts.netloc
        seen.append(Signed(request.method, parts.path, parts.query, headers, request.body or b""))
        return AWSResponse(request.url, 200, {}, _Raw(b"{}"))

    client.meta.events.register("before-send.rekognition.*", capture)
    calls(client)
    return seen


def test_boto3_signs_identical_calls_in_the_same_second_identically(
    auth: SigV4Authenticator, key: tuple[str, str]
) -> None:
    """botocore adds amz-sdk-invocation-id after signing, so repeated calls within a second share a signature."""
    first, second = _boto3_requests(key, lambda c: [c.list_collections(), c.list_collections()])

    assert first.headers["amz-sdk-invocation-id"] != second.headers["amz-sdk-invocation-id"]
    assert "amz-sdk-invocation-id" not in first.headers["authorization"]
    assert first.headers["authorization"] == second.headers["authorization"]
    assert call(auth, first) == call(auth, second) == Principal(key[0], "searcher")


def test_identical_boto3_writes_in_the_same_second_are_both_accepted(
    auth: SigV4Authenticator, key: tuple[str, str]
) -> None:
    def index_twice(client: Any) -> None:
        for _ in range(2):
            client.index_faces(CollectionId="staff", Image={"Bytes": b"jpeg"})

    first, second = _boto3_requests(key, index_twice)

    assert first.headers["authorization"] == second.headers["authorization"]
    assert call(auth, first).key_id == call(auth, second).key_id == key[0]


def test_boto3_idempotency_tokens_keep_user_writes_distinct(auth: SigV4Authenticator, key: tuple[str, str]) -> None:
    first, second = _boto3_requests(key, lambda c: [c.create_user(CollectionId="staff", UserId="u1") for _ in range(2)])

    assert first.body != second.body
    assert call(auth, first).key_id == call(auth, second).key_id == key[0]


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


# -- secrets stay secret ----------------------------------------------------------------------


def test_auth_never_logs_or_shows_the_secret(
    store: KeyStore, key: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = SigV4Authenticator(store, clock=lambda: NOW_S)
    revoked_id, revoked_secret = store.create("admin")
    store.revoke(revoked_id)
    errors: list[AuthError] = []
    clock = Clock()
    late = SigV4Authenticator(store, clock=clock)
    call(late, sign(*key, body=b'{"ok": 1}', target="IndexFaces"))
    clock.now += 60
    for request, authenticator in [
        (sign(*key, body=b'{"ok": 1}', target="IndexFaces"), late),  # replayed
        (sign(*key).replace(body=b"tampered"), auth),
        (sign(key[0], "wrong" * 8), auth),
        (sign(revoked_id, revoked_secret), auth),
        (sign(*key), SigV4Authenticator(store, clock=lambda: NOW_S + 999)),
    ]:
        with pytest.raises(AuthError) as caught:
            call(authenticator, request)
        errors.append(caught.value)

    shown = [r.getMessage() for r in caplog.records] + [f"{e!s} {e!r} {vars(e)}" for e in errors]
    shown += [repr(auth), repr(store), repr(store.list()), repr(store.lookup(key[0])[0])]  # type: ignore[index]
    assert len(caplog.records) >= 6
    for secret in (key[1], revoked_secret):
        assert not [text for text in shown if secret in text]
