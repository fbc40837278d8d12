"""Every store records its schema version and refuses one from a newer facetrust, SQLite and PostgreSQL alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetrust.errors import ConfigurationError
from facetrust.store.postgres import open_store, redact_url
from facetrust.store.schema import SCHEMA_VERSION


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_store_of_a_newer_schema_version_is_refused_on_both_stores(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = str(request.getfixturevalue("pg_url")) if kind == "postgresql" else "sqlite"
    store = open_store(tmp_path / "facetrust.db", url)
    try:
        assert store.connection().execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        with store.transaction() as conn:
            conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    finally:
        store.close()

    with pytest.raises(
        ConfigurationError, match=rf"has schema version 7, newer than this facetrust \({SCHEMA_VERSION}\)"
    ) as caught:
        open_store(tmp_path / "facetrust.db", url)
    # The message names the store refused: the data directory, or the database (never its password).
    if kind == "sqlite":
        assert caught.value.message.startswith(f"Data directory {tmp_path} has schema version 7")
    else:
        assert caught.value.message.startswith(f"PostgreSQL store {redact_url(url)} has schema version 7")
        assert "Data directory" not in caught.value.message
