"""The review queue's first page in a long audit log: the wall time of ListReviewQueue.

    nice -n 10 .venv/bin/python bench/review_queue.py --label after
    PYTHONPATH=/tmp/facetrust-old/src nice -n 10 .venv/bin/python bench/review_queue.py --label before

A temporary data directory (SQLite, the fake engine) gets ``--entries`` audit entries of searches
that need no review, written straight into ``audit_log`` (untimed; each with the members of a real
SearchFaces entry, about 400 bytes; the chain is not kept, as nothing here verifies it), then
``--waiting`` entries of searches that await review at the end of the log, as where reviewers
keep up. Then ``FaceService.review_queue`` (ListReviewQueue) reads its first page ``--repeats``
times; the median seconds and the number of items are kept. Runs (``--label``) are merged into
bench/results/review-queue.json and .md, with the machine and the load average.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from facetrust.governance import audit
from facetrust.models.fake import fake_engine
from facetrust.service import FaceService
from host import load_span, merge_run, write_table

RESULTS = Path(__file__).resolve().parent / "results"


def entry(waiting: bool) -> str:
    data = {
        "operation": "SearchFaces",
        "outcome": "ok",
        "actor": "key-0123456789abcdef",
        "collection": "c",
        "purpose": "default",
        "face_ids": [f"00000000-0000-4000-8000-{i:012d}" for i in range(3)],
        "similarities": [91.2, 85.1, 80.3],
        "threshold": 80.0,
        "gallery_size": 200000,
        "fpir": 0.01,
        "review_required": waiting,
    }
    return audit.canonical({"at": 1.0, **data})


def run(n: int, waiting: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, FaceService(Path(tmp) / "data", fake_engine()) as svc:
        svc.create_collection("c")
        with svc.store.transaction() as conn:
            last = int(conn.execute("SELECT max(seq) FROM audit_log").fetchone()[0] or 0)
            rows = [(last + 1 + i, 1.0, entry(i >= n), "0" * 64, "0" * 64) for i in range(n + waiting)]
            conn.executemany("INSERT INTO audit_log(seq, at, entry, prev_hash, hash) VALUES (?, ?, ?, ?, ?)", rows)
        times, items = [], 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            page = svc.review_queue(limit=50)
            times.append(time.perf_counter() - t0)
            items = len(page.items)
    return {"entries": n, "waiting": waiting, "median_s": round(statistics.median(times), 4), "items": items}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--waiting", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--label", default="after")
    ap.add_argument("--out", type=Path, default=RESULTS / "review-queue.json")
    args = ap.parse_args()
    runs = merge_run(args.out, args.label, lambda: run(args.entries, args.waiting, args.repeats))
    header = ["run", "audit entries", "awaiting review", "first page: median s", "items", "load before / after"]
    rows = [
        [label, f"{r['entries']:,}", r["waiting"], r["median_s"], r["items"], load_span(r)] for label, r in runs.items()
    ]
    write_table(args.out.with_suffix(".md"), "The review queue's first page (bench/review_queue.py)", header, rows)


if __name__ == "__main__":
    main()
