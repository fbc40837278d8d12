"""What one tick of the background statistics keeper costs at 100,000 faces after 10 new faces
(service.tailkeeper, docs/fairness.md "Per-probe scores in 1:N search").

    nice -n 5 .venv/bin/python bench/keeper_tick.py     # writes bench/results/keeper_tick.json

A collection of 100,000 faces (synthetic unit vectors of the default engine's 128 dimensions,
rows written straight into the store) whose faces all have statistics (synthetic rows of 50
scores and neighbours written straight into ``face_tails``; computing real ones takes ten
minutes here, bench/results/probe_cost.json), on the index a deployment gets at that size
(``auto``: pq). The synthetic scores are high (0.90 to 0.95), so no new face enters an old
face's row: each measured tick then does the same computing (10 faces' kNN and rows) and the
times differ by what the tick reads. ``face_tail_refs`` stays empty (no tick here reads it).
Then, alternately, ``--rounds`` times:

* **follow** (this code): 10 faces added, then one tick of a keeper that follows the change log
  (it reads the entries after its position and computes the faces they name);
* **reconcile**: 10 faces added, then one tick of a keeper taking the lease over, which
  reconciles: ``pending_collections`` (a join of every face with its statistics) and a
  ``catch_up`` of each collection it names. That is exactly what every tick after any change did
  before the keeper followed the log (commit cf8772c), and what it still does on takeover.

Both compute the same 10 faces (one batched kNN, the same offers); the difference is the scan.
The index catches up with the new faces before each tick, outside the time, as a server's
background step does. Also the tick with nothing new (which skipped the scan before too).
Records the machine and the load average.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.service import FaceService
from facetrust.service.scoring import TAIL_K
from facetrust.service.tailkeeper import LeasedTailKeeper
from facetrust.store.sqlite import NewFace
from host import machine_record, save_result

RESULTS = Path(__file__).resolve().parent / "results"
SIZE = 100_000
NEW = 10


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim))
    out: np.ndarray = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return out


def add_faces(service: FaceService, vectors: np.ndarray) -> list[int]:
    """Faces written straight into collection "g" (with their change-log entries); their keys."""
    row = service.store.get_collection("g")
    assert row is not None
    keys: list[int] = []
    for start in range(0, len(vectors), 10_000):
        new = []
        for v in vectors[start : start + 10_000]:
            face_id = str(uuid.uuid4())
            new.append(NewFace(face_id, face_id, None, (0.1, 0.1, 0.5, 0.5), 0.9, 0.5, 0.5, (0, 0, 0), v.tobytes()))
        with service.store.transaction() as conn:
            keys += service.store.insert_faces(conn, row.id, new)
    return keys


def synthetic_statistics(service: FaceService, keys: list[int], rng: np.random.Generator) -> None:
    """A current row of ``TAIL_K`` scores (high: none is beaten by a new face) and neighbours for each face."""
    row = service.store.get_collection("g")
    assert row is not None
    upto, stored = max(keys), np.array(keys, dtype="<i8")
    for start in range(0, len(keys), 10_000):
        rows = []
        for key in keys[start : start + 10_000]:
            scores = np.sort(rng.uniform(0.90, 0.95, TAIL_K))[::-1].astype("<f2")
            near = stored[rng.integers(0, len(stored), TAIL_K)]
            rows.append((key, row.id, float(scores[-1]), upto, scores.tobytes(), near.tobytes()))
        with service.store.transaction() as conn:
            conn.executemany(
                "INSERT INTO face_tails(face_key, collection_id, stale, entry_score, upto, scores, neighbours) "
                "VALUES (?, ?, 0, ?, ?, ?, ?)",
                rows,
            )


def timed_tick(keeper: LeasedTailKeeper) -> tuple[float, int]:
    """One tick's seconds and faces computed, after the index caught up (a server's background
    step refreshes the indexes just before the keeper's tick)."""
    keeper.service.indexes.refresh()
    start = time.perf_counter()
    done = keeper.tick() or []
    return time.perf_counter() - start, sum(c.computed for c in done)


def ms(values: list[float]) -> dict[str, float]:
    arr = np.array(values) * 1000
    return {"p50_ms": round(float(np.median(arr)), 1), "min_ms": round(float(arr.min()), 1), "n": len(values)}


def rounds(service: FaceService, count: int, rng: np.random.Generator) -> dict[str, Any]:
    """Alternate a following keeper's tick and a reconciling takeover's after ``NEW`` new faces each."""
    dim = service.engine.recogniser.dim
    follow = LeasedTailKeeper(service.ctx, lease_s=3600, holder="follow")
    took: dict[str, list[float]] = {"follow": [], "reconcile": [], "follow_nothing_new": []}
    for n in range(count):
        timed_tick(follow)  # (re)takes the lease: reconciles, then follows from the log's end
        took["follow_nothing_new"].append(timed_tick(follow)[0])
        add_faces(service, unit(rng, NEW, dim))
        spent, computed = timed_tick(follow)
        assert computed == NEW, computed
        took["follow"].append(spent)
        follow.stop()
        add_faces(service, unit(rng, NEW, dim))
        takeover = LeasedTailKeeper(service.ctx, lease_s=3600, holder=f"takeover-{n}")
        spent, computed = timed_tick(takeover)
        assert computed == NEW, computed
        took["reconcile"].append(spent)
        takeover.stop()
        print(n, {k: round(v[-1] * 1000, 1) for k, v in took.items()}, file=sys.stderr)
    out: dict[str, Any] = {name: ms(values) for name, values in took.items()}
    out["reconcile_over_follow"] = round(out["reconcile"]["p50_ms"] / out["follow"]["p50_ms"], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=SIZE, help="gallery faces (a smaller one: a quick check)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS / "keeper_tick.json")
    args = parser.parse_args()
    out: dict[str, Any] = {"machine": machine_record(), "size": args.size, "new_faces": NEW}
    engine = FaceEngine.load(Settings.load().replace(face_tail_stats="background"))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        with FaceService(Path(tmp) / "data", engine, index_backend="auto") as service:
            service.create_collection("g")
            start = time.perf_counter()
            keys = add_faces(service, unit(rng, args.size, engine.recogniser.dim))
            synthetic_statistics(service, keys, rng)
            out["fill_s"] = round(time.perf_counter() - start, 1)
            row = service.store.get_collection("g")
            assert row is not None
            start = time.perf_counter()
            service.indexes.get(row).ensure()  # built once, as a server has it open
            out["index_build_s"] = round(time.perf_counter() - start, 1)
            out["ticks"] = rounds(service, args.rounds, rng)
    save_result(args.out, out)


if __name__ == "__main__":
    main()
