"""A PostgreSQL store URL's secrets never reach a message: libpq takes a password before the ``@``
and also as a ``password`` or ``sslpassword`` parameter."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetrust.errors import FacetrustError
from facetrust.store.postgres import open_store, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ft:hunter2@db/facetrust", "postgresql://ft:***@db/facetrust"),
        ("postgresql://ft@db/facetrust?password=hunter2", "postgresql://ft@db/facetrust?password=***"),
        (
            "postgresql://ft@db/facetrust?sslmode=require&sslpassword=hunter2&connect_timeout=3",
            "postgresql://ft@db/facetrust?sslmode=require&sslpassword=***&connect_timeout=3",
        ),
        ("postgresql:///facetrust?host=/run/pg&PASSWORD=hunter2", "postgresql:///facetrust?host=/run/pg&PASSWORD=***"),
        ("postgresql://ft@db/facetrust?pass%77ord=hunter2", "postgresql://ft@db/facetrust?pass%77ord=***"),
        ("postgresql://ft:a@db/facetrust?password=hunter2", "postgresql://ft:***@db/facetrust?password=***"),
        ("postgresql://ft@db/facetrust?host=db2", "postgresql://ft@db/facetrust?host=db2"),
    ],
)
def test_every_password_in_a_store_url_is_masked(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "hunter2" not in redact_url(url)


def test_a_store_that_cannot_be_opened_is_named_without_its_password_parameter(tmp_path: Path) -> None:
    url = f"postgresql://nobody@/db?host={tmp_path / 'nosocket'}&password=hunter2"
    with pytest.raises(FacetrustError) as caught:
        open_store(tmp_path / "facetrust.db", url).close()
    assert "Cannot open the PostgreSQL store" in str(caught.value)
    assert "hunter2" not in str(caught.value) and "password=***" in str(caught.value)
