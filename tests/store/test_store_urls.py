"""A PostgreSQL store URL's secrets never reach a message: libpq takes a password before the ``@``
and also as a ``password`` or ``sslpassword`` parameter."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetrust.errors import FacetrustError
from facetrust.store.postgres import open_store, redact_error, redact_url


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
        ("postgresql://ft:hunter2#x@db/facetrust", "postgresql://ft:***@db/facetrust"),  # libpq reads to the @
        ("postgresql://ft:hun?ter2@db/facetrust?sslmode=require", "postgresql://ft:***@db/facetrust?sslmode=require"),
        ("postgresql:///facetrust", "postgresql:///facetrust"),
        (  # an Azure-style user@server in the query, and no path: the @ is the query's
            "postgresql://db.example?user=admin@srv&password=hunter2&sslmode=require",
            "postgresql://db.example?user=admin@srv&password=***&sslmode=require",
        ),
        (
            "postgresql://app:pw@db.example?user=admin@srv&password=hunter2",
            "postgresql://app:***@db.example?user=admin@srv&password=***",
        ),
        ("postgresql://app:p@ss@db/x", "postgresql://app:***@db/x"),
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


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app@127.0.0.1:1/facetrust?password=hunter2%zz",  # a stray % libpq quotes back
        "postgresql://app:hunter2%zz@127.0.0.1:1/facetrust",
        "postgresql://app:hunter2#x@127.0.0.1:1/facetrust",
        "postgresql://127.0.0.1:1?user=admin@srv&password=hunter2&sslmode=disable",
        "postgresql://app:hun@ter2@127.0.0.1:1/facetrust",
    ],
)
def test_a_drivers_error_that_quotes_the_url_is_shown_without_the_password(url: str, tmp_path: Path) -> None:
    with pytest.raises(FacetrustError) as caught:
        open_store(tmp_path / "facetrust.db", url).close()
    assert "hunter2" not in str(caught.value)


def test_every_secret_of_the_url_is_taken_out_of_a_message_as_written_and_decoded() -> None:
    url = "postgresql://app:pa%40ss@db/x?sslpassword=key%2Fpass"
    message = 'bad "pa%40ss" or "pa@ss"; sslpassword key%2Fpass or key/pass'
    assert redact_error(message, url) == 'bad "***" or "***"; sslpassword *** or ***'


def test_a_short_secret_is_not_taken_out_of_the_rest_of_a_message() -> None:
    assert redact_error("connection to 127.0.0.1 refused", "postgresql://app:1@127.0.0.1/x") == (
        "connection to 127.0.0.1 refused"
    )
    assert redact_url("postgresql://app:1@127.0.0.1/x") == "postgresql://app:***@127.0.0.1/x"
