"""How fast this machine reads memory: the floor under any scan of 10,000,000 faces' codes.

    .venv/bin/python bench/membw.py    # writes bench/results/membw.json

A search that looks at every face's 32-byte code reads 320 MB at 10,000,000 faces. This script
reads a 320 MB array (summing it: one pass, nothing written) on one thread and split over two,
five times each, and reports the median time and rate, with the machine's load before and after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from host import machine_record, save_result

RESULTS = Path(__file__).resolve().parent / "results"
BYTES = 320_000_000  # 10M faces × 32-byte codes
REPEATS = 5


def timed_read(parts: list[np.ndarray], pool: ThreadPoolExecutor) -> float:
    start = time.perf_counter()
    list(pool.map(np.sum, parts))  # numpy's sum releases the GIL, so parts are read in parallel
    return time.perf_counter() - start


def main() -> None:
    # no options: --help says what the script does and writes, instead of running it
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    data = np.ones(BYTES // 8, dtype=np.int64)
    result = {"machine": machine_record(), "bytes": BYTES, "runs": {}}
    for threads in (1, 2):
        parts = np.array_split(data, threads)
        with ThreadPoolExecutor(threads) as pool:
            timed_read(parts, pool)  # warm the pages
            times = [timed_read(parts, pool) for _ in range(REPEATS)]
        median = statistics.median(times)
        result["runs"][str(threads)] = {
            "median_ms": round(median * 1000, 1),
            "gb_per_s": round(BYTES / median / 1e9, 2),
        }
    save_result(RESULTS / "membw.json", result)


if __name__ == "__main__":
    main()
