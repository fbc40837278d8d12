"""docs/http.md documents every operation the server serves, every error name and every metric."""

from __future__ import annotations

import re

import pytest

from facetrust.server.errors import ERROR_TABLE
from facetrust.server.metrics import Metrics
from facetrust.server.operations import OPERATIONS

from .live import HTTP_DOCS


def headings() -> set[str]:
    return set(re.findall(r"^### (\w+)$", HTTP_DOCS.read_text(), re.M))


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_operation_has_a_section_in_docs_http_md(operation: str) -> None:
    assert operation in headings(), f"docs/http.md has no heading '### {operation}'"


def test_docs_http_md_documents_no_operation_the_server_lacks() -> None:
    assert headings() - set(OPERATIONS) == set()


@pytest.mark.parametrize("name", sorted({rule.name for rule in ERROR_TABLE}))
def test_every_mapped_error_name_is_in_docs_http_md(name: str) -> None:
    assert f"`{name}`" in HTTP_DOCS.read_text()


@pytest.mark.parametrize("member", sorted({m for op in OPERATIONS.values() for m in op.members}))
def test_every_request_member_is_mentioned(member: str) -> None:
    assert f"`{member}`" in HTTP_DOCS.read_text()


def test_every_metric_is_documented() -> None:
    names = {family.name for family in Metrics().registry.collect()}
    text = HTTP_DOCS.read_text()

    missing = [n for n in sorted(names) if f"`{n}" not in text]
    assert not missing, f"docs/http.md does not document {missing}"
