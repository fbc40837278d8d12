"""The retention sweep erasing many expired faces at once: the wall time, and where it goes.

    nice -n 10 .venv/bin/python bench/retention_sweep.py --label after
    PYTHONPATH=/tmp/facetrust-old/src nice -n 10 .venv/bin/python bench/retention_sweep.py --label before
    nice -n 10 .venv/bin/python bench/retention_sweep.py --label after --store postgresql://…

A temporary data directory (SQLite, or the PostgreSQL database ``--store`` names, whose schema
must hold no collection ``c``; the fake engine's 32-dimension templates) gets ``--faces``
seeded random faces through the store, every one already expired (as after a bulk ingestion whose
retention ended), and the collection's index is built (``auto``: pq from 100,000 faces), as a
server's searches would have built it. Then one ``sweep_retention`` is timed: the erasure's
transaction and the scrub of the index after it (the faces removed from it); with ``--limit``, one
sweep of at most that many faces (as a server sweeps, a batch a step). Runs (``--label``)
are merged into bench/results/retention-sweep.json and .md, with the machine and the load average.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from facetrust.models.fake import fake_engine
from facetrust.service import FaceService
from host import load_span, merge_run, write_table
from synthetic import new_faces

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 20_000


def run(n: int, limit: int | None = None, store: str | None = None) -> dict[str, Any]:
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as tmp, FaceService(Path(tmp) / "data", fake_engine(), store=store) as svc:
        svc.create_collection("c")
        row = svc.store.get_collection("c")
        assert row is not None
        for start in range(0, n, BATCH):
            faces = new_faces(rng, start, min(BATCH, n - start), external="person", expires_at=1000.0)
            with svc.store.transaction() as conn:
                svc.store.insert_faces(conn, row.id, faces)
        index = svc.ctx.indexes.get(row)
        index.ensure()
        name = index._index.name if index._index is not None else index.backend  # what the searches built
        t0 = time.perf_counter()
        result = svc.sweep_retention(limit=limit) if limit is not None else svc.sweep_retention()
        seconds = time.perf_counter() - t0
        where = "postgresql" if store else "sqlite"
        erased = len(result.expired)
        return {
            "faces": n,
            "limit": limit,
            "store": where,
            "index": name,
            "seconds": round(seconds, 2),
            "erased": erased,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=200_000)
    ap.add_argument("--limit", type=int, help="one sweep of at most this many faces")
    ap.add_argument("--store", help="a postgresql://… URL (default: SQLite)")
    ap.add_argument("--label", default="after")
    ap.add_argument("--out", type=Path, default=RESULTS / "retention-sweep.json")
    args = ap.parse_args()
    runs = merge_run(args.out, args.label, lambda: run(args.faces, args.limit, args.store))
    header = ["run", "store", "expired faces", "sweep's limit", "index", "sweep s", "erased", "load before / after"]
    rows = [
        [
            label,
            r.get("store", "sqlite"),
            f"{r['faces']:,}",
            r.get("limit") or "none",
            r["index"],
            r["seconds"],
            f"{r['erased']:,}",
            load_span(r),
        ]
        for label, r in runs.items()
    ]
    title = "The retention sweep of many expired faces (bench/retention_sweep.py)"
    write_table(args.out.with_suffix(".md"), title, header, rows)


if __name__ == "__main__":
    main()
