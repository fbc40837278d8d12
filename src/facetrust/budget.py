"""DecodeBudget: the pixels of decoded images alive at once, shared by every thread of an engine.

A decoded image costs about 3 bytes a pixel for as long as it lives (more while it decodes), and
an image of a few kilobytes can declare 40 million pixels, so concurrent requests could take
the process's memory anywhere. Each decode reserves its pixels first, waiting a while for
room, and the reservation ends when the decoded array is freed (a ``weakref.finalize`` on it,
so views and callers that keep the array keep the reservation). When no room frees up in
time the decode is refused with ``ServiceBusyError`` (retryable), never run. Freed image
memory is handed back to the OS (glibc's ``malloc_trim``; ``tune_malloc`` for servers).
"""

from __future__ import annotations

import functools
import gc
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from facetrust.errors import ImageTooLargeError, ServiceBusyError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["DEFAULT_WAIT", "DecodeBudget", "tune_malloc"]

log = logging.getLogger(__name__)

DEFAULT_WAIT = 10.0  # seconds a decode waits for room before it is refused
_TRIM_AFTER = 4_000_000  # pixels released since the last trim before memory is handed back to the OS
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
_MMAP_THRESHOLD = 4 * 1024 * 1024


class DecodeBudget:
    """At most ``pixels`` decoded pixels alive at once; a reservation waits up to ``wait`` seconds."""

    def __init__(self, pixels: int, *, wait: float = DEFAULT_WAIT) -> None:
        if pixels <= 0 or wait < 0:
            raise ValueError(f"DecodeBudget needs pixels > 0 and wait >= 0; got {pixels}, {wait}")
        self.pixels = pixels
        self.wait = wait
        self._in_flight = 0
        self._released = 0
        self._cond = threading.Condition()

    def __repr__(self) -> str:
        return f"DecodeBudget(pixels={self.pixels}, in_flight={self._in_flight})"

    @property
    def in_flight(self) -> int:
        """Pixels reserved now."""
        with self._cond:
            return self._in_flight

    def reserve(self, pixels: int, *, source: str | None = None) -> None:
        """Reserve ``pixels``; wait for room up to ``wait`` seconds, then raise ``ServiceBusyError``.

        More pixels than the whole budget can never fit: ``ImageTooLargeError`` at once.
        """
        if pixels > self.pixels:
            raise ImageTooLargeError(
                f"image has {pixels} pixels; the decode budget is {self.pixels}",
                limit=self.pixels,
                actual=pixels,
                source=source,
            )
        if self._try(pixels):
            return
        gc.collect()  # arrays kept alive only by reference cycles (tracebacks) free their pixels now
        deadline = time.monotonic() + self.wait
        with self._cond:
            while self._in_flight + pixels > self.pixels:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning(
                        "decode budget exhausted: %d pixels in flight, %d more refused", self._in_flight, pixels
                    )
                    raise ServiceBusyError(
                        f"Too many images are being decoded at once ({self._in_flight:,} of {self.pixels:,} pixels "
                        f"in flight; this one needs {pixels:,}); retry later",
                        limit=self.pixels,
                        requested=pixels,
                    )
                self._cond.wait(left)
            self._in_flight += pixels

    def _try(self, pixels: int) -> bool:
        with self._cond:
            if self._in_flight + pixels <= self.pixels:
                self._in_flight += pixels
                return True
            return False

    def release(self, pixels: int) -> None:
        """End a reservation; hand freed memory back to the OS after every few million pixels."""
        with self._cond:
            self._in_flight -= pixels
            self._released += pixels
            trim = self._released >= _TRIM_AFTER
            if trim:
                self._released = 0
            self._cond.notify_all()
        if trim:
            _trim_heap()

    def release_when_freed(self, array: np.ndarray, pixels: int) -> None:
        """End the reservation of ``pixels`` when ``array`` (and every view of it) is freed."""
        weakref.finalize(array, self.release, pixels)


def tune_malloc(threshold: int = _MMAP_THRESHOLD) -> bool:
    """Make glibc serve every allocation of ``threshold`` bytes or more with its own mmap.

    By default glibc raises that threshold as large blocks are freed (up to 32 MB), after
    which image-sized buffers come from per-thread arenas that keep their memory after a
    burst of concurrent decodes. A server process calls this once at start; returns False
    where the C library is not glibc.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))


def _trim_heap() -> None:
    """glibc keeps freed blocks in per-thread arenas; ``malloc_trim`` hands them back to the OS."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    import ctypes

    try:
        found: Callable[[int], int] = ctypes.CDLL(None).malloc_trim  # the process's C library
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return None
    return found
