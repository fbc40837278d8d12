"""Writing a file so that a reader never sees half of it.

The files facetrust writes to be read later (a calibration table, a normaliser, an embeddings
archive, a model in the cache, an index's metadata) go through ``atomic_write``: the bytes go to
a temporary file in the same folder, which then replaces the target in one ``os.replace``. A
crash, a full disk or an exception half-way leaves the old file as it was and no temporary file
behind. (An index snapshot's data files and manifest have their own protocol, ``index.storage``.)
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "atomic_write_text", "read_regular"]


def atomic_write(path: Path, write: Callable[[IO[bytes]], object], *, durable: bool = False) -> None:
    """Call ``write`` with a binary file beside ``path``, then move that file onto ``path``.

    The temporary file is made by ``mkstemp``, so the result is owner-only (0600), as biometric
    data must be. ``durable``: flush it to the disk before the move (a model in the cache),
    not only to the operating system. Raises ``OSError`` (nothing at ``path`` changed) when
    the folder cannot be written.
    """
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str, *, durable: bool = False) -> None:
    """``atomic_write`` of ``text`` as UTF-8."""
    data = text.encode("utf-8")
    atomic_write(path, lambda fh: fh.write(data), durable=durable)


def read_regular(path: Path | str) -> bytes:
    """The bytes of the regular file at ``path`` (a settings, key or table file).

    Anything else raises ``OSError`` with a reason, without blocking: a FIFO named as a file would
    otherwise wait for a writer forever, and a device could be read without end.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, socket or device)", str(path))
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as fh:
            fd = -1  # the file object closes it
            return fh.read()
    finally:
        if fd >= 0:
            os.close(fd)
