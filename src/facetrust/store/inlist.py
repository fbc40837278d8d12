"""``IN (…)`` statements over many values, a chunk at a time (SQLite caps bound parameters per statement).

The placeholders are SQLite's ``?``; the PostgreSQL store's connection translates them
(store/pg_dialect.py), so every table module runs the same SQL on both. Plain SQL only: this
module imports nothing of the store, so any table module may use it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

__all__ = ["CHUNK", "in_chunks", "select_in"]

CHUNK = 500  # values per IN (...) list, well under every database's limit on parameters

_V = TypeVar("_V")


def in_chunks(values: Sequence[_V]) -> Iterator[tuple[str, list[_V]]]:
    """``values`` a chunk at a time, each with its placeholders (``?,?,…``) for ``IN ({marks})``."""
    for start in range(0, len(values), CHUNK):
        chunk = list(values[start : start + CHUNK])
        yield ",".join("?" * len(chunk)), chunk


def select_in(conn: sqlite3.Connection, sql: str, args: Sequence[object], values: Sequence[object]) -> Iterator[Any]:
    """Rows of ``sql`` (which ends in ``IN ({marks})``, after ``args``' placeholders) for all ``values``."""
    for marks, chunk in in_chunks(values):
        yield from conn.execute(sql.format(marks=marks), (*args, *chunk))
