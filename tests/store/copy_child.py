"""Child process for the kill -9 tests of ``facetrust store copy``: runs the CLI with the arguments
after the first, killing itself (SIGKILL) where a line of store/copy.py that holds the first
argument is about to run (none when it is empty). Its SQLite page cache is a few pages, so the
copy's writes reach the database file before its commit, as those of a large store do."""

from __future__ import annotations

import linecache
import os
import signal
import sqlite3
import sys
from types import FrameType
from typing import Any

from facetrust.cli import cli
from facetrust.store import copy

_connect = sqlite3.connect


def _small_cache(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    conn = _connect(*args, **kwargs)
    conn.execute("PRAGMA cache_size=2")
    return conn


def _kill_at(text: str) -> Any:
    def local(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line" and text in linecache.getline(copy.__file__, frame.f_lineno):
            os.kill(os.getpid(), signal.SIGKILL)
        return local

    return lambda frame, event, arg: local if frame.f_code.co_filename == copy.__file__ else None


def main() -> None:
    sqlite3.connect = _small_cache  # type: ignore[assignment]
    if sys.argv[1]:
        sys.settrace(_kill_at(sys.argv[1]))
    cli.main(sys.argv[2:], prog_name="facetrust")


if __name__ == "__main__":
    main()
