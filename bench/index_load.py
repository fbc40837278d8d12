"""Save and load times of a pq and an ivf index at 1,000,000 faces: does a load re-encode?

    nice -n 5 .venv/bin/python bench/index_load.py --label after
    PYTHONPATH=/tmp/facetrust-main/src nice -n 5 .venv/bin/python bench/index_load.py --label before

Each backend (its defaults, shards = cores) gets ``--size`` seeded random unit vectors of 128
dimensions (encoding costs the same whatever the distribution). Then ``save``, and ``load_index``
of the file, timed, and the loaded index checked to answer 200 queries exactly as the saved one.
Where the file holds the shards' codes (this version), it is also loaded once more without them,
as a file written by the previous version is: that load re-encodes every row. Then 1 % of the
faces are removed (too few to compact: the shards keep them, marked) and the index saved and
loaded again, timed: this version encodes a shard holding removed rows afresh at save, so that
no code of a removed face is written.
``--label`` names the run (``before``: run with the previous version's sources on PYTHONPATH);
runs are merged into bench/results/index-load.json and .md. The load average is recorded
around each step: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from facetrust.index import create_index, load_index
from host import load_avg, machine_record

RESULTS = Path(__file__).resolve().parent / "results"
DIM = 128
CHUNK = 100_000
NEW_ARRAYS = ("rows", "codes", "code_sizes")


def unit_vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def build(backend: str, size: int) -> Any:
    index = create_index(backend, DIM)
    for start in range(0, size, CHUNK):
        stop = min(size, start + CHUNK)
        index.add(np.arange(start, stop), unit_vectors(stop - start, seed=start))
    return index


def timed_load(path: Path, index: Any, queries: np.ndarray | None) -> dict[str, Any]:
    t, load = time.perf_counter(), load_avg()
    loaded = load_index(path)
    seconds = time.perf_counter() - t
    if queries is None:
        return {"load_s": round(seconds, 1), "same_answers": None, "load_avg": load}
    before, after = index.search(queries, 10), loaded.search(queries, 10)
    same = bool(np.array_equal(before.keys, after.keys) and np.array_equal(before.scores, after.scores))
    return {"load_s": round(seconds, 1), "same_answers": same, "load_avg": load}


def strip_codes(path: Path) -> bool:
    """Rewrite the saved file as the previous version wrote it (no codes); False if it has none."""
    manifest = json.loads(path.read_text())
    data = path.parent / manifest["data"]
    with np.load(data) as z:
        if "codes" not in z.files:
            return False
        arrays = {name: z[name] for name in z.files if name not in NEW_ARRAYS}
    with open(data, "wb") as fh:
        np.savez(fh, **arrays)
    manifest["data_bytes"] = data.stat().st_size
    path.write_text(json.dumps(manifest))
    return True


def run(backend: str, size: int) -> dict[str, Any]:
    print(f"== {backend} at {size:,} (load {load_avg()})", file=sys.stderr, flush=True)
    t = time.perf_counter()
    index = build(backend, size)
    result: dict[str, Any] = {"faces": len(index), "build_s": round(time.perf_counter() - t, 1)}
    queries = unit_vectors(200, seed=-1 % 2**32)
    with tempfile.TemporaryDirectory(dir=Path.home()) as folder:
        path = Path(folder) / "faces.index"
        t, load = time.perf_counter(), load_avg()
        index.save(path)
        result.update(save_s=round(time.perf_counter() - t, 1), save_load_avg=load)
        result["file_bytes"] = sum(p.stat().st_size for p in Path(folder).iterdir())
        result["load"] = timed_load(path, index, queries)
        if strip_codes(path):
            result["load_without_codes"] = timed_load(path, index, queries)
        index.remove(np.arange(0, size, 100))
        t, load = time.perf_counter(), load_avg()
        index.save(path)
        result.update(save_after_removals_s=round(time.perf_counter() - t, 1), save_after_removals_load_avg=load)
        result["load_after_removals"] = timed_load(path, index, None)
    print(f"   {result}", file=sys.stderr, flush=True)
    return result


def render(results: dict[str, Any]) -> str:
    lines = [
        "# Saving and loading a pq and an ivf index (bench/index_load.py)",
        "",
        "Random unit vectors (128-d); each backend's defaults, one shard a core. Then 1 % removed, saved and",
        "loaded again (`after removals`; answers not compared: a save writes live rows only).",
        "`before`: the previous version's sources (a load re-encodes every row); `after`: this version",
        "(a load reads each shard's saved codes back); `after, file without codes`: this version loading",
        "a file as the previous version wrote it. Same answers: 200 queries, keys and scores identical.",
        "The machine is shared (2 cores): wall-clock times stretch with the load average (1/5/15 min).",
        "",
        "| run | backend | faces | save s | file MB | load s | same answers | load average at load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, run_ in sorted(results.items()):
        for backend, r in run_["backends"].items():
            rows = [("", r["save_s"], r["load"])]
            if "load_without_codes" in r:
                rows.append((", file without codes", "—", r["load_without_codes"]))
            rows.append((", after removals", r["save_after_removals_s"], r["load_after_removals"]))
            for suffix, save_s, load in rows:
                same = "—" if load["same_answers"] is None else load["same_answers"]
                lines.append(
                    f"| {label}{suffix} | {backend} | {r['faces']:,} | {save_s} | {r['file_bytes'] / 1e6:.0f} | "
                    f"{load['load_s']} | {same} | {load['load_avg']} |"
                )
    lines += ["", "Machines: " + "; ".join(f"{label}: {r['machine']}" for label, r in sorted(results.items())), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--label", required=True)
    parser.add_argument("--backends", default="pq,ivf")
    parser.add_argument("--out", type=Path, default=RESULTS / "index-load")
    args = parser.parse_args()
    machine = machine_record()
    backends = {b: run(b, args.size) for b in args.backends.split(",")}
    machine["load_after"] = load_avg()
    json_path = args.out.with_suffix(".json")
    results = json.loads(json_path.read_text()) if json_path.exists() else {}
    results[args.label] = {"size": args.size, "machine": machine, "backends": backends}
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(render(results))


if __name__ == "__main__":
    main()
