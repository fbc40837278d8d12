"""What makes one server process a replica among several over one store: its name and its own folder.

Every replica keeps derived, per-process state beside the shared store: its vector index
snapshots. Two processes must never write the same snapshot files, so each replica has a folder
of its own, ``<data dir>/index`` (``replica_id`` unset, the default) or
``<data dir>/index/replica-<replica_id>``, and holds an exclusive lock on it (``flock`` on its
``.lock`` file) while it runs. A second process with the same ``replica_id`` on the same
machine (a CLI command beside a running server, say) does not get the lock: it keeps its
indexes in memory only, rebuilt from the store, and never writes or removes those files.
The lease holder name (``holder_name``) is unique per process start, so a restarted replica
never mistakes an old lease for its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import secrets
import socket
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from facetrust.config import REPLICA_ID, REPLICA_RULE
from facetrust.errors import ConfigurationError
from facetrust.store.private import private_dir

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.governance.policy import Policy

__all__ = ["FolderLock", "check_replica_id", "holder_name", "index_folder", "policy_fingerprint", "replica_folders"]

log = logging.getLogger(__name__)

INDEX_DIR = "index"
_PREFIX = "replica-"


def check_replica_id(replica_id: str) -> str:
    if replica_id and not REPLICA_ID.fullmatch(replica_id):
        raise ConfigurationError(
            f"Setting replica_id={replica_id[:80]!r} is invalid: must be {REPLICA_RULE}",
            setting="replica_id",
        )
    return replica_id


def index_folder(data_dir: Path, replica_id: str = "") -> Path:
    """The folder of this replica's index snapshots."""
    base = Path(data_dir) / INDEX_DIR
    return base / f"{_PREFIX}{check_replica_id(replica_id)}" if replica_id else base


def replica_folders(base: Path) -> list[Path]:
    """Every replica's snapshot folder in ``base`` (``index_folder(data_dir)``, itself first): an erasure
    scrubs them all."""
    if not base.is_dir():
        return []
    return [base, *sorted(p for p in base.glob(f"{_PREFIX}*") if p.is_dir())]


def policy_fingerprint(policy: Policy) -> str:
    """The first 16 hex digits of the SHA-256 of the policy's rules (not of where they were read from):
    replicas that answer alike show the same fingerprint in ``GET /health``."""
    rules = dataclasses.asdict(policy)
    rules.pop("source", None)
    return hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()[:16]


def holder_name(replica_id: str = "") -> str:
    """This process's name in the ``leases`` table: replica, host, pid and a random part (unique per start)."""
    return f"{replica_id or 'default'}@{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class FolderLock:
    """An exclusive, non-blocking ``flock`` on ``<folder>/.lock``, held until ``release`` (or the process ends)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None
        self._finalizer: weakref.finalize[[int], FolderLock] | None = None

    def acquire(self) -> bool:
        """True when this process now owns the folder; False when another process holds it."""
        import fcntl

        if self._fd is not None:
            return True
        try:
            private_dir(self.folder)
            fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("cannot lock the index folder %s (%s): indexes stay in memory", self.folder, exc)
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            log.info("index folder %s is in use by another process: this one keeps its indexes in memory", self.folder)
            return False
        self._fd = fd
        self._finalizer = weakref.finalize(self, os.close, fd)  # a service never closed lets go when collected
        return True

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # closing the descriptor drops the flock
        self._fd = self._finalizer = None
