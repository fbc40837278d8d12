"""Private files: the data directory is 0700 and every file in it 0600, whatever the umask.

SQLite gives its ``-wal``, ``-shm`` and ``-journal`` files the mode of the database file, so
creating the database 0600 before SQLite opens it is enough for those; files left wider by
an older facetrust are tightened (with a warning) when they are opened again.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["DIR_MODE", "FILE_MODE", "private_dir", "private_file", "tighten"]

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) 0700; tighten it to 0700 if it exists with wider access."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode != DIR_MODE:
        if mode & 0o077:
            log.warning("Directory %s had mode %o; setting it to 700", path, mode)
        os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 if it is missing; tighten it to 0600 if it exists."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        _fix(fd, Path(path))
    finally:
        os.close(fd)
    return Path(path)


def tighten(path: Path) -> None:
    """Set an existing file to 0600 (warning when others could read it); a missing one is left alone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        _fix(fd, Path(path))
    finally:
        os.close(fd)


def _fix(fd: int, path: Path) -> None:
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode != FILE_MODE:
        if mode & 0o077:
            log.warning("File %s had mode %o; setting it to 600", path, mode)
        os.fchmod(fd, FILE_MODE)
