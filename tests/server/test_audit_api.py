"""Requests through the server are audited under the caller's key and role."""

from __future__ import annotations

import pytest

from facetrust.governance import audit

from .conftest import Api


def test_each_operation_is_audited_under_the_caller(api: Api) -> None:
    api.client.create_collection(CollectionId="staff")
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.client.describe_collection(CollectionId="nobody")

    with api.service.store.snapshot() as conn:
        entries = [e.data for e in audit.entries(conn)]

    created = next(e for e in entries if e["operation"] == "CreateCollection")
    assert (created["key_id"], created["role"]) == ("anonymous", "admin")  # auth disabled: the anonymous admin
    assert any(e["operation"] == "DescribeCollection" and e["key_id"] == "anonymous" for e in entries)
