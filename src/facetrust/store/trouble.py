"""How a background part that failed is logged: the store's trouble in one line, anything else in full."""

from __future__ import annotations

import logging

from facetrust.errors import StoreBusyError, StoreUnavailableError

__all__ = ["log_failure"]


def log_failure(logger: logging.Logger, exc: BaseException, message: str, *args: object) -> None:
    """Log ``message % args`` for a background part ``exc`` stopped (derived data, tried again later).
    The store out of reach, its connection lost or its write lock held too long is a warning of one
    line naming it, without a traceback: through an outage every part of every step fails so, and a
    traceback each would bury the log. Anything else is an error with its traceback."""
    if isinstance(exc, (StoreUnavailableError, StoreBusyError)):
        logger.warning(message + ": %s", *args, exc.message)
    else:
        logger.error(message, *args, exc_info=exc)
