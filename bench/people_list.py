"""ListPeople of a collection grouped into many people: the wall time.

    nice -n 10 .venv/bin/python bench/people_list.py --label after
    PYTHONPATH=/tmp/facetrust-old/src nice -n 10 .venv/bin/python bench/people_list.py --label before

A temporary data directory (SQLite, the fake engine's 32-dimension templates) gets ``--faces``
seeded random faces through the store (untimed, as bench/user_search.py fills it) and ``--people``
people of equal size over them, written straight into the people tables as a grouping pass leaves
them (each with its first face as representative). Then ``FaceService.list_people`` (ListPeople)
runs ``--repeats`` times; the median seconds and the number of people are kept. Runs (``--label``)
are merged into bench/results/people-list.json and .md, with the machine and the load average.
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
from facetrust.models.fake import fake_engine
from facetrust.service import FaceService
from host import load_span, merge_run, write_table
from user_search import fill

RESULTS = Path(__file__).resolve().parent / "results"


def run(size: int, people: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, FaceService(Path(tmp) / "data", fake_engine()) as svc:
        fill(svc, size, 5, 4)
        row = svc.store.get_collection("c")
        assert row is not None
        per = size // people
        with svc.store.transaction() as conn:
            keys = [
                int(k) for (k,) in conn.execute("SELECT id FROM faces WHERE collection_id = ? ORDER BY id", (row.id,))
            ]
            conn.executemany(
                "INSERT INTO people_members(face_key, collection_id, cluster_id) VALUES (?, ?, ?)",
                [(k, row.id, f"person-{min(i // per, people - 1)}") for i, k in enumerate(keys)],
            )
            conn.executemany(
                "INSERT INTO people_clusters(collection_id, cluster_id, representative, cohesion, updated_at) "
                "VALUES (?, ?, ?, 0.5, 0)",
                [(row.id, f"person-{i}", keys[i * per]) for i in range(people)],
            )
            conn.execute("INSERT INTO people_settings(collection_id, threshold) VALUES (?, 90)", (row.id,))
        times, found = [], 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            page = svc.list_people("c")
            times.append(time.perf_counter() - t0)
            found = len(page.people)
    return {"faces": size, "people": people, "median_s": round(statistics.median(times), 3), "listed": found}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=100_000)
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--label", default="after")
    ap.add_argument("--out", type=Path, default=RESULTS / "people-list.json")
    args = ap.parse_args()
    runs = merge_run(args.out, args.label, lambda: run(args.faces, args.people, args.repeats))
    header = ["run", "faces", "people", "median s", "people listed", "load before / after"]
    rows = [
        [label, f"{r['faces']:,}", f"{r['people']:,}", r["median_s"], f"{r['listed']:,}", load_span(r)]
        for label, r in runs.items()
    ]
    write_table(args.out.with_suffix(".md"), "ListPeople (bench/people_list.py)", header, rows)


if __name__ == "__main__":
    main()
