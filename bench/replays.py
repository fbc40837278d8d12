"""What the shared replay record costs a request: ``SigV4Authenticator``'s replay check, in-process vs in the store.

    nice -n 5 .venv/bin/python bench/replays.py            # SQLite and PostgreSQL; writes bench/results/replays.json
    nice -n 5 .venv/bin/python bench/replays.py --stores sqlite --requests 2000 --out /tmp/replays

Each run admits ``--requests`` fresh signatures (random 64-hex strings, as a signed request carries),
one after another from one thread, as the server's replay check does once per authenticated request:
the in-process ``ReplayCache`` (what a server did before the record was shared), then
``StoreReplays`` over a fresh SQLite data directory (the record is ``replays.db`` beside
``facetrust.db``, WAL, ``synchronous=NORMAL``: a committed write, not fsynced), the same again while
another connection holds ``facetrust.db``'s write lock (``BEGIN IMMEDIATE``, as a long import
does: the check must not wait for it), and over a fresh schema of a throwaway PostgreSQL
(tests/pg_cluster.py: Unix socket, fsync off, as in the tests; a production server with fsync on
pays a WAL flush per admission too). Reports the median and p99 per admission and admissions per
second, with the machine and its load average before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from host import load_avg, machine_info

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def measure(admit: Any, requests: int) -> dict[str, float]:
    """Admit ``requests`` fresh signatures through ``admit(signature, signed_at, now)``; latencies in ms."""
    took = []
    for _ in range(requests):
        signature, now = secrets.token_hex(32), time.time()
        started = time.perf_counter()
        refused = admit(signature, now, now)
        took.append((time.perf_counter() - started) * 1000)
        if refused is not None:
            raise RuntimeError(f"a fresh signature was refused: {refused}")
    took.sort()
    return {
        "median_ms": round(statistics.median(took), 4),
        "p99_ms": round(took[int(0.99 * (len(took) - 1))], 4),
        "per_s": round(len(took) / (sum(took) / 1000), 1),
    }


@contextlib.contextmanager
def store_of(kind: str, folder: Path) -> Iterator[Any]:
    from facetrust.store.postgres import PostgresStore
    from facetrust.store.sqlite import Store

    if kind.startswith("sqlite"):
        store = Store(folder / "facetrust.db")
        writer = sqlite3.connect(store.path, isolation_level=None)
        try:
            if kind == "sqlite-write-locked":
                writer.execute("BEGIN IMMEDIATE")  # held until the run ends
            yield store
        finally:
            writer.close()
            store.close()
        return
    sys.path.insert(0, str(HERE.parent / "tests"))
    from pg_cluster import start_server

    server = start_server()
    try:
        pg = PostgresStore(folder / "facetrust.db", server.schema_url("replays"))
        try:
            yield pg
        finally:
            pg.close()
    finally:
        server.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=5000, help="signatures admitted per run (5000)")
    p.add_argument(
        "--stores",
        default="sqlite,sqlite-write-locked,postgresql",
        help="stores to measure besides the in-process cache (sqlite-write-locked: facetrust.db's write lock held)",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="where replays.json goes (bench/results)")
    args = p.parse_args()

    from facetrust.server.auth import ReplayCache
    from facetrust.server.replays import StoreReplays

    result: dict[str, Any] = {"machine": machine_info(), "requests": args.requests, "runs": {}}
    result["runs"]["in-process ReplayCache"] = measure(ReplayCache(300.0, 200_000, 10.0).admit, args.requests)
    for kind in [k for k in args.stores.split(",") if k]:
        with tempfile.TemporaryDirectory() as tmp, store_of(kind, Path(tmp)) as store:
            result["runs"][f"StoreReplays over {kind}"] = measure(StoreReplays(store, 300.0, 10.0).admit, args.requests)
    result["machine"]["load_after"] = load_avg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "replays.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
