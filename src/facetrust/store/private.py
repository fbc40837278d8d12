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
    missing = [p for p in path.parents if not p.exists()]
    for folder in reversed(missing):  # mkdir(parents=True) would make them with the umask's mode, not ours
        folder.mkdir(exist_ok=True, mode=DIR_MODE)
        os.chmod(folder, DIR_MODE)
    path.mkdir(exist_ok=True, mode=DIR_MODE)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode != DIR_MODE:
        if mode & 0o077:
            log.warning("Directory %s had mode %o; setting it to 700", path, mode)
        os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 if it is missing; tighten it to 0600 if it exists.

    An existing file is never opened: SQLite's locks are POSIX locks, and closing any descriptor
    of a file drops every lock this process holds on it, those of other threads' connections
    included (another process could then write beside them)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        tighten(path)
    else:
        os.close(fd)  # a file nobody had open: no lock to lose
        tighten(path)  # the umask may have narrowed it further; never wider
    return Path(path)


def tighten(path: Path) -> None:
    """Set an existing file to 0600 (warning when others could read it); a missing one is left alone.
    By path (stat, chmod), never through a descriptor (see ``private_file``)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode != FILE_MODE:
            if mode & 0o077:
                log.warning("File %s had mode %o; setting it to 600", path, mode)
            os.chmod(path, FILE_MODE)
    except FileNotFoundError:
        return
