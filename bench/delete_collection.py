"""DeleteCollection of a large collection, with and without people: the wall time and the receipt.

    nice -n 10 .venv/bin/python bench/delete_collection.py --label after
    nice -n 10 .venv/bin/python bench/delete_collection.py --label after --store postgresql://…
    PYTHONPATH=/tmp/facetrust-old/src nice -n 10 .venv/bin/python bench/delete_collection.py --label before

For each case (``--cases``: faces:people, e.g. ``200000:0`` and ``20000:5000``) a temporary data
directory (SQLite, or the PostgreSQL database ``--store`` names, whose schema must be empty; the
fake engine's 32-dimension templates, the default policy) gets that many
seeded random faces through the store (untimed, as bench/user_search.py fills it), and that many
people whose representatives are faces spread evenly over the collection (rows written straight
into the people tables, as grouping would leave them). Then one DeleteCollection is timed, with
the number of face ids its receipt names. Runs (``--label``) are merged into
bench/results/delete-collection.json and .md, with the machine and the load average around each run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from facetrust.models.fake import fake_engine
from facetrust.service import FaceService
from host import load_span, merge_run, write_table
from user_search import fill

RESULTS = Path(__file__).resolve().parent / "results"


def one(size: int, people: int, store: str | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, FaceService(Path(tmp) / "data", fake_engine(), store=store) as svc:
        fill(svc, size, 50, 4)
        row = svc.store.get_collection("c")
        assert row is not None
        with svc.store.transaction() as conn:
            keys = [
                int(k) for (k,) in conn.execute("SELECT id FROM faces WHERE collection_id = ? ORDER BY id", (row.id,))
            ]
            step = max(len(keys) // max(people, 1), 1)
            conn.executemany(
                "INSERT INTO people_clusters(collection_id, cluster_id, representative, cohesion, updated_at) "
                "VALUES (?, ?, ?, 0.5, 0)",
                [(row.id, f"person-{i}", keys[i * step]) for i in range(people)],
            )
        t0 = time.perf_counter()
        receipt = svc.delete_collection("c")
        seconds = time.perf_counter() - t0
    return {
        "faces": size,
        "people": people,
        "store": "postgresql" if store else "sqlite",
        "seconds": round(seconds, 2),
        "receipt_face_ids": len(receipt.face_ids),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["200000:0", "20000:5000", "200000:50000"])
    ap.add_argument("--store", help="a postgresql://… URL of an empty schema (default: SQLite)")
    ap.add_argument("--label", default="after")
    ap.add_argument("--out", type=Path, default=RESULTS / "delete-collection.json")
    args = ap.parse_args()

    def cases() -> dict[str, Any]:
        return {"cases": [one(*(int(x) for x in case.split(":")), args.store) for case in args.cases]}

    runs = merge_run(args.out, args.label, cases)
    header = ["run", "store", "faces", "people", "seconds", "face ids in the receipt", "load average before / after"]
    rows = [
        [
            label,
            c.get("store", "sqlite"),
            f"{c['faces']:,}",
            f"{c['people']:,}",
            c["seconds"],
            f"{c['receipt_face_ids']:,}",
            load_span(r),
        ]
        for label, r in runs.items()
        for c in r["cases"]
    ]
    write_table(args.out.with_suffix(".md"), "DeleteCollection at scale (bench/delete_collection.py)", header, rows)


if __name__ == "__main__":
    main()
