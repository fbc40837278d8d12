"""The store's change log (``changes``) over a run of enrolments and erasures: its rows and bytes,
per face, before and after the retention sweep prunes it (store/changelog.py).

    nice -n 10 .venv/bin/python bench/change_log.py --faces 20000
    nice -n 10 .venv/bin/python bench/change_log.py --faces 20000 --store postgresql://…
    PYTHONPATH=/tmp/facetrust-main/src nice -n 10 .venv/bin/python bench/change_log.py --faces 20000

A temporary data directory (the fake engine's 32-dimension templates, SQLite or the PostgreSQL
``--store`` names) gets ``--faces`` random templates through the bulk path (``index_prepared_batch``,
500 images a call) on day 0, and all of them are erased (``delete_faces``, 1,000 a call) on day 1,
the retention sweep running at the end of each day. Then the clock moves past ``change_log_days``
(7) and the sweep runs each day until nothing more is pruned. Measured after the erasures and at the
end: the table's rows, and its bytes with its index (SQLite: the pages of both, ``dbstat``;
PostgreSQL: ``pg_total_relation_size``, and the same after ``VACUUM FULL changes``, as a
``facetrust store vacuum`` would leave it); and each pruning sweep's time. A facetrust without
pruning (``before``) runs the same and keeps every row.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from facetrust.config import Settings
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.service.ingest import PreparedImage
from facetrust.types import FaceEmbedding
from host import load_avg

DAY = 86400.0
SEED = 20240612


def size(service: FaceService, postgres: bool, full: bool = False) -> dict[str, int]:
    """The change log's rows and bytes (table and index)."""
    conn = service.store.connection()
    rows = int(conn.execute("SELECT count(*) FROM changes").fetchone()[0])
    if not postgres:
        found = conn.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name IN ('changes', 'changes_by_collection')"
        ).fetchone()
        return {"rows": rows, "bytes": int(found[0] or 0)}
    if full:
        conn.execute("VACUUM FULL changes")
    return {"rows": rows, "bytes": int(conn.execute("SELECT pg_total_relation_size('changes')").fetchone()[0])}


def run(faces: int, store: str | None) -> dict[str, Any]:
    now = [1_750_000_000.0]
    with tempfile.TemporaryDirectory() as folder:
        engine = fake_engine(Settings(flip_augment=False, face_tail_stats="deferred"))
        service = FaceService(Path(folder), engine, index_backend="exact", store=store, clock=lambda: now[0])
        postgres = store is not None
        try:
            service.create_collection("c")
            face = engine.detect(engine.load_image(face_png((20, 20, 100, 1))))[0]
            vectors = np.random.default_rng(SEED).normal(size=(faces, 32)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            ids: list[str] = []
            for start in range(0, faces, 500):
                batch = [
                    (
                        PreparedImage(
                            hashlib.sha256(str(i).encode()).hexdigest(),
                            (face,),
                            (FaceEmbedding(vectors[i], engine.model_id, face),),
                        ),
                        f"p{i}",
                    )
                    for i in range(start, min(start + 500, faces))
                ]
                ids += [r.indexed[0].stored.face_id for r in service.index_prepared_batch("c", batch)]
            service.sweep_retention()
            now[0] += DAY
            for start in range(0, len(ids), 1000):
                service.delete_faces("c", ids[start : start + 1000])
            service.sweep_retention()
            erased = size(service, postgres)
            sweeps: list[float] = []
            now[0] += 7 * DAY
            while True:
                before = size(service, postgres)["rows"]
                t0 = time.perf_counter()
                service.sweep_retention()
                sweeps.append(time.perf_counter() - t0)
                now[0] += DAY
                if size(service, postgres)["rows"] == before:
                    break
            end = size(service, postgres)
            result = {"faces": faces, "store": "postgresql" if postgres else "sqlite", "after_erasure": erased}
            result.update({"after_pruning": end, "sweep_s": [round(s, 3) for s in sweeps]})
            if postgres:
                result["after_vacuum_full"] = size(service, postgres, full=True)
            result["per_face"] = {"rows": erased["rows"] / faces, "bytes": round(erased["bytes"] / faces, 1)}
            return result
        finally:
            service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=20_000)
    parser.add_argument("--store", default=None, help="a postgresql://… URL (default: SQLite)")
    args = parser.parse_args()
    load = load_avg()
    result = run(args.faces, args.store)
    result["load_avg"] = [load, load_avg()]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
