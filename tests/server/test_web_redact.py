"""The web page's redaction section in headless Chromium: upload a photo, download it redacted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from facetrust.models.fake import fake_engine

from .test_web_ui import Site, browser, enter_key, page, png, site

__all__ = ["browser", "page", "site"]  # the fixtures, shared with test_web_ui.py


def test_a_photo_uploaded_comes_back_with_no_face_and_can_be_downloaded(page: Any, site: Site, tmp_path: Path) -> None:
    enter_key(page, site.key_id, site.secret)
    page.get_by_label("Photo to redact").set_input_files(png("group.png", (40, 40, 80, 1), (200, 100, 60, 2)))
    page.get_by_label("Method").select_option("blur")
    page.get_by_role("button", name="Redact", exact=True).click()
    expect(page.locator("#redact-summary")).to_have_text("2 faces found, 2 redacted.")
    with page.expect_download() as caught:
        page.get_by_role("link", name="Download the redacted photo").click()
    download = caught.value
    assert download.suggested_filename == "group-redacted.png"
    saved = tmp_path / "saved.png"
    download.save_as(saved)
    assert saved.read_bytes()[:4] == b"\x89PNG"
    assert fake_engine().detect(saved) == []


def test_a_redaction_without_a_key_says_to_enter_one(page: Any) -> None:
    page.get_by_label("Photo to redact").set_input_files(png("one.png", (40, 40, 80, 1)))
    page.get_by_role("button", name="Redact", exact=True).click()
    expect(page.locator("#redact-error")).to_contain_text("Enter your access key id and secret above first.")
