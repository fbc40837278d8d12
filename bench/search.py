"""Vector-index benchmark: exact (numpy), pq (faiss) and hnsw (usearch) at 100,000 and 1,000,000 faces.

    .venv/bin/python bench/search.py                    # writes bench/results/search.json and .md
    .venv/bin/python bench/search.py --sizes 100000     # one size only (still writes both files)
    .venv/bin/python bench/search.py --hnsw-sizes 100000 1000000   # hnsw at 1M too (~45 min build)
    .venv/bin/python bench/search.py --sweep            # also the 100k hnsw build-parameter grid (slow)

Check ``uptime`` first: the numbers are per-query latencies and build times on a small machine,
so another busy process moves them. The script records the load average before and after.

Data. The gallery holds the 13,233 LFW embeddings (``flip=True``, from the bench cache, see
lfw_data.py) minus 1,000 held-out real queries, topped up with synthetic faces: a multivariate
normal with the mean and covariance of the real embeddings, L2-normalised. The script checks
that synthetic-to-synthetic scores resemble real impostor scores (mean, spread, tail quantiles).
Queries: the 1,000 held-out real images (people who have other images in the gallery) and
1,000 fresh synthetic vectors; every search is a single-query top-10 search.

hnsw is measured at 100,000 faces only by default: at 1,000,000 its build took 2,458 s on 2 cores
(bench/results/search-hnsw-1m.md keeps that run).

Metrics per backend and size: build time; p50/p99 latency; recall@10 against exact search;
for real queries, whether the exact best match (the mate, usually) is found and how many of
the exact top 10 above the default match threshold (Similarity 80) are found; RAM per face from
``memory_bytes()`` and from the process RSS growth; disk per face of the saved index;
"self-recall": the share of 5,000 indexed vectors that find themselves first (a vector an index
cannot reach can never be matched); and the recall/latency dial of each approximate backend
(pq: candidates re-scored; hnsw: expansion_search). Seeded; embeddings never leave the cache.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_data as L
from facetrust.calibration import DEFAULT_THRESHOLD, default_calibration
from facetrust.index import AUTO_THRESHOLD, create_index, load_index
from facetrust.index.hnsw import DEFAULTS
from facetrust.index.pq import DEFAULTS as PQ_DEFAULTS
from host import cpu_model, load_avg

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 20261126
K = 10
N_REAL_QUERIES = 1000
N_SYNTH_QUERIES = 1000
TARGETS = {"p50_ms": 5.0, "recall_at_10": 0.99, "build_s": 120.0, "ram_bytes_per_face": 1536}
EF_SWEEP = (64, 128, 256, 384, 512, 768, 1024)
CANDIDATE_SWEEP = (100, 300, 1000, 3000)


def machine() -> dict[str, Any]:
    cpu = cpu_model()
    import faiss
    import usearch

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "usearch": usearch.__version__,
        "faiss": faiss.__version__,
        "date": dt.date.today().isoformat(),
    }


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# -- data ------------------------------------------------------------------------------------------


class Data:
    """Real embeddings split into gallery and held-out queries, and a synthetic generator."""

    def __init__(self, seed: int) -> None:
        root = L.lfw_root()
        paths = L.lfw_images(root)
        real = L.embed_lfw(root, paths).vectors(flip=True)
        ids = np.array([L.identity_of(p) for p in paths])
        rng = np.random.default_rng(seed)
        _, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
        has_mates = np.flatnonzero(counts[inverse] >= 2)
        held = np.sort(rng.choice(has_mates, N_REAL_QUERIES, replace=False))
        keep = np.setdiff1d(np.arange(len(real)), held)
        self.real, self.ids = real, ids
        self.gallery_real, self.gallery_ids = real[keep], ids[keep]
        self.real_queries, self.query_ids = real[held], ids[held]
        self.mean = real.mean(axis=0, dtype=np.float64)
        self.cov = np.cov(real, rowvar=False)
        self.rng = rng
        self.synth_queries = self.synthetic(N_SYNTH_QUERIES)
        self._pool = np.empty((0, real.shape[1]), np.float32)

    def synthetic(self, n: int) -> np.ndarray:
        return unit(self.rng.multivariate_normal(self.mean, self.cov, size=n, method="cholesky"))

    def gallery(self, size: int) -> np.ndarray:
        """The first ``size`` gallery vectors: the real ones, then synthetic (a growing, shared pool)."""
        need = size - len(self.gallery_real)
        if need > len(self._pool):
            self._pool = np.vstack([self._pool, self.synthetic(need - len(self._pool))])
        return np.vstack([self.gallery_real, self._pool[:need]]) if need > 0 else self.gallery_real[:size]

    def distribution_check(self) -> dict[str, Any]:
        """Real impostor scores (different LFW people) against synthetic-to-synthetic scores."""
        rng = np.random.default_rng(SEED + 1)
        a, b = rng.integers(0, len(self.real), 3_000_000), rng.integers(0, len(self.real), 3_000_000)
        impostor = self.ids[a] != self.ids[b]
        real = np.einsum("ij,ij->i", self.real[a[impostor]], self.real[b[impostor]])
        s = self.synthetic(4000)
        synth = (s[:2000] @ s[2000:].T).ravel()
        ev = np.linalg.eigvalsh(self.cov)
        qs = (0.5, 0.99, 0.999, 0.9999, 0.99999)

        def stats(x: np.ndarray) -> dict[str, Any]:
            return {
                "pairs": len(x),
                "mean": round(float(x.mean()), 4),
                "sd": round(float(x.std()), 4),
                "quantiles": {str(q): round(float(np.quantile(x, q)), 4) for q in qs},
            }

        return {
            "real_impostor": stats(real),
            "synthetic": stats(synth),
            "participation_ratio": round(float(ev.sum() ** 2 / (ev**2).sum()), 1),
        }


# -- measurements ----------------------------------------------------------------------------------


def latencies(index: Any, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock and process-CPU milliseconds of each single-query top-10 search.

    CPU time counts every thread of this process (BLAS workers included) and none of the time
    spent waiting for a core, so on a busy machine it is the steadier of the two.
    """
    index.search(queries[0], K)  # warm
    wall, cpu = np.empty(len(queries)), np.empty(len(queries))
    for i in range(len(queries)):
        c, t = time.process_time(), time.perf_counter()
        index.search(queries[i], K)
        wall[i], cpu[i] = time.perf_counter() - t, time.process_time() - c
    return wall * 1e3, cpu * 1e3


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found.tolist(), truth.tolist(), strict=True)]))


def above_threshold_recall(found: np.ndarray, truth_keys: np.ndarray, truth_scores: np.ndarray, t: float) -> float:
    wanted = found_n = 0
    for f, tk, ts in zip(found.tolist(), truth_keys, truth_scores, strict=True):
        want = set(tk[ts >= t].tolist())
        wanted += len(want)
        found_n += len(want & set(f))
    return found_n / wanted if wanted else float("nan")


def lat_summary(ms: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    wall, cpu = ms
    return {
        "p50_ms": round(float(np.median(wall)), 3),
        "p99_ms": round(float(np.percentile(wall, 99)), 3),
        "cpu_p50_ms": round(float(np.median(cpu)), 3),
    }


def measure(
    backend: str, options: dict[str, Any], gallery: np.ndarray, queries: dict[str, np.ndarray], tmp: Path
) -> tuple[Any, dict[str, Any]]:
    """Build, time searches, save and reload one index; returns it and its numbers."""
    gc.collect()
    rss0 = rss_bytes()
    index = create_index(backend, gallery.shape[1], **options)
    c, t = time.process_time(), time.perf_counter()
    index.add(np.arange(len(gallery), dtype=np.int64), gallery)
    build, build_cpu = time.perf_counter() - t, time.process_time() - c
    gc.collect()
    rss = rss_bytes() - rss0
    path = tmp / f"{backend}.index"
    t = time.perf_counter()
    index.save(path)
    save_s = time.perf_counter() - t
    disk = sum(p.stat().st_size for p in tmp.glob(f"{backend}.index*"))
    t = time.perf_counter()
    reloaded = load_index(path)
    load_s = time.perf_counter() - t
    assert len(reloaded) == len(index)
    del reloaded
    for p in tmp.glob(f"{backend}.index*"):
        p.unlink()
    n = len(gallery)
    row: dict[str, Any] = {
        "backend": backend,
        "options": options,
        "build_s": round(build, 2),
        "build_cpu_s": round(build_cpu, 2),
        "memory_bytes_per_face": round(index.memory_bytes() / n, 1),
        "rss_bytes_per_face": round(rss / n, 1),
        "disk_bytes_per_face": round(disk / n, 1),
        "save_s": round(save_s, 2),
        "load_s": round(load_s, 2),
    }
    all_q = np.vstack(list(queries.values()))
    row["latency"] = lat_summary(latencies(index, all_q))
    return index, row


def accuracy(index: Any, queries: dict[str, np.ndarray], truth: dict[str, Any], threshold: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, q in queries.items():
        hits = index.search(q, K)
        tk, ts = truth[name]
        out[f"recall_at_10_{name}"] = round(recall(hits.keys, tk), 4)
        out[f"top1_agreement_{name}"] = round(float((hits.keys[:, 0] == tk[:, 0]).mean()), 4)
        out[f"above_threshold_recall_{name}"] = round(above_threshold_recall(hits.keys, tk, ts, threshold), 4)
        out[f"queries_{name}"] = len(q)
    out["recall_at_10"] = round(
        float(np.mean([out[f"recall_at_10_{name}"] for name in queries])), 4
    )  # equal numbers of each kind
    return out


def self_recall(index: Any, gallery: np.ndarray, rng: np.random.Generator, n: int = 5000) -> float:
    sample = np.sort(rng.choice(len(gallery), min(n, len(gallery)), replace=False))
    hits = index.search(gallery[sample], 1)
    return round(float((hits.keys[:, 0] == sample).mean()), 5)


def sweep(
    index: Any,
    setting: str,
    values: tuple[int, ...],
    queries: dict[str, np.ndarray],
    truth: dict[str, Any],
    threshold: float,
    default: int,
) -> list[dict[str, Any]]:
    """Recall and latency of an approximate index at each value of its search-time dial."""
    points = []
    for value in values:
        setattr(index, setting, value)
        point = {setting: value, **lat_summary(latencies(index, np.vstack(list(queries.values()))))}
        point.update(accuracy(index, queries, truth, threshold))
        points.append(point)
        print(
            f"   {index.name} {setting}={value}: recall {point['recall_at_10']} p50 {point['p50_ms']} ms",
            file=sys.stderr,
        )
    setattr(index, setting, default)
    return points


def run_size(data: Data, size: int, threshold: float, tmp: Path, with_hnsw: bool) -> dict[str, Any]:
    print(f"== {size:,} faces (load {load_avg()})", file=sys.stderr)
    gallery = data.gallery(size)
    queries = {"real": data.real_queries, "synthetic": data.synth_queries}
    result: dict[str, Any] = {"size": size, "load_before": load_avg()}

    exact, erow = measure("exact", {}, gallery, queries, tmp)
    print(f"   exact p50 {erow['latency']['p50_ms']} ms", file=sys.stderr)
    truth = {}
    for name, q in queries.items():
        hits = exact.search(q, K)
        truth[name] = (hits.keys, hits.scores)
    erow.update(accuracy(exact, queries, truth, threshold))
    del exact
    gc.collect()
    rows = [erow]

    pq, prow = measure("pq", {}, gallery, queries, tmp)
    print(f"   pq built in {prow['build_s']} s, p50 {prow['latency']['p50_ms']} ms", file=sys.stderr)
    prow.update(accuracy(pq, queries, truth, threshold))
    prow["self_recall"] = self_recall(pq, gallery, np.random.default_rng(SEED + 2))
    prow["sweep"] = sweep(pq, "candidates", CANDIDATE_SWEEP, queries, truth, threshold, PQ_DEFAULTS["candidates"])
    rows.append(prow)
    del pq
    gc.collect()

    if with_hnsw:
        hnsw, hrow = measure("hnsw", {}, gallery, queries, tmp)
        print(f"   hnsw built in {hrow['build_s']} s, p50 {hrow['latency']['p50_ms']} ms", file=sys.stderr)
        hrow.update(accuracy(hnsw, queries, truth, threshold))
        hrow["self_recall"] = self_recall(hnsw, gallery, np.random.default_rng(SEED + 2))
        hrow["relinked"] = hnsw.relinked
        hrow["sweep"] = sweep(
            hnsw, "expansion_search", EF_SWEEP, queries, truth, threshold, DEFAULTS["expansion_search"]
        )
        rows.append(hrow)
        del hnsw
        gc.collect()
    result["backends"] = rows
    result["load_after"] = load_avg()
    return result


def exact_latency_curve(data: Data, sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """Exact search p50 by size: where it passes 5 ms sets AUTO_THRESHOLD."""
    out = []
    q = np.vstack([data.real_queries[:250], data.synth_queries[:250]])
    for size in sizes:
        index = create_index("exact", q.shape[1])
        index.add(np.arange(size), data.gallery(size))
        out.append({"size": size, **lat_summary(latencies(index, q))})
        print(f"   exact {size:,}: {out[-1]}", file=sys.stderr)
    f16 = create_index("exact", q.shape[1], dtype="f16")
    f16.add(np.arange(100_000), data.gallery(100_000))
    out.append({"size": 100_000, "dtype": "f16", **lat_summary(latencies(f16, q[:100]))})
    return out


def build_sweep(data: Data, size: int, threshold: float) -> list[dict[str, Any]]:
    """HNSW build parameters at ``size``: build time, memory, recall and latency at several ef."""
    gallery = data.gallery(size)
    queries = {"real": data.real_queries, "synthetic": data.synth_queries}
    exact = create_index("exact", gallery.shape[1])
    exact.add(np.arange(size), gallery)
    truth = {name: (lambda h: (h.keys, h.scores))(exact.search(q, K)) for name, q in queries.items()}
    rows = []
    grid = [
        {"dtype": "f16", "connectivity": 16, "expansion_add": 64},
        {"dtype": "f16", "connectivity": 24, "expansion_add": 64},
        {"dtype": "f16", "connectivity": 32, "expansion_add": 32},
        {"dtype": "f16", "connectivity": 32, "expansion_add": 64},
        {"dtype": "f16", "connectivity": 32, "expansion_add": 128},
        {"dtype": "i8", "connectivity": 32, "expansion_add": 64},
        {"dtype": "f32", "connectivity": 32, "expansion_add": 64},
    ]
    for params in grid:
        index = create_index("hnsw", gallery.shape[1], **params)
        t = time.perf_counter()
        index.add(np.arange(size), gallery)
        row: dict[str, Any] = {
            **params,
            "build_s": round(time.perf_counter() - t, 1),
            "memory_bytes_per_face": round(index.memory_bytes() / size),
        }
        for ef in (128, 256, 512):
            index.expansion_search = ef
            acc = accuracy(index, queries, truth, threshold)
            row[f"ef{ef}"] = {"recall_at_10": acc["recall_at_10"], **lat_summary(latencies(index, data.synth_queries))}
        rows.append(row)
        print(f"   sweep {row}", file=sys.stderr)
        del index
    return rows


# -- report ----------------------------------------------------------------------------------------


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    d = result["distribution"]
    lines = [
        "# Vector index benchmark (bench/search.py)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, numpy {m['numpy']}, "
        f"faiss {m['faiss']}, usearch {m['usearch']}, {m['date']}. Seed {result['seed']}.",
        f"pq parameters: {result['pq_defaults']}; hnsw parameters: {result['hnsw_defaults']}; "
        f"auto threshold: {result['auto_threshold']:,} faces (exact below, pq from it on).",
        "",
        "Targets at 1,000,000 faces: p50 ≤ 5 ms single-query top-10, recall@10 ≥ 0.99 against exact,",
        "build ≤ 120 s, RAM ≤ 1.5 KB per face.",
        "",
        "Wall-clock numbers depend on what else the machine runs (see the load averages below); CPU",
        "numbers count this process's CPU time only (all its threads), so they are steadier.",
        "",
        "| faces | backend | build s (CPU s) | p50 ms (CPU) | p99 ms | recall@10 (real / synthetic) "
        "| mate found (top-1 = exact) | above-threshold recall (real / synthetic) | self-recall "
        "| RAM B/face (estimate / RSS) | disk B/face |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in result["sizes"]:
        for row in size["backends"]:
            lat = row["latency"]
            cells = [
                f"{size['size']:,}",
                row["backend"],
                f"{row['build_s']} ({row['build_cpu_s']})",
                f"{lat['p50_ms']} ({lat['cpu_p50_ms']})",
                str(lat["p99_ms"]),
                f"{row['recall_at_10']} ({row['recall_at_10_real']} / {row['recall_at_10_synthetic']})",
                str(row["top1_agreement_real"]),
                f"{row['above_threshold_recall_real']} / {row['above_threshold_recall_synthetic']}",
                str(row.get("self_recall", "—")),
                f"{row['memory_bytes_per_face']:.0f} / {row['rss_bytes_per_face']:.0f}",
                f"{row['disk_bytes_per_face']:.0f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Load average (1/5/15 min) before → after each size: "
        + "; ".join(f"{s['size']:,}: {s['load_before']} → {s['load_after']}" for s in result["sizes"]),
        "",
        "## Approximate backends: recall against latency",
        "",
        "pq: `candidates` re-scored exactly per query; hnsw: `expansion_search`. Both can be changed on a",
        "built index.",
        "",
        "| faces | backend | setting | p50 ms (CPU) | p99 ms | recall@10 real | recall@10 synthetic | mate found |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in result["sizes"]:
        for row in size["backends"]:
            for p in row.get("sweep", []):
                setting = "candidates" if "candidates" in p else "expansion_search"
                lines.append(
                    f"| {size['size']:,} | {row['backend']} | {setting}={p[setting]} | {p['p50_ms']} "
                    f"({p['cpu_p50_ms']}) | {p['p99_ms']} | {p['recall_at_10_real']} | {p['recall_at_10_synthetic']} "
                    f"| {p['top1_agreement_real']} |"
                )
    lines += ["", "## exact: latency by size (sets the auto threshold)", ""]
    lines += ["| faces | dtype | p50 ms | CPU p50 ms | p99 ms |", "|---|---|---|---|---|"]
    for p in result["exact_curve"]:
        lines.append(f"| {p['size']:,} | {p.get('dtype', 'f32')} | {p['p50_ms']} | {p['cpu_p50_ms']} | {p['p99_ms']} |")
    q = d["real_impostor"]["quantiles"], d["synthetic"]["quantiles"]
    lines += [
        "",
        "## Synthetic faces against real impostors",
        "",
        f"Covariance participation ratio {d['participation_ratio']} of 128 dimensions (nearly isotropic).",
        "",
        "| scores | pairs | mean | sd | " + " | ".join(f"q{k}" for k in q[0]) + " |",
        "|---|---|---|---|" + "---|" * len(q[0]),
    ]
    for name in ("real_impostor", "synthetic"):
        s = d[name]
        lines.append(
            f"| {name.replace('_', ' ')} | {s['pairs']:,} | {s['mean']} | {s['sd']} | "
            + " | ".join(str(v) for v in s["quantiles"].values())
            + " |"
        )
    if result.get("build_sweep"):
        lines += [
            "",
            f"## hnsw build parameters at {result['build_sweep_size']:,} faces",
            "",
            "| dtype | M | ef_add | build s | B/face | recall@10 / p50 ms at ef 128 | at ef 256 | at ef 512 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in result["build_sweep"]:
            cells = " | ".join(f"{r[f'ef{ef}']['recall_at_10']} / {r[f'ef{ef}']['p50_ms']}" for ef in (128, 256, 512))
            lines.append(
                f"| {r['dtype']} | {r['connectivity']} | {r['expansion_add']} | {r['build_s']} "
                f"| {r['memory_bytes_per_face']} | {cells} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--sweep", action="store_true", help="also the hnsw build-parameter grid at 100k")
    parser.add_argument(
        "--hnsw-sizes", type=int, nargs="*", default=[100_000], help="sizes at which hnsw is measured too"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--curve",
        type=int,
        nargs="*",
        default=[10_000, 25_000, 50_000, 100_000, 200_000],
        help="sizes of the exact-search latency curve",
    )
    args = parser.parse_args()
    data = Data(SEED)
    calibration = default_calibration("sface-2021dec:fb143eea0783+flip")
    threshold = calibration.score_for_similarity(DEFAULT_THRESHOLD)
    result: dict[str, Any] = {
        "machine": machine(),
        "seed": SEED,
        "targets": TARGETS,
        "hnsw_defaults": DEFAULTS,
        "pq_defaults": PQ_DEFAULTS,
        "auto_threshold": AUTO_THRESHOLD,
        "match_threshold_cosine": round(threshold, 4),
        "distribution": data.distribution_check(),
        "exact_curve": exact_latency_curve(data, tuple(args.curve)),
    }
    result["sizes"] = []
    with tempfile.TemporaryDirectory(prefix="facetrust-bench-") as tmp:
        for size in args.sizes:
            result["sizes"].append(run_size(data, size, threshold, Path(tmp), size in args.hnsw_sizes))
            write(result, args.out)  # after each size, so a long run that dies keeps what it measured
    if args.sweep:
        result["build_sweep_size"] = 100_000
        result["build_sweep"] = build_sweep(data, 100_000, threshold)
    write(result, args.out)
    print(render(result))


def write(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "search.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "search.md").write_text(render(result))


if __name__ == "__main__":
    main()
