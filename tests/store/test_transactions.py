"""Store.transaction: a failed transaction leaves the connection usable and its error visible."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.store.sqlite import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "facetrust.db")
    yield s
    s.close()


def _users(store: Store) -> int:
    return int(store.connection().execute("SELECT count(*) FROM users").fetchone()[0])


def test_a_failed_commit_is_rolled_back_and_the_next_transaction_works(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        with store.transaction() as conn:
            conn.execute("PRAGMA defer_foreign_keys=ON")  # the violation surfaces at COMMIT
            conn.execute("INSERT INTO users (collection_id, user_id, created_at) VALUES (999, 'ghost', 0)")
    assert not store.connection().in_transaction
    with store.transaction() as conn:  # BEGIN IMMEDIATE would fail inside a still-open transaction
        conn.execute("SELECT 1")
    assert _users(store) == 0


def test_an_error_after_sqlite_ended_the_transaction_is_raised_as_it_was(store: Store) -> None:
    with pytest.raises(ValueError, match="the real error"):
        with store.transaction() as conn:
            conn.execute("ROLLBACK")  # as SQLite does by itself after some I/O errors
            raise ValueError("the real error")
    with store.snapshot() as conn:
        conn.execute("ROLLBACK")
    with store.transaction():
        pass
