"""A server without authentication answers only requests addressed to a loopback name, so a web
page cannot reach it by DNS rebinding (its own name made to resolve to 127.0.0.1)."""

from __future__ import annotations

import httpx
import pytest

from facetrust.config import Settings
from facetrust.server import create_app
from facetrust.server.auth import SigV4Authenticator
from facetrust.server.keys import KeyStore

from .conftest import Api
from .live import rekognition, serving
from .test_protocol_raw import error, post


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8000", "127.0.0.1.nip.io", "10.0.0.1"])
def test_given_no_authentication_when_the_host_is_not_loopback_then_nothing_is_done(api: Api, host: str) -> None:
    response = post(api, "CreateCollection", {"CollectionId": "rebound"}, headers={"host": host})

    status, name, message = error(response)
    assert (status, name) == (400, "AccessDeniedException")
    assert message == (
        f"Host {host!r} is not a loopback name: a server without authentication answers only requests "
        "addressed to localhost, 127.0.0.0/8 or [::1]"
    )
    assert api.service.list_collections().names == ()


@pytest.mark.parametrize("path", ["/health", "/ui/", "/metrics"])
def test_given_no_authentication_when_the_host_is_not_loopback_then_no_route_answers(api: Api, path: str) -> None:
    response = api.http.get(path, headers={"host": "attacker.example"})

    assert error(response)[:2] == (400, "AccessDeniedException")


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:8000", "127.0.0.1", "127.8.9.10:80", "[::1]", "[::1]:8000"])
def test_given_no_authentication_when_the_host_is_loopback_then_the_request_is_served(api: Api, host: str) -> None:
    response = post(api, "ListCollections", {}, headers={"host": host})

    assert response.status_code == 200, response.text


def test_given_no_authentication_when_boto3_calls_then_it_is_served(api: Api) -> None:
    assert api.client.list_collections()["CollectionIds"] == []


def test_given_authentication_when_the_host_is_any_name_then_the_signature_decides(api: Api) -> None:
    with KeyStore.open(api.service.data_dir) as keys:
        key_id, secret = keys.create("admin")
        app = create_app(api.service, authenticator=SigV4Authenticator(keys), settings=Settings())
        with serving(app) as url:
            client = rekognition(url.replace("127.0.0.1", "localhost"), key_id, secret)
            try:
                assert client.list_collections()["CollectionIds"] == []
            finally:
                client.close()
            response = httpx.get(url + "/health", headers={"host": "faces.example.org"})
            assert response.status_code == 200


@pytest.mark.parametrize("path", ["/health/", "/metrics/", "/nowhere/"])
def test_given_authentication_when_a_path_ends_in_a_slash_then_no_redirect_names_the_host(api: Api, path: str) -> None:
    with KeyStore.open(api.service.data_dir) as keys:
        app = create_app(api.service, authenticator=SigV4Authenticator(keys), settings=Settings())
        with serving(app) as url:
            response = httpx.get(url + path, headers={"host": "attacker.example"})

    assert "location" not in response.headers
    assert error(response)[:2] == (404, "UnknownOperationException")


def test_the_web_page_without_its_slash_is_found_by_a_relative_redirect(api: Api) -> None:
    with KeyStore.open(api.service.data_dir) as keys:
        app = create_app(api.service, authenticator=SigV4Authenticator(keys), settings=Settings())
        with serving(app) as url:
            response = httpx.get(url + "/ui", headers={"host": "attacker.example"})
            page = httpx.get(url + "/ui", follow_redirects=True)

    assert (response.status_code, response.headers["location"]) == (307, "/ui/")
    assert page.status_code == 200 and page.url.path == "/ui/"
