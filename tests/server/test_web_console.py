"""The console tabs of /ui/ (People, Review, Audit) in headless Chromium, against the real app with
SigV4 on and a purpose that keeps face crops. ``FACETRUST_SCREENSHOTS=docs`` also refreshes the
screenshots in docs/ (otherwise they go to the test's temporary folder)."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from facetrust.config import Settings
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.governance.crypto import Keyring, TemplateKey, generate_key
from facetrust.governance.policy import Policy, Purpose
from facetrust.models.fake import face_png, fake_engine
from facetrust.server.app import create_app
from facetrust.server.auth import SigV4Authenticator
from facetrust.server.keys import KeyStore
from facetrust.service import FaceService

from .live import rekognition, serving
from .test_web_ui import TIMEOUT_MS, Site, browser, enter_key, png, refusals  # noqa: F401  (browser: the module fixture)

DOCS = Path(__file__).resolve().parents[2] / "docs"
POLICY = Policy(
    purposes={
        "photos": Purpose("photos", min_threshold=0, max_candidates=4096, keep_face_crops=True),
        "cases": Purpose("cases", human_review=True, min_threshold=0, keep_face_crops=True),
    },
    default_purpose="photos",
)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Site, FaceService]]:
    key = Keyring(TemplateKey.from_bytes(base64.b64decode(generate_key())))
    settings = Settings(data_dir=tmp_path / "data")
    with (
        FaceService(tmp_path / "data", fake_engine(), policy=POLICY, keyring=key) as service,
        KeyStore.open(tmp_path / "keys") as keys,
    ):
        key_id, secret = keys.create("admin", "console test")
        app = create_app(service, authenticator=SigV4Authenticator(keys), settings=settings)
        with serving(app) as url:
            client = rekognition(url, key_id, secret)
            try:
                yield Site(url, key_id, secret, client), service
            finally:
                client.close()


@pytest.fixture
def page(browser: Any, site: tuple[Site, FaceService]) -> Iterator[Any]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        tab = context.new_page()
        refused = refusals(tab)
        tab.set_default_timeout(TIMEOUT_MS)
        tab.goto(f"{site[0].url}/ui/")
        enter_key(tab, site[0].key_id, site[0].secret)
        yield tab
        assert refused == []
    finally:
        context.close()


def _shot(page: Any, view: str, name: str, tmp_path: Path) -> None:
    folder = DOCS if os.environ.get("FACETRUST_SCREENSHOTS") == "docs" else tmp_path
    page.locator(f"#view-{view}").screenshot(path=str(folder / name))


def _index(site: Site, collection: str, *patterns: int) -> None:
    for i, pattern in enumerate(patterns):
        site.client.index_faces(CollectionId=collection, Image={"Bytes": face_png((40 + 7 * i, 40, 110, pattern))})


def test_people_tab_lists_clusters_with_crops_and_merges_splits_and_names(
    page: Any, site: tuple[Site, FaceService], tmp_path: Path
) -> None:
    web, service = site
    web.client.create_collection(CollectionId="family")
    _index(web, "family", 1, 1, 2, 2, 3)
    page.get_by_role("tab", name="People").click()
    page.get_by_label("Collection to group into people").fill("family")
    page.get_by_role("button", name="List people").click()

    expect(page.locator("#people-summary")).to_have_text(re.compile(r"^2 people, 1 face unclustered"))
    expect(page.locator("#people-list img")).to_have_count(2)  # each cluster's representative crop
    for box in page.locator("#people-list input[type=checkbox]").all():
        box.check()
    page.get_by_role("button", name="Merge the ticked clusters").click()
    expect(page.locator("#person-faces img")).to_have_count(4)
    expect(page.locator("#person-facts")).to_contain_text("4 faces")
    page.locator("#person-faces input[type=checkbox]").first.check()
    page.get_by_role("button", name=re.compile("^Not this person")).click()
    expect(page.locator("#person-facts")).to_contain_text("3 faces")
    page.get_by_label(re.compile("^Name this person")).fill("alice")
    page.get_by_role("button", name="Name", exact=True).click()
    expect(page.locator("#person-facts")).to_contain_text("user alice")
    expect(page.locator("#people-list [data-field=person]")).to_have_text([re.compile("^alice: 3 faces")])
    assert service.list_users("family").users[0].face_count == 3
    _shot(page, "people", "console-people.png", tmp_path)


def test_review_tab_shows_probe_beside_candidate_crops_and_records_the_decision(
    page: Any, site: tuple[Site, FaceService], tmp_path: Path
) -> None:
    web, service = site
    web.client.create_collection(CollectionId="cases", Tags={"facetrust:purpose": "cases"})
    _index(web, "cases", 5, 6)
    # by another key than the console's: a key never reviews its own search (separation of duties)
    service.search_faces_by_image("cases", face_png((150, 80, 120, 5)), actor=Actor("FTKSEARCHER", "searcher"))
    page.get_by_role("tab", name="Review").click()
    page.get_by_label(re.compile("^Probe photo")).set_input_files(png("probe.png", (150, 80, 120, 5)))
    page.get_by_role("button", name="Load the review queue").click()

    item = page.locator("#review-list > li")
    expect(item).to_have_count(1)
    expect(item.locator("img.probe-photo")).to_have_count(1)
    expect(item.locator("figure.crop:not(.probe) img")).to_have_count(1)
    assert float(item.locator("[data-field=similarity]").inner_text()) >= 80
    expect(item.locator("[data-field=fmr]")).to_contain_text("1 in ")
    _shot(page, "review", "console-review.png", tmp_path)
    item.get_by_label("Decision").select_option("rejected")
    item.get_by_label("Note").fill("different ears")
    item.get_by_role("button", name="Record decision").click()
    expect(page.locator("[data-field=recorded]")).to_have_text(re.compile(r"^Search \d+: rejected, recorded as audit"))
    assert service.review_queue().items == ()


def test_audit_tab_reads_verifies_and_exports_the_chain(
    page: Any, site: tuple[Site, FaceService], tmp_path: Path
) -> None:
    web, _ = site
    web.client.create_collection(CollectionId="staff")
    page.get_by_role("tab", name="Audit").click()
    page.get_by_role("button", name="Read the log").click()
    expect(page.locator("#audit-rows [data-field=operation]", has_text="CreateCollection")).to_have_count(1)
    expect(page.locator("#audit-rows [data-field=key]").first).to_have_text(web.key_id)
    page.get_by_role("button", name="Verify the chain").click()
    expect(page.locator("#audit-verdict")).to_have_attribute("data-valid", "true")
    expect(page.locator("#audit-verdict")).to_contain_text("The chain is intact")
    page.get_by_role("button", name="Export (JSON)").click()
    link = page.locator("#audit-download")
    expect(link).to_be_visible()
    with page.expect_download() as download:
        link.click()
    assert b'"CreateCollection"' in Path(download.value.path()).read_bytes()
    _shot(page, "audit", "console-audit.png", tmp_path)


def test_the_audit_export_holds_every_entry_up_to_the_head_it_names(page: Any, site: tuple[Site, FaceService]) -> None:
    _, service = site
    page.get_by_role("tab", name="Audit").click()
    made = _settled_head(service)  # the console's own calls on entering the key are in the log
    for _ in range(1000 - made):  # a first page of 1,000 entries, then only the console's own reads
        service.list_collections()
    page.get_by_role("button", name="Read the log").click()
    expect(page.locator("#audit-rows [data-field=seq]")).to_have_count(200)  # the newest 200 it read
    page.get_by_role("button", name="Export (JSON)").click()
    with page.expect_download() as download:
        page.locator("#audit-download").click()

    exported = json.loads(Path(download.value.path()).read_bytes())
    sequences = [e["Sequence"] for e in exported["entries"]]
    assert sequences == list(range(1, len(sequences) + 1))
    assert sequences[-1] >= int(exported["head"].split(":")[0]) > 1000


def _settled_head(service: FaceService) -> int:
    """The audit log's last entry once nothing has been added to it for half a second."""
    last, steady = -1, 0
    while steady < 5:
        with service.store.snapshot() as conn:
            now = audit.head(conn).seq
        steady = steady + 1 if now == last else 0
        last = now
        time.sleep(0.1)
    return last


def test_a_failed_read_or_verification_leaves_no_earlier_result_standing(
    page: Any, site: tuple[Site, FaceService]
) -> None:
    """An error once left the earlier table, a green "intact" and its download link beside it."""
    web, _ = site
    page.get_by_role("tab", name="Audit").click()
    for button in ("Read the log", "Verify the chain", "Export (JSON)"):
        page.get_by_role("button", name=button).click()
    expect(page.locator("#audit-verdict")).to_contain_text("The chain is intact")
    expect(page.locator("#audit-download")).to_be_visible()
    page.get_by_role("button", name="Forget key").click()
    enter_key(page, web.key_id, web.secret[::-1])  # every request now refused
    page.get_by_role("tab", name="Audit").click()

    for button, shown in (
        ("Read the log", "#audit-table"),
        ("Verify the chain", "#audit-verdict"),
        ("Export (JSON)", "#audit-download"),
    ):
        page.get_by_role("button", name=button).click()
        expect(page.locator("#audit-error")).to_contain_text("InvalidSignatureException")
        expect(page.locator(shown)).to_be_hidden()


def test_a_failed_listing_of_people_leaves_no_other_collections_clusters_to_act_on(
    page: Any, site: tuple[Site, FaceService]
) -> None:
    web, _ = site
    web.client.create_collection(CollectionId="staff")
    _index(web, "staff", 1, 1, 2, 2)
    page.get_by_role("tab", name="People").click()
    page.get_by_label("Collection to group into people").fill("staff")
    page.get_by_role("button", name="List people").click()
    expect(page.locator("#people-result")).to_be_visible()

    page.get_by_label("Collection to group into people").fill("nobody")
    page.get_by_role("button", name="List people").click()

    expect(page.locator("#people-error")).to_contain_text("ResourceNotFoundException")
    expect(page.locator("#people-result")).to_be_hidden()
    expect(page.locator("#people-list li")).to_have_count(0)


def test_forgetting_the_key_takes_down_what_it_fetched(page: Any, site: tuple[Site, FaceService]) -> None:
    """The log, its verdict and the collections a key read stayed on screen with no key entered."""
    web, _ = site
    web.client.create_collection(CollectionId="staff")
    page.get_by_role("tab", name="Audit").click()
    page.get_by_role("button", name="Read the log").click()
    page.get_by_role("button", name="Verify the chain").click()
    expect(page.locator("#audit-verdict")).to_contain_text("The chain is intact")
    page.get_by_role("tab", name="Browse collections").click()
    page.get_by_role("button", name="List collections").click()
    expect(page.locator("#collections-rows [data-field=collection]")).to_have_text(["staff"])

    page.get_by_role("button", name="Forget key").click()

    for shown in ("#collections-table", "#audit-table", "#audit-verdict"):
        expect(page.locator(shown)).to_be_hidden()
    expect(page.locator("#audit-rows tr")).to_have_count(0)


def test_people_are_shown_a_page_at_a_time_and_more_follow_on_request(
    page: Any, site: tuple[Site, FaceService]
) -> None:
    web, _ = site
    web.client.create_collection(CollectionId="family")
    _index(web, "family", 1, 1, 1, 2, 2, 3)
    page.evaluate("PEOPLE_PAGE = 1")
    page.get_by_role("tab", name="People").click()
    page.get_by_label("Collection to group into people").fill("family")
    page.get_by_role("button", name="List people").click()

    expect(page.locator("#people-summary")).to_have_text(re.compile(r"^1 person shown, largest first, 1 face"))
    expect(page.locator("#people-list [data-field=person]")).to_have_text([re.compile("^unnamed: 3 faces")])
    page.get_by_role("button", name="More people").click()
    expect(page.locator("#people-list [data-field=person]")).to_have_text(
        [re.compile("^unnamed: 3 faces"), re.compile("^unnamed: 2 faces")]
    )
    expect(page.locator("#people-summary")).to_have_text(re.compile(r"^2 people, 1 face unclustered"))
    expect(page.get_by_role("button", name="More people")).to_be_hidden()
    expect(page.locator("#people-list img")).to_have_count(2)
