"""The hash-chained, append-only audit log.

Each entry is canonical JSON (sorted keys, no spaces) holding what was done, by whom, for
what purpose and case, with what outcome and which face/user ids and similarities came back —
never an embedding or an image. Entry *n* stores ``hash_n = SHA-256(hash_{n-1} ‖ json_n)``
(``hash_0`` is 64 zeros). Editing, deleting or reordering any entry breaks the chain from there
on. The head (sequence number and hash) is anchored outside the database: after every commit
that moved it, the store appends ``SEQ:HASH`` to an append-only head file (``HeadFile``,
mode 0600), and verification checks every head recorded there, so truncating the log,
emptying it, or rewriting it with recomputed hashes is detected; a head exported and kept
elsewhere guards against a rewritten head file too. Entries are appended in the same SQLite
transaction as the operation they record, so an operation and its record commit together or
not at all.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from facetrust.errors import AuditLogDamagedError
from facetrust.store.anchor import AWAITING_REVIEW, GENESIS, AuditHead, HeadFile, head

__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditHead",
    "ChainReport",
    "HeadFile",
    "append",
    "count_entries",
    "entries",
    "entries_query",
    "head",
    "other_than_follows",
    "verify_after",
    "verify_anchored",
    "verify_chain",
]


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: float
    data: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> str:
        return json.dumps(
            {"seq": self.seq, "at": self.at, **self.data, "prev_hash": self.prev_hash, "hash": self.hash},
            sort_keys=True,
        )


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    head: AuditHead
    problem: str | None = None
    first_bad_seq: int | None = None


def canonical(data: dict[str, Any]) -> str:
    """The entry's canonical JSON. A value JSON has no form for (bytes, a set, NaN: what a refused
    call may have been given) is written as a description of it, so the refusal is still logged."""
    dump = {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False, "allow_nan": False}
    try:
        return json.dumps(data, default=_described, **dump)  # type: ignore[arg-type]
    except ValueError:  # a NaN or an infinity somewhere: rare, so only then is every value visited
        return json.dumps(_finite(data), default=_described, **dump)  # type: ignore[arg-type]


def _described(value: object) -> object:
    """What the log keeps of a value JSON cannot hold: never the bytes themselves (and no NaN)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (set, frozenset)):
        plain = (v if isinstance(v, (str, int, float)) else _described(v) for v in value)
        return sorted((_finite(v) for v in plain), key=repr)
    return f"<{type(value).__name__}>"


def _finite(value: Any) -> Any:
    """``value`` with each NaN or infinity written as its name ("nan", "inf", "-inf")."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return _described(value)
    return value


def chain_hash(prev_hash: str, text: str) -> str:
    return hashlib.sha256((prev_hash + text).encode()).hexdigest()


def _has_surrogate(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def _escape_surrogates(value: Any) -> Any:
    """``value`` with each lone UTF-16 surrogate in its strings written as the text ``\\udXXX``."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode()
    if isinstance(value, dict):
        return {_escape_surrogates(k): _escape_surrogates(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escape_surrogates(v) for v in value]
    return value


def append(conn: sqlite3.Connection, data: dict[str, Any], *, at: float | None = None) -> AuditEntry:
    """Append one entry; call inside the write transaction of the operation it records."""
    last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (int(last[0]) + 1, str(last[1])) if last else (1, GENESIS)
    stamp = time.time() if at is None else at
    text = canonical({"at": stamp, **data})
    if not text.isascii() and _has_surrogate(text):  # from a refused request's JSON "\ud800": escape it
        data = _escape_surrogates(data)
        text = canonical({"at": stamp, **data})
    digest = chain_hash(prev, text)
    conn.execute(
        "INSERT INTO audit_log(seq, at, entry, prev_hash, hash) VALUES (?, ?, ?, ?, ?)",
        (seq, stamp, text, prev, digest),
    )
    return AuditEntry(seq, stamp, data, prev, digest)


def count_entries(conn: sqlite3.Connection, *, since: float | None = None, upto: int | None = None) -> int:
    """How many entries there are (at or after ``since``, up to sequence ``upto``)."""
    sql = "SELECT count(*) FROM audit_log WHERE 1 = 1"
    args: list[Any] = []
    if since is not None:
        sql += " AND at >= ?"
        args.append(since)
    if upto is not None:
        sql += " AND seq <= ?"
        args.append(upto)
    return int(conn.execute(sql, args).fetchone()[0])


def entries_query(
    *,
    since: float | None = None,
    after_seq: int = 0,
    limit: int | None = None,
    containing: str | None = None,
    awaiting_review: bool = False,
    unreviewed: bool = False,
) -> tuple[str, list[Any]]:
    """The SQL and arguments with which ``entries`` reads (its parameters)."""
    sql = "SELECT seq, at, entry, prev_hash, hash FROM audit_log WHERE seq > ?"
    args: list[Any] = [after_seq]
    if since is not None:
        sql += " AND at >= ?"
        args.append(since)
    if containing is not None:
        sql += " AND entry LIKE ? ESCAPE '\\'"
        escaped = containing.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        args.append(f"%{escaped}%")
    if awaiting_review:
        sql += f" AND {AWAITING_REVIEW}"
    if unreviewed:
        sql += " AND NOT EXISTS (SELECT 1 FROM reviews WHERE reviews.search_seq = audit_log.seq)"
    sql += " ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return sql, args


def entries(
    conn: sqlite3.Connection,
    *,
    since: float | None = None,
    after_seq: int = 0,
    limit: int | None = None,
    containing: str | None = None,
    awaiting_review: bool = False,
    unreviewed: bool = False,
) -> Iterator[AuditEntry]:
    """The entries after ``after_seq`` (at or after ``since``), in order, at most ``limit``; with
    ``containing``, only those whose stored text holds it (as SQL's LIKE compares: on SQLite, ASCII
    letters in either case). The database compares the text, so a reader after a few entries of a
    long log parses only those and the few others that hold it: ``'"review_required":true'`` finds
    every entry recording that member as true, the stored text being canonical JSON. With
    ``awaiting_review``, only those entries, found through an index of them alone
    (``anchor.AWAITING_REVIEW``) without reading the others. With ``unreviewed``, the database
    also leaves out the entries a review names (``reviews``), so the review queue reads only the
    searches still waiting, however many were reviewed."""
    sql, args = entries_query(
        since=since,
        after_seq=after_seq,
        limit=limit,
        containing=containing,
        awaiting_review=awaiting_review,
        unreviewed=unreviewed,
    )
    for seq, at, text, prev, digest in conn.execute(sql, args):
        data, problem = _read(seq, text)
        if data is None:
            raise AuditLogDamagedError(
                f"The audit log is damaged: {problem}; verify it (VerifyAuditLog, `facetrust audit-log verify`)",
                seq=int(seq),
            )
        data.pop("at", None)
        yield AuditEntry(int(seq), float(at), data, str(prev), str(digest))


def other_than_follows(
    conn: sqlite3.Connection,
    operation: str,
    *,
    after_seq: int,
    since: float | None = None,
    batch: int = 500,
) -> bool:
    """Whether an entry after ``after_seq`` (and at or after ``since``) records something other
    than ``operation``; an entry that no longer reads counts as other. Read in batches and only as
    far as the first such entry."""
    while True:
        sql = "SELECT seq, entry FROM audit_log WHERE seq > ?"
        args: list[Any] = [after_seq]
        if since is not None:
            sql += " AND at >= ?"
            args.append(since)
        rows = conn.execute(sql + " ORDER BY seq LIMIT ?", [*args, batch]).fetchall()
        for seq, text in rows:
            data, _ = _read(seq, text)
            if data is None or data.get("operation") != operation:
                return True
        if len(rows) < batch:
            return False
        after_seq = int(rows[-1][0])


def _read(seq: object, text: object) -> tuple[dict[str, Any] | None, str]:
    """An entry's stored text as its JSON object, or (None, what is wrong with it)."""
    if not isinstance(text, str):
        return None, f"entry {seq} is not text"
    try:
        data = json.loads(text)
    except ValueError:
        return None, f"entry {seq} is not valid JSON"
    if not isinstance(data, dict):
        return None, f"entry {seq} is not a JSON object"
    return data, ""


def _walk(rows: Iterable[Sequence[Any]], last: AuditHead) -> tuple[AuditHead, int, tuple[str, int] | None]:
    """Check ``rows`` (seq, at, entry, prev_hash, hash; in order) as the entries that follow ``last``:
    (the last good head, rows read, (problem, first bad seq) or None)."""
    count = 0
    for seq, at, text, stored_prev, digest in rows:
        count += 1
        if seq != last.seq + 1:
            return last, count, (f"entry {last.seq + 1} is missing (next is {seq})", last.seq + 1)
        if stored_prev != last.hash:
            return last, count, (f"entry {seq} does not follow entry {seq - 1}", seq)
        data, unreadable = _read(seq, text)
        if data is None:
            return last, count, (unreadable, seq)
        if chain_hash(last.hash, text) != digest or data.get("at") != at:
            return last, count, (f"entry {seq} was altered (its hash does not match)", seq)
        last = AuditHead(seq, str(digest))
    return last, count, None


def verify_chain(
    conn: sqlite3.Connection, expected: AuditHead | None = None, anchors: Sequence[AuditHead] = ()
) -> ChainReport:
    """Recompute the whole chain; check that it still holds ``expected`` (a head exported
    earlier) and every head of ``anchors`` (``HeadFile.heads()``) unchanged."""
    rows = conn.execute("SELECT seq, at, entry, prev_hash, hash FROM audit_log ORDER BY seq")
    last, count, problem = _walk(rows, AuditHead(0, GENESIS))
    if problem is not None:
        return ChainReport(False, count, last, *problem)
    if expected is not None:
        problem = _against(conn, last, expected, "the exported head")
        if problem is not None:
            return ChainReport(False, count, last, *problem)
    return _anchored(conn, ChainReport(True, count, last), anchors, "the head recorded in the head file")


def _anchored(conn: sqlite3.Connection, report: ChainReport, anchors: Sequence[AuditHead], what: str) -> ChainReport:
    """``report`` (of a chain that verified), failed at the newest of ``anchors`` the log no longer holds unchanged."""
    for anchor in sorted(anchors, key=lambda h: h.seq, reverse=True):
        problem = _against(conn, report.head, anchor, what)
        if problem is not None:
            return ChainReport(False, report.entries, report.head, *problem)
    return report


def verify_anchored(
    conn: sqlite3.Connection, heads: HeadFile, expected: AuditHead | None = None, others: Sequence[HeadFile] = ()
) -> ChainReport:
    """``verify_chain`` against every head in ``heads`` (and ``expected``), then against every head
    in each of ``others`` (other replicas' head files); an altered head file fails too."""
    try:
        anchors = heads.heads()
        more = [(other, other.heads()) for other in others]
    except ValueError as exc:
        return ChainReport(False, 0, head(conn), str(exc))
    report = verify_chain(conn, expected, anchors)
    for other, found in more:
        if not report.ok:
            break
        report = _anchored(conn, report, found, f"the head recorded in {other.path}")
    return report


def verify_after(conn: sqlite3.Connection, start: AuditHead, limit: int) -> ChainReport:
    """Verify only what follows ``start`` (a head verified or anchored before): that the log still
    holds it unchanged, and the next ``limit`` entries at most. The report's ``head`` is the last
    entry verified (``start`` when none followed), ``entries`` how many were read."""
    problem = _against(conn, head(conn), start, "the head anchored last")
    if problem is not None:
        return ChainReport(False, 0, start, *problem)
    rows = conn.execute(
        "SELECT seq, at, entry, prev_hash, hash FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?", (start.seq, limit)
    )
    last, count, problem = _walk(rows, start)
    return ChainReport(problem is None, count, last, *(problem or (None, None)))


def _against(conn: sqlite3.Connection, last: AuditHead, expected: AuditHead, what: str) -> tuple[str, int] | None:
    """(problem, first bad seq) when the log does not contain ``expected`` unchanged; None when it does."""
    if expected.seq > last.seq:
        return f"the log ends at entry {last.seq}, but entry {expected.seq} existed ({what}): truncated", last.seq + 1
    if expected.seq > 0:
        row = conn.execute("SELECT hash FROM audit_log WHERE seq = ?", (expected.seq,)).fetchone()
        if row is None or row[0] != expected.hash:
            return f"entry {expected.seq} differs from {what}: rewritten", expected.seq
    return None
