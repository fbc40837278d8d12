"""SQLite's dialect, as the project writes it, translated to PostgreSQL's.

Every SQL text in facetrust is written once, for SQLite (store/, governance/, service/). On
PostgreSQL the connection wrapper (store/pg_conn.py) passes each statement through
``statement`` and the schema through ``ddl``; the translation is mechanical and cached:

- ``?`` placeholders become ``%s`` (and a literal ``%`` becomes ``%%``), outside quotes only;
- ``INSERT OR IGNORE`` becomes ``INSERT … ON CONFLICT DO NOTHING``; ``INSERT OR REPLACE``
  becomes ``INSERT … ON CONFLICT (primary key) DO UPDATE SET`` every other column it names;
- ``BEGIN IMMEDIATE`` (SQLite's one writer) becomes ``BEGIN`` plus a transaction-scoped
  advisory lock, so writers queue for each other as they do on SQLite, across processes;
  a plain ``BEGIN`` (a read snapshot) becomes ``BEGIN ISOLATION LEVEL REPEATABLE READ``;
- the PRAGMAs the store sets (journal, synchronous, busy timeout, …) have no PostgreSQL
  counterpart and are answered as no-ops; any other PRAGMA is refused;
- in DDL: ``INTEGER`` → ``BIGINT`` (``… AUTOINCREMENT`` → an identity column), ``REAL`` →
  ``DOUBLE PRECISION`` (PostgreSQL's ``REAL`` is 4 bytes), ``BLOB`` → ``BYTEA``, ``TEXT`` →
  ``TEXT COLLATE "C"`` (byte order, as SQLite compares and pages), and a trigger body becomes a
  PL/pgSQL function with its trigger.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["LOCK_CLASS", "Translated", "ddl", "placeholders", "statement"]

# The first key of the writer lock (``pg_advisory_xact_lock(LOCK_CLASS, hashtext(current_schema()))``):
# one writer at a time per schema, as SQLite allows one per database file.
LOCK_CLASS = 0x46540001
WRITER_LOCK = f"SELECT pg_advisory_xact_lock({LOCK_CLASS}, hashtext(current_schema()))"

# PRAGMAs that tune SQLite's own file handling: nothing to do on PostgreSQL (its WAL, fsync and
# lock waits are the server's settings); they are answered with no rows.
_NOOP_PRAGMAS = ("journal_mode", "synchronous", "foreign_keys", "secure_delete", "busy_timeout", "wal_checkpoint")

_INSERT = re.compile(r"^\s*INSERT\s+OR\s+(IGNORE|REPLACE)\s+INTO\s+(\w+)\s*\(([^)]*)\)", re.IGNORECASE | re.DOTALL)
_PLAIN_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)", re.IGNORECASE)


@dataclass(frozen=True)
class Translated:
    """One statement in PostgreSQL's dialect.

    ``kind``: "sql" (run it), "noop" (an answered PRAGMA), "begin_write" (BEGIN, then the writer
    lock). ``table``: the table an INSERT writes (its identity column gives ``lastrowid``).
    """

    sql: str
    kind: str = "sql"
    table: str | None = None


def placeholders(sql: str) -> str:
    """``sql`` with ``?`` → ``%s`` and ``%`` → ``%%`` outside quoted strings and identifiers."""
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        else:
            out.append("%%" if ch == "%" else ch)
    return "".join(out)


@lru_cache(maxsize=2048)
def _head(sql: str) -> tuple[str, ...]:
    return tuple(sql.strip().rstrip(";").split())


def statement(sql: str, primary_key: Callable[[str], Sequence[str]]) -> Translated:
    """``sql`` (one statement, SQLite's dialect) in PostgreSQL's; ``primary_key(table)`` names a
    table's key columns (for ``INSERT OR REPLACE``)."""
    words = [w.upper() for w in _head(sql)[:3]]
    if not words:
        return Translated("", "noop")
    if words[0] == "BEGIN":
        if len(words) > 1 and words[1] in ("IMMEDIATE", "EXCLUSIVE"):
            return Translated("BEGIN", "begin_write")
        return Translated("BEGIN ISOLATION LEVEL REPEATABLE READ")
    if words[0] == "PRAGMA":
        return _pragma(sql)
    if words[0] == "VACUUM":
        return Translated(sql.strip().rstrip(";"))
    found = _INSERT.match(sql)
    if found is None:
        plain = _PLAIN_INSERT.match(sql)
        return Translated(placeholders(sql), table=plain.group(1).lower() if plain else None)
    verb, table, columns = found.group(1).upper(), found.group(2).lower(), found.group(3)
    body = "INSERT INTO " + sql[found.start(2) :]  # without SQLite's OR IGNORE / OR REPLACE
    if verb == "IGNORE":
        return Translated(placeholders(body.rstrip().rstrip(";")) + " ON CONFLICT DO NOTHING", table=table)
    names = [c.strip().lower() for c in columns.split(",")]
    key = [k.lower() for k in primary_key(table)]
    if not key:
        raise ValueError(f"INSERT OR REPLACE INTO {table}: the table has no primary key to replace on")
    rest = [c for c in names if c not in key]
    action = "DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in rest) if rest else "DO NOTHING"
    tail = f" ON CONFLICT ({', '.join(key)}) {action}"
    return Translated(placeholders(body.rstrip().rstrip(";")) + tail, table=table)


def _pragma(sql: str) -> Translated:
    name = re.split(r"[\s=(]", sql.strip().split(None, 1)[1], maxsplit=1)[0].lower()
    if name in _NOOP_PRAGMAS:
        return Translated("", "noop")
    raise ValueError(f"PRAGMA {name} has no PostgreSQL counterpart in facetrust's store")


_TRIGGER = re.compile(
    r"CREATE\s+TRIGGER\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+(AFTER|BEFORE)\s+(INSERT|UPDATE|DELETE)\s+ON\s+(\w+)\s+"
    r"BEGIN\s+(.*?)\s*END\s*;",
    re.IGNORECASE | re.DOTALL,
)
# Type names are matched in capitals only, as the schema writes them, so a column named ``blob``
# or ``text`` is left alone.
_TYPES = (
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\bTEXT\b"), 'TEXT COLLATE "C"'),
)
_COMMENT = re.compile(r"--[^\n]*")


def _trigger(found: re.Match[str]) -> str:
    name, when, event, table, body = found.groups()
    row = "OLD" if event.upper() == "DELETE" else "NEW"
    return (
        f"CREATE OR REPLACE FUNCTION {name}_fn() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN {body} "
        f"RETURN {row}; END $fn$;\n"
        f"CREATE OR REPLACE TRIGGER {name} {when} {event} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}_fn();"
    )


def ddl(script: str) -> str:
    """A SQLite schema script (CREATE TABLE/INDEX/TRIGGER IF NOT EXISTS …) in PostgreSQL's dialect."""
    text = _COMMENT.sub("", script)
    parts: list[str] = []
    last = 0
    for found in _TRIGGER.finditer(text):
        parts.append(_types(text[last : found.start()]))
        parts.append(_trigger(found))
        last = found.end()
    parts.append(_types(text[last:]))
    return "".join(parts)


def _types(text: str) -> str:
    for pattern, replacement in _TYPES:
        text = pattern.sub(replacement, text)
    return text
