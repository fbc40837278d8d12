"""The web page at /ui/ in headless Chromium (Debian's package, driven by Playwright), against the real
app with SigV4 authentication on: the page signs every request in the browser with the key typed in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from playwright.sync_api import expect, sync_playwright

from facetrust.config import Settings
from facetrust.governance.policy import Policy, Purpose
from facetrust.models.fake import face_png, fake_engine
from facetrust.server.app import create_app
from facetrust.server.auth import SigV4Authenticator
from facetrust.server.keys import KeyStore
from facetrust.service import FaceService

from .live import serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000
POLICY = Policy(
    purposes={
        "general": Purpose("general", min_threshold=0, max_candidates=4096),
        "investigation": Purpose("investigation", human_review=True, min_threshold=0),
    },
    default_purpose="general",
)


@dataclass
class Site:
    url: str
    key_id: str
    secret: str
    client: Any  # an unmodified boto3 client signed with the same admin key


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install chromium (Debian's package) to run the web page tests"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    settings = Settings(data_dir=tmp_path / "data")
    with (
        FaceService(tmp_path / "data", fake_engine(), policy=POLICY) as service,
        KeyStore.open(tmp_path / "keys") as keys,
    ):
        key_id, secret = keys.create("admin", "web page test")
        app = create_app(service, authenticator=SigV4Authenticator(keys), settings=settings)
        with serving(app) as url:
            client = boto3.client(
                "rekognition",
                endpoint_url=url,
                region_name="us-east-1",
                aws_access_key_id=key_id,
                aws_secret_access_key=secret,
                config=Config(retries={"max_attempts": 0}),
            )
            try:
                yield Site(url, key_id, secret, client)
            finally:
                client.close()


def refusals(tab: Any) -> list[str]:
    """What the console's content security policy refused in ``tab`` (Chromium logs each refusal)."""
    refused: list[str] = []

    def note(message: Any) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    tab.on("console", note)
    return refused


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = browser.new_context()
    try:
        tab = context.new_page()
        refused = refusals(tab)
        tab.set_default_timeout(TIMEOUT_MS)
        tab.goto(f"{site.url}/ui/")
        yield tab
        assert refused == []
    finally:
        context.close()


def png(name: str, *faces: tuple[int, int, int, int]) -> dict[str, Any]:
    return {"name": name, "mimeType": "image/png", "buffer": face_png(*faces)}


def enter_key(page: Any, key_id: str, secret: str) -> None:
    page.get_by_label("Access key id").fill(key_id)
    page.get_by_label("Secret").fill(secret)
    page.get_by_role("button", name="Use this key").click()
    page.get_by_text(f"Signing requests with key {key_id}.").wait_for()


def test_compare_two_photos_of_the_same_face_shows_a_match(page: Any, site: Site, tmp_path: Path) -> None:
    enter_key(page, site.key_id, site.secret)
    page.get_by_label("Source photo").set_input_files(png("a.png", (60, 50, 120, 7)))
    page.get_by_label("Target photo").set_input_files(png("b.png", (30, 30, 100, 3), (220, 90, 130, 7)))
    page.get_by_role("button", name="Compare", exact=True).click()

    verdict = page.locator("#compare-verdict")
    expect(verdict).to_have_attribute("data-verdict", "match")
    expect(verdict).to_have_text(re.compile(r"^Match: "))
    assert float(page.locator("#compare-rows [data-field=similarity]").first.inner_text()) >= 80
    assert "1 in " in page.locator("#compare-rows [data-field=fmr]").first.inner_text()
    expect(page.locator("#compare-rows [data-field=result]")).to_have_text(["match", "no match"])
    # the boxes: one on the source, a match and another face on the target
    assert page.locator("#compare-source-picture .box.probe").count() == 1
    assert page.locator("#compare-target-picture .box.match").count() == 1
    assert page.locator("#compare-target-picture .box.other").count() == 1
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)


def test_compare_two_different_faces_shows_no_match(page: Any, site: Site) -> None:
    enter_key(page, site.key_id, site.secret)
    page.get_by_label("Source photo").set_input_files(png("a.png", (60, 50, 120, 7)))
    page.get_by_label("Target photo").set_input_files(png("b.png", (60, 50, 120, 8)))
    page.get_by_role("button", name="Compare", exact=True).click()

    expect(page.locator("#compare-verdict")).to_have_attribute("data-verdict", "no-match")


def test_search_from_the_page_lists_the_indexed_candidate(page: Any, site: Site) -> None:
    site.client.create_collection(CollectionId="staff")
    for pattern, name in ((4, "ada"), (5, "grace"), (6, "edsger")):
        site.client.index_faces(
            CollectionId="staff", Image={"Bytes": face_png((80, 60, 110, pattern))}, ExternalImageId=name
        )
    enter_key(page, site.key_id, site.secret)
    page.get_by_role("tab", name="Search a collection").click()
    page.get_by_label("Collection", exact=True).fill("staff")
    page.get_by_label("Photo (its largest face is searched)").set_input_files(png("probe.png", (150, 80, 120, 5)))
    page.get_by_role("button", name="Search", exact=True).click()

    expect(page.locator("#search-rows [data-field=external-image-id]")).to_have_text(["grace"])
    assert float(page.locator("#search-rows [data-field=similarity]").inner_text()) >= 80
    assert "1 in " in page.locator("#search-rows [data-field=fmr]").inner_text()
    expect(page.locator("#search-summary")).to_contain_text(re.compile(r"from 3 face\(s\) .* audit entry \d+\."))
    assert "%" in page.locator("[data-field=fpir]").inner_text()
    assert page.get_by_text("A candidate list is a lead for human review, not an identification").is_visible()
    expect(page.locator("#search-review")).to_be_hidden()  # this response does not ask for review


def test_browse_shows_the_collection_its_face_count_and_pages_of_faces(page: Any, site: Site) -> None:
    site.client.create_collection(CollectionId="visitors")
    site.client.create_collection(CollectionId="staff")
    for i in range(27):  # more than one page of 25
        site.client.index_faces(
            CollectionId="staff", Image={"Bytes": face_png((80, 60, 110, 10 + i))}, ExternalImageId=f"person-{i}"
        )
    enter_key(page, site.key_id, site.secret)
    page.get_by_role("tab", name="Browse collections").click()
    page.get_by_role("button", name="List collections").click()

    # in ListCollections' order: the order they were made in (docs/http.md#pagination-tokens)
    expect(page.locator("#collections-rows [data-field=collection]")).to_have_text(["visitors", "staff"])
    page.get_by_role("button", name="Open collection staff").click()
    expect(page.locator("#collection-facts [data-field=face-count]")).to_have_text("27")
    expect(page.locator("#faces-rows [data-field=external-image-id]")).to_have_count(25)
    expect(page.get_by_role("button", name="Previous page")).to_be_disabled()
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#faces-caption")).to_have_text("Faces 26–27 (page 2)")
    expect(page.locator("#faces-rows [data-field=external-image-id]")).to_have_text([re.compile("^person-")] * 2)
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    page.get_by_role("button", name="Previous page").click()
    expect(page.locator("#faces-caption")).to_have_text("Faces 1–25 (page 1)")


def test_a_wrong_secret_shows_the_signature_error(page: Any, site: Site) -> None:
    enter_key(page, site.key_id, site.secret[::-1])
    page.get_by_role("tab", name="Browse collections").click()
    page.get_by_role("button", name="List collections").click()

    error = page.locator("#browse-error")
    expect(error).to_have_text(
        re.compile(r"^InvalidSignatureException: The request signature we calculated does not match .*\(HTTP 403, ")
    )
    expect(page.locator("#collections-table")).to_be_hidden()


def test_the_secret_stays_in_session_storage_and_out_of_requests(page: Any, site: Site) -> None:
    sent: list[str] = []
    page.on("request", lambda request: sent.append(str(request.headers) + (request.post_data or "")))
    enter_key(page, site.key_id, site.secret)
    page.get_by_role("tab", name="Browse collections").click()
    page.get_by_role("button", name="List collections").click()
    page.get_by_text("There are no collections yet.").wait_for()

    assert page.evaluate("sessionStorage.getItem('facetrust.secret')") == site.secret
    assert page.evaluate("localStorage.length") == 0
    assert sent and not any(site.secret in request for request in sent)


def test_a_search_of_a_collection_whose_purpose_needs_review_shows_the_banner(page: Any, site: Site) -> None:
    site.client.create_collection(CollectionId="cases", Tags={"facetrust:purpose": "investigation"})
    site.client.index_faces(CollectionId="cases", Image={"Bytes": face_png((80, 60, 110, 5))}, ExternalImageId="lead")
    enter_key(page, site.key_id, site.secret)
    page.get_by_role("tab", name="Search a collection").click()
    page.get_by_label("Collection", exact=True).fill("cases")
    page.get_by_label("Photo (its largest face is searched)").set_input_files(png("probe.png", (150, 80, 120, 5)))
    page.get_by_role("button", name="Search", exact=True).click()

    expect(page.locator("#search-rows [data-field=external-image-id]")).to_have_text(["lead"])
    review = page.locator("#search-review")
    expect(review).to_be_visible()
    expect(review).to_contain_text("Review required:")
    expect(review).to_contain_text(re.compile(r"audit entry \d+ \(RecordReview\)"))
