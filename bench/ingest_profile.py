"""Where a bulk-ingested face's CPU goes: cProfile of ``index_prepared_batch`` (bench/ingest_bulk.py's run).

    nice -n 5 .venv/bin/python bench/ingest_profile.py --faces 200000   # → results/ingest-bulk-profile.txt

The same stream as bench/ingest_bulk.py (one face per image, sealed templates, SQLite, batches
of 5,000), written under cProfile; then the first search (the index built or caught up). Prints
the functions with the most own time, in µs per face, and the time inside each part of the
write (own time plus callees), written to results/ingest-bulk-profile.txt with the load average.
cProfile roughly doubles the cost of Python-level calls: read the shares, not the totals.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from host import machine_record  # noqa: E402
from ingest_bulk import RESULTS, images, open_service  # noqa: E402

#: Parts of the write, by the function whose cumulative time they are.
PARTS = (
    ("index_prepared_batch (whole write)", "ingest.py", "index_prepared_batch"),
    ("  _prepare: checks, NewFace rows", "ingest.py", "_prepare"),
    ("    new_face (uuid4, tobytes)", "faces.py", "new_face"),
    ("  insert_faces (faces + changes rows)", "store/faces.py", "insert_faces"),
    ("    sealing (AES-GCM per template)", "sealing.py", "seal"),
    ("  record_ingested_many (resume rows)", "store/ingested.py", "record_ingested_many"),
    ("  inserted_face (answer rows)", "service/types.py", "inserted_face"),
    ("  audit entry commit", "recorder.py", "commit"),
    ("  store.transaction commit + anchor", "sqlite.py", "_anchor"),
    ("  after_change (live index step)", "tails.py", "after_change"),
    ("  index step after commit", "indexes.py", "add_committed"),
    ("first search: ensure (build/catch up)", "indexes.py", "ensure"),
    ("  embeddings read + open (decrypt)", "store/faces.py", "embeddings"),
    ("  index add (pq encode)", "pq.py", "add"),
)


def _cumulative(stats: pstats.Stats, file_part: str, name: str) -> float:
    total = 0.0
    for (filename, _, func), (_, _, _, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        if func == name and filename.endswith(file_part):
            total += cum
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    args = parser.parse_args()
    machine = machine_record()
    with tempfile.TemporaryDirectory(prefix="facetrust-profile-") as tmp:
        svc = open_service(Path(tmp))
        stream = list(images(svc, args.faces, 0))  # made before profiling: not part of the write
        probe = next(images(svc, 1, 2)).embeddings[0].vector[None]
        profile = cProfile.Profile()
        t = time.perf_counter()
        profile.enable()
        for start in range(0, len(stream), args.batch):
            svc.index_prepared_batch("bulk", [(p, None) for p in stream[start : start + args.batch]])
        svc.indexes.get(svc.store.get_collection("bulk")).search(probe, 10)
        profile.disable()
        wall = time.perf_counter() - t
        svc.close()
    stats = pstats.Stats(profile)
    per_face = 1e6 / args.faces
    lines = [
        f"cProfile of {args.faces:,} faces in batches of {args.batch:,} (bench/ingest_profile.py), "
        f"{machine['cpu']}, {machine['cores']} cores, load before {machine['load_before']}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; wall under the profiler {wall:.1f} s",
        "",
        "part (cumulative, µs per face)",
    ]
    for label, file_part, name in PARTS:
        lines.append(f"  {label:<44} {_cumulative(stats, file_part, name) * per_face:8.1f}")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(25)
    lines += ["", "own time, top 25 (seconds for the whole run):", out.getvalue()]
    text = "\n".join(lines)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest-bulk-profile.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
