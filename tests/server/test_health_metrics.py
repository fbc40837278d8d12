"""GET /health, GET /metrics (a registry per app) and the /ui static folder."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from facetrust.config import Settings
from facetrust.governance import audit
from facetrust.governance.policy import DEFAULT_POLICY
from facetrust.models.fake import face_png, fake_engine
from facetrust.server import app as app_module
from facetrust.server import create_app
from facetrust.service import FaceService
from facetrust.service.replica import policy_fingerprint
from pg_cluster import SQLITE_FILES

from .conftest import Api
from .live import serving


def samples(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = api.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_health_reports_status_models_and_collection_count(api: Api) -> None:
    api.client.create_collection(CollectionId="a")
    api.client.create_collection(CollectionId="b")

    response = api.http.get("/health")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "models": [
            {"role": "detector", "name": "fake-detector", "id": "fake-detector:0"},
            {"role": "recogniser", "name": "fake-recogniser", "id": "fake-recogniser:0"},
        ],
        "face_model_version": "fake-recogniser:0",
        "collections": 2,
        "authentication": False,
        "replica": "",
        "policy": policy_fingerprint(DEFAULT_POLICY),
        "audit_anchoring": "ok",
    }
    assert response.headers["x-amzn-requestid"]


def test_metrics_count_requests_by_operation_and_status(api: Api) -> None:
    api.client.create_collection(CollectionId="a")
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.client.describe_collection(CollectionId="nobody")
    api.http.post("/", headers={"x-amz-target": "RekognitionService.Nope"}, content=b"{}")

    got = samples(api)

    assert got[("facetrust_requests_total", (("operation", "CreateCollection"), ("status", "200")))] == 1
    assert got[("facetrust_requests_total", (("operation", "DescribeCollection"), ("status", "400")))] == 1
    assert got[("facetrust_requests_total", (("operation", "unknown"), ("status", "400")))] == 1
    assert got[("facetrust_request_duration_seconds_count", (("operation", "CreateCollection"),))] == 1
    assert got[("facetrust_request_duration_seconds_sum", (("operation", "CreateCollection"),))] > 0


def test_metrics_count_faces_indexed_and_searches(api: Api) -> None:
    api.client.create_collection(CollectionId="a")
    before = samples(api)
    api.client.index_faces(CollectionId="a", Image={"Bytes": face_png((40, 40, 80, 1), (200, 60, 90, 2))})
    api.client.search_faces_by_image(CollectionId="a", Image={"Bytes": face_png((40, 40, 80, 1))})
    api.client.search_faces_by_image(CollectionId="a", Image={"Bytes": face_png((40, 40, 80, 1))})

    after = samples(api)

    assert before[("facetrust_faces_indexed_total", ())] == 0
    assert after[("facetrust_faces_indexed_total", ())] == 2
    assert after[("facetrust_searches_total", (("operation", "SearchFacesByImage"),))] == 2


def test_faces_answered_again_by_a_repeated_index_faces_are_not_counted_as_stored(api: Api) -> None:
    api.client.create_collection(CollectionId="a")
    two = face_png((40, 40, 80, 1), (200, 60, 90, 2))
    first = api.client.index_faces(CollectionId="a", Image={"Bytes": two}, ExternalImageId="photo-1")
    again = api.client.index_faces(CollectionId="a", Image={"Bytes": two}, ExternalImageId="photo-1")

    assert len(again["FaceRecords"]) == len(first["FaceRecords"]) == 2  # answered with the stored faces
    assert samples(api)[("facetrust_faces_indexed_total", ())] == 2  # stored once


def test_two_apps_keep_separate_metrics(api: Api, tmp_path: Path) -> None:
    api.client.create_collection(CollectionId="a")
    with FaceService(tmp_path / "other", fake_engine()) as other:
        app = create_app(other, authenticator=None, settings=Settings())
        with serving(app) as url:
            text = httpx.get(url + "/metrics").text

    assert "CreateCollection" not in text
    assert 'operation="CreateCollection"' in api.http.get("/metrics").text


def test_ui_serves_the_web_folder_when_it_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<h1>facetrust</h1>")
    monkeypatch.setattr(app_module, "WEB_DIR", web)
    with FaceService(tmp_path / "data", fake_engine()) as service:
        with serving(create_app(service, authenticator=None, settings=Settings())) as url:
            page = httpx.get(url + "/ui/")

    assert page.status_code == 200
    assert page.text == "<h1>facetrust</h1>"


def test_console_pages_carry_a_content_security_policy_and_refuse_framing(api: Api) -> None:
    for path in ("/ui/", "/ui/app.js", "/ui/style.css"):
        response = api.http.get(path)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"

    api_response = api.http.get("/health")
    assert api_response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api_response.headers


def test_the_shipped_console_needs_nothing_its_policy_forbids() -> None:
    """The policy allows no inline script or style: the console's page must hold none."""
    page = (app_module.WEB_DIR / "index.html").read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, flags=re.S | re.I)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    assert not re.search(r"<style\b|\sstyle\s*=|\son[a-z]+\s*=|javascript:", page, flags=re.I)
    for name in ("app.js", "console.js", "redact.js"):
        code = (app_module.WEB_DIR / name).read_text()
        assert not re.search(r"\beval\(|new Function\(|innerHTML|setAttribute\(\s*['\"]on", code), name


def test_without_the_web_folder_ui_is_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "WEB_DIR", tmp_path / "absent")
    with FaceService(tmp_path / "data", fake_engine()) as service:
        with serving(create_app(service, authenticator=None, settings=Settings())) as url:
            response = httpx.get(url + "/ui/")

    assert response.status_code == 404
    assert response.json()["__type"] == "UnknownOperationException"


def test_health_probes_write_no_audit_entries(api: Api) -> None:
    api.client.create_collection(CollectionId="a")
    with api.service.store.snapshot() as conn:
        before = len(list(audit.entries(conn)))

    for _ in range(3):
        assert api.http.get("/health").json()["collections"] == 1

    with api.service.store.snapshot() as conn:
        assert len(list(audit.entries(conn))) == before


@pytest.mark.parametrize(
    "altered",
    [
        "replace(entry, '\"a\"', '\"b\"')",
        "'[]'",
        pytest.param("CAST(entry AS BLOB)", marks=SQLITE_FILES),  # a TEXT column on PostgreSQL holds no bytes
    ],
    ids=["edited", "not-an-object", "not-text"],
)
def test_health_reports_halted_anchoring_once_the_background_step_finds_a_tampered_audit_entry(
    tmp_path: Path, altered: str
) -> None:
    with FaceService(tmp_path / "data", fake_engine()) as service:
        service.create_collection("a")
        with service.store.transaction() as conn:  # the entry altered behind the service's back
            conn.execute(f"UPDATE audit_log SET entry = {altered} WHERE seq = 1")
        app = create_app(service, authenticator=None, settings=Settings(lease_seconds=1.5))  # a step every 0.5 s
        with serving(app, lifespan="on") as url:
            deadline = time.monotonic() + 15
            while (last := httpx.get(url + "/health").json())["audit_anchoring"] == "ok":
                assert time.monotonic() < deadline, "the background step did not report the break"
                time.sleep(0.1)

    assert last["audit_anchoring"] == "halted"
    assert last["status"] == "ok"  # still serving: the break is in the shared record, not in this replica


def test_health_reports_failing_anchoring_while_the_head_file_cannot_be_appended(api: Api) -> None:
    heads = api.service.store.heads.path
    api.client.create_collection(CollectionId="a")
    saved = heads.read_bytes()
    heads.unlink()
    heads.mkdir()  # every append now fails, as on a full disk
    try:
        api.client.create_collection(CollectionId="b")  # the commit stands; only its anchoring failed
        assert api.http.get("/health").json()["audit_anchoring"] == "failing"
    finally:
        heads.rmdir()
        heads.write_bytes(saved)
        heads.chmod(0o600)
    api.client.create_collection(CollectionId="c")
    assert api.http.get("/health").json()["audit_anchoring"] == "ok"
    assert [c for c in api.client.list_collections()["CollectionIds"]] == ["a", "b", "c"]


def test_health_answers_503_while_the_store_cannot_be_read(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    def unreachable() -> int:
        raise sqlite3.OperationalError("PostgreSQL: connection refused")

    with monkeypatch.context() as patched:
        patched.setattr(api.service.store, "count_collections", unreachable)
        down = api.http.get("/health")

    assert down.status_code == 503
    assert down.json() == {"status": "unavailable", "store": "unreachable", "replica": api.service.replica_id}
    assert api.http.get("/health").json()["status"] == "ok"  # back once it can be read again


@pytest.mark.parametrize("asked", ["bytes=abc", "bytes=5-1", "items=0-1", "bytes=999999-", "bytes=0-9"])
def test_console_files_are_served_whole_whatever_range_is_asked(api: Api, asked: str) -> None:
    whole = api.http.get("/ui/app.js")

    response = api.http.get("/ui/app.js", headers={"Range": asked, "If-Range": '"x"'})

    # Starlette answered these itself in plain text (400, 416) or in part (206), past the one error shape
    assert response.status_code == 200
    assert response.content == whole.content and len(whole.content) > 1000
    assert "accept-ranges" not in response.headers and "content-range" not in response.headers


@SQLITE_FILES
def test_health_answers_503_while_the_replay_record_cannot_be_opened(tmp_path: Path) -> None:
    """Every signed request records its signature in replays.db: unreadable, none is served."""
    from .live import serving_signed

    with FaceService(tmp_path / "data", fake_engine()) as service:
        replays = service.store.replays.path
        with serving_signed(service, {"admin": "admin"}) as (url, _):
            replays.write_bytes(b"this is not a SQLite database" * 100)  # before any signed request opened it
            down = httpx.get(url + "/health")
            replays.unlink()
            up = httpx.get(url + "/health")

    assert down.status_code == 503
    assert down.json() == {"status": "unavailable", "replay_record": "unreadable", "replica": service.replica_id}
    assert up.status_code == 200 and up.json()["status"] == "ok"
