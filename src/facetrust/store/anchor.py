"""Where the audit chain is anchored: its table, its head, and the head file beside the database.

The store creates the ``audit_log`` table and, after every commit that moved the chain's head,
appends that head to the ``HeadFile`` (the chain itself, its entries and its verification,
live in ``facetrust.governance.audit``, which builds on these).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["AWAITING_REVIEW", "DDL", "GENESIS", "RECENT_HEADS", "AuditHead", "HeadFile", "disagreement", "head"]

GENESIS = "0" * 64
MAX_SEQ = 2**63 - 1  # an entry's number is a signed 64-bit integer (SQLite's INTEGER, PostgreSQL's bigint)

# The entries of searches that await a human review hold this member (their stored text is
# canonical JSON). A partial index holds only those entries, so the review queue seeks them
# (``audit.entries(awaiting_review=True)`` names the same condition, as both databases need to
# use the index) instead of reading the text of every entry: 1.2 s a page at 1,000,000 entries.
AWAITING_REVIEW = """entry LIKE '%"review_required":true%'"""

DDL = f"""
CREATE TABLE IF NOT EXISTS audit_log (
    seq       INTEGER PRIMARY KEY,
    at        REAL NOT NULL,
    entry     TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_awaiting_review ON audit_log(seq) WHERE {AWAITING_REVIEW};
"""


@dataclass(frozen=True)
class AuditHead:
    """Where the chain ends: export it, keep it elsewhere, and verify against it later."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> AuditHead:
        seq, _, digest = text.strip().partition(":")
        # ASCII digits only: str.isdigit() also passes '²' (int() refuses it) and '١' (int() reads it as 1)
        digits = seq.isascii() and seq.isdigit()
        if not digits or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"{text!r} is not an audit head (expected SEQ:SHA256HEX)")
        if int(seq) > MAX_SEQ:
            raise ValueError(f"{text!r} is not an audit head: SEQ is at most {MAX_SEQ}, as a log's entries are")
        if int(seq) == 0 and digest != GENESIS:
            raise ValueError(f"{text!r} is not an audit head: head 0, before any entry, is 0:{GENESIS}")
        return cls(int(seq), digest)


def head(conn: sqlite3.Connection) -> AuditHead:
    last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return AuditHead(int(last[0]), str(last[1])) if last else AuditHead(0, GENESIS)


RECENT_HEADS = 64  # the newest lines of a head file checked against the log when a store opens
_LINE_BYTES = 128  # at least a head line's length (SEQ:HASH and a newline: 21 + 1 + 64 + 1 at most)


def disagreement(conn: sqlite3.Connection, recorded: Sequence[AuditHead]) -> str | None:
    """Why the log, as it stands, does not hold each of ``recorded`` (heads its head file anchored)
    unchanged: a log restored from an older copy (which brings erased faces back and hides the
    erasures) ends before them or holds other entries there; None when it holds them."""
    tip = head(conn)
    for anchored in sorted(recorded, key=lambda h: h.seq, reverse=True):
        if anchored.seq > tip.seq:
            return (
                f"the log ends at entry {tip.seq}, but the head file anchored entry {anchored.seq}: "
                "truncated, or restored from an older copy"
            )
        if anchored.seq > 0:
            row = conn.execute("SELECT hash FROM audit_log WHERE seq = ?", (anchored.seq,)).fetchone()
            if row is None or row[0] != anchored.hash:
                return (
                    f"entry {anchored.seq} differs from the head the head file anchored: rewritten, or "
                    "restored from an older copy"
                )
    return None


def _drop_cut_line(fd: int, size: int) -> int:
    """Cut ``fd``'s file back to its last newline when it ends in a line cut short (a crash or a
    full disk stopped an append); the file's size after."""
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    start = max(0, size - _LINE_BYTES)
    tail = os.pread(fd, size - start, start)
    end = tail.rfind(b"\n")
    keep = start + end + 1 if end >= 0 else (0 if start == 0 else size)  # a longer "line" is not a cut one
    if keep != size:
        log.warning("The head file ended in a line cut short (%d bytes); it was dropped", size - keep)
        os.ftruncate(fd, keep)
    return keep


class HeadFile:
    """The append-only anchor of one log: a line ``SEQ:HASH`` for each head, mode 0600.

    ``record`` appends a head newer than the last one this object wrote (threads of one
    process share it; several processes each append theirs, so lines need not be in order).
    ``heads`` reads them back; a last line cut short by a crash is ignored. ``halt`` stops this
    object's appends for good (a break was found in the chain: its tip must not be anchored).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._last = -1
        self.halted: str | None = None  # why appends stopped, or None
        self.failing: str | None = None  # why the last append failed (disk full...), None once one succeeds

    def __repr__(self) -> str:
        return f"HeadFile({str(self.path)!r})"

    def record(self, current: AuditHead) -> None:
        """Append ``current``: its whole line or nothing. A write the disk cut short (full, over a
        size limit) is taken back and raised as OSError, and ``failing`` says why until an append
        succeeds; a line an earlier process left cut short is dropped before this one is written,
        so it cannot run into it (and read as altered). Appends of all processes take an exclusive
        lock on the file, so dropping such a line never drops another's."""
        with self._lock:
            if current.seq <= self._last or self.halted is not None:
                return
            try:
                self._append(f"{current}\n".encode())
            except OSError as exc:
                self.failing = f"{exc.strerror or exc}"
                raise
            self.failing = None
            self._last = current.seq

    def _append(self, line: bytes) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd closes
            stat = os.fstat(fd)
            if stat.st_mode & 0o777 != 0o600:
                os.fchmod(fd, 0o600)
            size = _drop_cut_line(fd, stat.st_size)
            done = 0
            try:
                while done < len(line):
                    written = os.write(fd, line[done:])
                    if written <= 0:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    done += written
            except OSError:
                os.ftruncate(fd, size)  # no partial line is left for the next append to run into
                raise
        finally:
            os.close(fd)

    def halt(self, reason: str) -> None:
        """Append nothing more (``reason``: the break found in the chain)."""
        with self._lock:
            self.halted = reason

    def exists(self) -> bool:
        return self.path.is_file()

    def recent(self, count: int) -> list[AuditHead]:
        """The last ``count`` recorded heads, read from the end of the file (it gains a line for
        every audited commit, so reading all of it would cost more as history grows); ValueError
        naming the line when one of them was altered."""
        try:
            with self.path.open("rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                start = max(0, size - count * _LINE_BYTES)
                fh.seek(start)
                raw = fh.read()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ValueError(f"the head file {self.path} is unreadable: {exc}") from None
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"the head file {self.path} is not SEQ:HASH lines: altered") from None
        lines = text.split("\n")[:-1]  # the text after the last newline: empty, or a line cut short
        if start > 0 and lines:
            lines = lines[1:]  # the first may be a line read from its middle
        found = []
        for line in lines[-count:]:
            try:
                found.append(AuditHead.parse(line))
            except ValueError:
                raise ValueError(f"a line of the head file {self.path} is not SEQ:HASH: altered") from None
        return found

    def heads(self) -> list[AuditHead]:
        """Every recorded head; ValueError naming the line when one was altered."""
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"the head file {self.path} is unreadable: {exc}") from None
        lines = text.split("\n")
        complete = lines[:-1]  # the text after the last newline is empty, or a line cut short
        found = []
        for number, line in enumerate(complete, 1):
            try:
                found.append(AuditHead.parse(line))
            except ValueError:
                raise ValueError(f"line {number} of the head file {self.path} is not SEQ:HASH: altered") from None
        return found
