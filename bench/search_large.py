"""Vector-index benchmark at millions of faces (10,000,000 by default): the ivf backend and its dial.

    nice -n 10 .venv/bin/python bench/search_large.py                  # 10M → bench/results/search-10m.json/.md
    nice -n 10 .venv/bin/python bench/search_large.py --size 1000000   # a development run (search-1m-ivf.*)

The same data as bench/search.py (its ``Data``: the LFW gallery embeddings, then synthetic faces
of the same mean and covariance; 1,000 held-out real queries with mates in the gallery and 1,000
synthetic ones), but streamed: the gallery is generated in chunks, each chunk scored exactly
against every query (the exact top 10, float32, kept as the truth) and added to the index, so the
process never holds the float32 gallery (5 GB at 10M) or an exact index beside the one measured.

One ivf index is built (its defaults unless ``--lists``/``--candidates``); then single-query
latency (wall and process CPU) and accuracy at the defaults, and a sweep of ``probes`` up to every
list (probes = lists scans every code, as the pq backend does, with float16 re-scoring), each with
recall@10 against exact, the top-1 agreement of real queries and above-threshold recall. Then
save, drop, load. Memory: ``memory_bytes()``, the RSS growth over the build and the peak RSS.
Results are written after each stage, so a run that dies keeps what it measured. Check ``uptime``:
the machine's load is recorded before and after each stage.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from facetrust.calibration import DEFAULT_THRESHOLD, default_calibration
from facetrust.index import create_index, load_index
from facetrust.index.ivf import DEFAULTS as IVF_DEFAULTS
from host import load_avg
from search import SEED, Data, K, accuracy, lat_summary, latencies, machine, rss_bytes

RESULTS = Path(__file__).resolve().parent / "results"
CHUNK = 50_000  # gallery vectors generated, scored against the queries and added at a time
TARGETS = {"p50_ms": 10.0, "recall_at_10": 0.99, "above_threshold_recall": 0.999, "build_s": 1200.0}
TARGETS["ram_bytes_per_face"] = 1024.0
LATENCY_QUERIES = 250  # of each kind, for the single-query latencies of each setting


def peak_rss() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def merge_top(keys: np.ndarray, scores: np.ndarray, new_keys: np.ndarray, new_scores: np.ndarray) -> None:
    """Fold a chunk's scores (queries × chunk) into the running exact top K, in place."""
    part = np.argpartition(-new_scores, K - 1, axis=1)[:, :K]
    all_s = np.hstack([scores, np.take_along_axis(new_scores, part, axis=1)])
    all_k = np.hstack([keys, new_keys[part]])
    order = np.argsort(-all_s, axis=1, kind="stable")[:, :K]
    scores[:] = np.take_along_axis(all_s, order, axis=1)
    keys[:] = np.take_along_axis(all_k, order, axis=1)


def build(data: Data, size: int, options: dict[str, Any], queries: dict[str, np.ndarray]) -> dict[str, Any]:
    """Stream the gallery: exact truth and the index, chunk by chunk; returns both and the timings."""
    index = create_index("ivf", queries["real"].shape[1], **options)
    truth = {
        n: (np.full((len(q), K), -1, np.int64), np.full((len(q), K), -np.inf, np.float32)) for n, q in queries.items()
    }
    sample = np.sort(np.random.default_rng(SEED + 2).choice(size, 5000, replace=False))
    kept = []
    rss0, add_s, add_cpu = rss_bytes(), 0.0, 0.0
    start = 0
    while start < size:
        chunk = data.gallery_real[: size - start] if start == 0 else data.synthetic(min(CHUNK, size - start))
        keys = np.arange(start, start + len(chunk), dtype=np.int64)
        for name, q in queries.items():
            merge_top(*truth[name], keys, q @ chunk.T)
        mine = (sample >= start) & (sample < start + len(chunk))
        kept.append(chunk[sample[mine] - start])
        c, t = time.process_time(), time.perf_counter()
        index.add(keys, chunk)
        add_s += time.perf_counter() - t
        add_cpu += time.process_time() - c
        start += len(chunk)
        if start % 1_000_000 < CHUNK:
            print(f"   {start:,} added, {add_s:.0f} s in add (load {load_avg()})", file=sys.stderr, flush=True)
    gc.collect()
    return {
        "index": index,
        "truth": truth,
        "sample": (sample, np.vstack(kept)),
        "row": {
            "build_s": round(add_s, 1),
            "build_cpu_s": round(add_cpu, 1),
            "memory_bytes_per_face": round(index.memory_bytes() / size, 1),
            "rss_bytes_per_face": round((rss_bytes() - rss0) / size, 1),
            "peak_rss_gb_after_build": round(peak_rss() / 2**30, 2),
        },
    }


def sweep(
    index: Any, queries: dict[str, np.ndarray], truth: dict[str, Any], threshold: float, probes: list[int]
) -> list[dict[str, Any]]:
    few = np.vstack([q[:LATENCY_QUERIES] for q in queries.values()])
    points = []
    for p in probes:
        index.probes = p
        point = {"probes": p, "load": load_avg(), **lat_summary(latencies(index, few))}
        point.update(accuracy(index, queries, truth, threshold))
        points.append(point)
        print(f"   probes {p}: {point}", file=sys.stderr, flush=True)
    return points


def run(size: int, options: dict[str, Any], out: Path) -> dict[str, Any]:
    data = Data(SEED)
    threshold = default_calibration("sface-2021dec:fb143eea0783+flip").score_for_similarity(DEFAULT_THRESHOLD)
    queries = {"real": data.real_queries, "synthetic": data.synth_queries}
    result: dict[str, Any] = {
        "machine": machine(),
        "size": size,
        "seed": SEED,
        "targets": TARGETS,
        "options": {**IVF_DEFAULTS, **options},
        "match_threshold_cosine": round(threshold, 4),
        "load_before": load_avg(),
    }
    print(f"== ivf at {size:,} faces (load {load_avg()})", file=sys.stderr, flush=True)
    built = build(data, size, options, queries)
    index, truth = built["index"], built["truth"]
    result["build"] = built["row"]
    result["load_after_build"] = load_avg()
    write(result, out)
    default_probes = index.probes
    sample, vectors = built["sample"]
    result["self_recall"] = round(float((index.search(vectors, 1).keys[:, 0] == sample).mean()), 5)
    lists = index.lists
    probes = sorted({lists // 4, lists // 2, lists, default_probes})
    result["sweep"] = sweep(index, queries, truth, threshold, probes)
    index.probes = default_probes
    write(result, out)
    with tempfile.TemporaryDirectory(prefix="facetrust-bench-") as tmp:
        path = Path(tmp) / "ivf.index"
        t = time.perf_counter()
        index.save(path)
        result["save_s"] = round(time.perf_counter() - t, 1)
        result["disk_bytes_per_face"] = round(sum(p.stat().st_size for p in Path(tmp).iterdir()) / size, 1)
        count = len(index)
        del index, built
        gc.collect()
        t = time.perf_counter()
        loaded = load_index(path)
        result["load_s"] = round(time.perf_counter() - t, 1)
        assert len(loaded) == count
    result["peak_rss_gb"] = round(peak_rss() / 2**30, 2)
    result["load_after"] = load_avg()
    write(result, out)
    return result


def render(r: dict[str, Any]) -> str:
    m, b = r["machine"], r["build"]
    lines = [
        f"# ivf at {r['size']:,} faces (bench/search_large.py)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, numpy {m['numpy']}, faiss {m['faiss']}, "
        f"{m['date']}. Seed {r['seed']}. Options: {r['options']}. "
        f"Match threshold cosine {r['match_threshold_cosine']}.",
        f"Targets: {r['targets']}.",
        "",
        f"Load average (1/5/15 min): before {r['load_before']}, after the build {r.get('load_after_build')}, "
        f"at the end {r.get('load_after', '—')}. The machine is shared: wall-clock times stretch with the load; "
        "CPU times count this process's threads only.",
        "",
        f"Build (index adds only; the gallery generation and exact truth excluded): {b['build_s']} s wall, "
        f"{b['build_cpu_s']} s CPU. Memory: {b['memory_bytes_per_face']} B/face by `memory_bytes()`, "
        f"{b['rss_bytes_per_face']} B/face RSS growth; "
        f"peak RSS {r.get('peak_rss_gb', b['peak_rss_gb_after_build'])} GB "
        "(the process, truth and sample included). "
        f"Self-recall {r.get('self_recall', '—')}. Save {r.get('save_s', '—')} s, load {r.get('load_s', '—')} s, "
        f"disk {r.get('disk_bytes_per_face', '—')} B/face.",
        "",
        "| probes (of lists) | p50 ms (CPU) | p99 ms | recall@10 (real / synthetic) | mate found "
        "| above-threshold recall (real / synthetic) | load |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in r.get("sweep", []):
        lines.append(
            f"| {p['probes']} / {r['options']['lists']} | {p['p50_ms']} ({p['cpu_p50_ms']}) | {p['p99_ms']} "
            f"| {p['recall_at_10']} ({p['recall_at_10_real']} / {p['recall_at_10_synthetic']}) "
            f"| {p['top1_agreement_real']} | {p['above_threshold_recall_real']} / "
            f"{p['above_threshold_recall_synthetic']} | {p['load']} |"
        )
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(render(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--lists", type=int)
    parser.add_argument("--candidates", type=int)
    parser.add_argument("--out", type=Path, help="result path without suffix (default: results/search-10m)")
    args = parser.parse_args()
    options = {k: v for k, v in (("lists", args.lists), ("candidates", args.candidates)) if v is not None}
    name = "search-10m" if args.size == 10_000_000 else f"search-{args.size}-ivf"
    print(render(run(args.size, options, args.out or RESULTS / name)))


if __name__ == "__main__":
    main()
