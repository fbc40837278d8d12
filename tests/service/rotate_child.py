"""Child process for the kill -9 tests of template rotation: re-seals a store's templates under a new
key, one face per batch (``FaceService.rotate_templates(batch_size=1)``), and kills itself with
SIGKILL once the first batch's transaction has committed: right after that commit (``commit``), or
inside the second batch's transaction, before it commits (``batch``).

Arguments: the data directory, where to die, the new and the old template key (base64), and the
store's URL (none: SQLite in the data directory)."""

from __future__ import annotations

import base64
import os
import signal
import sqlite3
import sys
from pathlib import Path

from facetrust.governance.crypto import Keyring, TemplateKey
from facetrust.models.fake import fake_engine
from facetrust.service import FaceService


def _key(text: str) -> TemplateKey:
    return TemplateKey.from_bytes(base64.b64decode(text))


def main() -> None:
    data, where, new, old = Path(sys.argv[1]), sys.argv[2], _key(sys.argv[3]), _key(sys.argv[4])
    store_url = sys.argv[5] if len(sys.argv) > 5 else None
    service = FaceService(data, fake_engine(), keyring=Keyring(new, (old,)), store=store_url)
    store = service.store
    real_reseal, real_commit = store.reseal_batch, store._commit
    batches: list[int] = []

    def reseal(conn: sqlite3.Connection, after_key: int, limit: int) -> object:
        batches.append(after_key)
        if where == "batch" and len(batches) == 2:  # the first batch committed; this one is open
            os.kill(os.getpid(), signal.SIGKILL)
        return real_reseal(conn, after_key, limit)

    def commit(conn: sqlite3.Connection) -> None:
        real_commit(conn)
        if where == "commit" and batches:  # the first batch's transaction, just committed
            os.kill(os.getpid(), signal.SIGKILL)

    store.reseal_batch = reseal  # type: ignore[method-assign,assignment]
    store._commit = commit  # type: ignore[method-assign]
    service.rotate_templates(batch_size=1)
    print("rotated: the kill never came", flush=True)


if __name__ == "__main__":
    main()
