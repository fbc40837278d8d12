"""``facetrust serve``: auth on by default, --no-auth only on loopback, --bootstrap, and a clean shutdown."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import uvicorn
from botocore import UNSIGNED
from botocore.config import Config
from click.testing import CliRunner, Result

from facetrust.cli import cli
from facetrust.cli.serve import boto3_snippet, is_loopback
from facetrust.governance import audit
from facetrust.models.fake import fake_engine
from facetrust.server.http11 import GuardedH11Protocol
from facetrust.server.keys import KeyStore
from facetrust.service import FaceService
from pg_cluster import SQLITE_FILES

from .live import rekognition, serving


@pytest.fixture(autouse=True)
def _no_facetrust_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("FACETRUST_")]:
        monkeypatch.delenv(key)


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What uvicorn.run was called with (it returns at once instead of serving)."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    return calls


def while_serving(monkeypatch: pytest.MonkeyPatch, check: Callable[[str], None]) -> None:
    """Make uvicorn.run serve the app for real while ``check(url)`` runs, then return."""

    def run(app: Any, **kw: Any) -> None:
        with serving(app, lifespan=kw["lifespan"]) as url:  # as `serve` asked: starts and stops its lifespan
            check(url)

    monkeypatch.setattr(uvicorn, "run", run)


def serve(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data", str(tmp_path), "serve", *args], obj={"engine": fake_engine()})


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "faces.example.org", "", "127.0.0.1.nip.io"])
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_no_auth_on_a_public_address_is_refused(tmp_path: Path, runs: list[dict[str, Any]]) -> None:
    result = serve(tmp_path, "--no-auth", "--host", "0.0.0.0")

    assert result.exit_code == 2
    assert "--no-auth is refused on --host 0.0.0.0" in result.output
    assert runs == []


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_no_auth_on_loopback_serves_without_authentication(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    seen: list[tuple[Any, ...]] = []

    def run(app: Any, **kw: Any) -> None:  # serves while the command runs: its service is open until it returns
        with serving(app, lifespan=kw["lifespan"]) as url:
            seen.append((kw["host"], kw["port"], httpx.get(url + "/health").json()["authentication"]))

    monkeypatch.setattr(uvicorn, "run", run)
    result = serve(tmp_path, "--no-auth", "--host", host, "--port", "8123")

    assert result.exit_code == 0, result.output
    assert seen == [(host, 8123, False)]
    assert "(authentication OFF)" in result.output


def test_serve_defaults_to_authentication_on_127_0_0_1_port_8000(tmp_path: Path, runs: list[dict[str, Any]]) -> None:
    result = serve(tmp_path)

    assert result.exit_code == 0, result.output
    (run,) = runs
    assert (run["host"], run["port"], run["http"]) == ("127.0.0.1", 8000, GuardedH11Protocol)
    *made, last = result.output.splitlines()
    assert last == (
        f"facetrust: serving {tmp_path} at http://127.0.0.1:8000 (authentication on); "
        "web page http://127.0.0.1:8000/ui/; Ctrl-C stops"
    )
    # the first start in this user's config makes the per-user keys, and its log says where
    assert all(" INFO facetrust.governance.crypto: Created key file " in line for line in made)


def test_serve_runs_the_apps_lifespan_which_holds_the_retention_sweep(
    tmp_path: Path, runs: list[dict[str, Any]]
) -> None:
    assert serve(tmp_path).exit_code == 0
    (run,) = runs
    assert run["lifespan"] == "on"  # "off" would silently skip the hourly sweep (server/app.py)


def test_serve_with_authentication_refuses_unsigned_requests_and_accepts_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with KeyStore.open(tmp_path) as keys:
        key_id, secret = keys.create("admin")
    answers: list[Any] = []

    def check(url: str) -> None:
        unsigned = boto3.client(
            "rekognition",
            endpoint_url=url,
            region_name="us-east-1",
            config=Config(signature_version=UNSIGNED, retries={"max_attempts": 0}),
        )
        signed = boto3.client(
            "rekognition",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 0}),
        )
        try:
            with pytest.raises(unsigned.exceptions.ClientError, match="MissingAuthenticationToken"):
                unsigned.list_collections()
            answers.append(signed.list_collections()["CollectionIds"])
            answers.append(httpx.get(url + "/health").json()["authentication"])
        finally:
            unsigned.close()
            signed.close()

    while_serving(monkeypatch, check)

    assert serve(tmp_path).exit_code == 0
    assert answers == [[], True]


def test_bootstrap_creates_an_admin_key_once_and_prints_a_working_snippet(
    tmp_path: Path, runs: list[dict[str, Any]]
) -> None:
    first = serve(tmp_path, "--bootstrap")
    second = serve(tmp_path, "--bootstrap")

    assert first.exit_code == 0, first.output
    found = re.search(r"Created an admin key: (FTK\w+)\nSecret: (\S+)\n", first.output)
    assert found, first.output
    assert "Endpoint: http://127.0.0.1:8000" in first.output
    assert f'aws_access_key_id="{found[1]}", aws_secret_access_key="{found[2]}"' in first.output
    assert "Using the existing keys" in second.output and found[2] not in second.output
    with KeyStore.open(tmp_path) as keys:
        assert [(k.key_id, k.role) for k in keys.list()] == [(found[1], "admin")]
    with FaceService(tmp_path, fake_engine()) as service, service.store.snapshot() as conn:
        created = [e.data for e in audit.entries(conn) if e.data["operation"] == "CreateKey"]
    assert [(e["created_key_id"], e["key_role"], e["outcome"]) for e in created] == [(found[1], "admin", "ok")]


def test_the_bootstrap_snippet_works_against_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes: list[str] = []

    def check(url: str) -> None:
        with KeyStore.open(tmp_path) as keys:
            key_id, secret = keys.create("admin")
        code = boto3_snippet(url, key_id, secret).replace('open("face.jpg", "rb").read()', "b'not an image'")
        try:
            exec(code, {})  # creates a collection, then DetectFaces refuses the bytes
        except Exception as exc:
            outcomes.append(type(exc).__name__)

    while_serving(monkeypatch, check)

    assert serve(tmp_path).exit_code == 0
    assert outcomes == ["InvalidImageFormatException"]
    with FaceService(tmp_path, fake_engine()) as service:
        assert service.list_collections().names == ("demo",)


def test_bootstrap_without_auth_says_any_key_will_do(tmp_path: Path, runs: list[dict[str, Any]]) -> None:
    result = serve(tmp_path, "--no-auth", "--bootstrap")

    assert "Authentication is off: any key id and secret will do." in result.output
    with KeyStore.open(tmp_path) as keys:
        assert keys.list() == []


def test_the_service_is_closed_when_the_server_stops(
    tmp_path: Path, runs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[Path] = []
    original = FaceService.close

    def close(self: FaceService) -> None:
        closed.append(self.data_dir)
        original(self)

    monkeypatch.setattr(FaceService, "close", close)

    result = serve(tmp_path, "--no-auth")

    assert result.exit_code == 0, result.output
    assert closed == [tmp_path]


def test_serve_data_option_overrides_the_global_one(tmp_path: Path, runs: list[dict[str, Any]]) -> None:
    result = serve(tmp_path / "global", "--no-auth", "--data", str(tmp_path / "mine"))

    assert result.exit_code == 0, result.output
    assert f"serving {tmp_path / 'mine'} at" in result.output


def test_a_port_out_of_range_is_a_usage_error(tmp_path: Path, runs: list[dict[str, Any]]) -> None:
    assert serve(tmp_path, "--port", "70000").exit_code == 2


@pytest.mark.parametrize(("flags", "sealed"), [((), True), (("--no-encryption",), False)])
def test_templates_are_sealed_unless_no_encryption_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: tuple[str, ...], sealed: bool
) -> None:
    import base64

    from facetrust.governance.crypto import is_sealed
    from facetrust.models.fake import face_png
    from facetrust.store.postgres import open_store

    answers: list[int] = []

    def index(url: str) -> None:
        for target, body in [
            ("CreateCollection", {"CollectionId": "c"}),
            (
                "IndexFaces",
                {"CollectionId": "c", "Image": {"Bytes": base64.b64encode(face_png((10, 10, 90, 1))).decode()}},
            ),
        ]:
            headers = {"X-Amz-Target": f"RekognitionService.{target}", "Content-Type": "application/x-amz-json-1.1"}
            answers.append(httpx.post(url + "/", json=body, headers=headers).status_code)

    while_serving(monkeypatch, index)
    result = serve(tmp_path, "--no-auth", *flags)

    assert result.exit_code == 0, result.output
    assert answers == [200, 200]
    store = open_store(tmp_path / "facetrust.db")  # the store the server used (SQLite, or PostgreSQL)
    try:
        (blob,) = store.connection().execute("SELECT embedding FROM faces").fetchone()
    finally:
        store.close()
    assert is_sealed(bytes(blob)) is sealed


def test_a_port_already_in_use_is_an_error_line_not_uvicorns_exit_3(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(tmp_path, "--no-auth", "--port", str(port))
    assert result.exit_code == 1
    assert f"Error: cannot listen on 127.0.0.1:{port}: Address already in use" in result.output


def test_the_server_log_names_a_refused_key_and_the_request_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with KeyStore.open(tmp_path) as keys:
        key_id, secret = keys.create("admin")
        keys.revoke(key_id)
    seen: list[str] = []

    def check(url: str) -> None:
        client = rekognition(url, key_id, secret)
        try:
            with pytest.raises(client.exceptions.ClientError) as info:
                client.list_collections()
            seen.append(info.value.response["ResponseMetadata"]["RequestId"])
        finally:
            client.close()

    while_serving(monkeypatch, check)
    result = serve(tmp_path)

    assert result.exit_code == 0, result.output
    # the client is told only "unrecognized"; the operator's log says which key and why, under the request id
    assert f"INFO facetrust.server.auth: Refused a request signed by key {key_id}: revoked key" in result.stderr
    (request_id,) = seen
    assert f"request {request_id} ListCollections refused: UnrecognizedClientException" in result.stderr


@SQLITE_FILES
def test_the_server_log_holds_what_opening_the_store_logs(tmp_path: Path, runs: list[dict[str, Any]]) -> None:
    import logging

    from facetrust.store.sqlite import Store

    store = Store(tmp_path / "facetrust.db")
    with store.transaction() as conn:
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")  # an older facetrust's store
    store.close()

    result = serve(tmp_path)

    assert result.exit_code == 0, result.output
    assert "INFO facetrust.store.upgrade: Data directory" in result.stderr and "schema version 4 -> 5" in result.stderr
    assert not logging.getLogger("facetrust").handlers  # taken down when the command ends
