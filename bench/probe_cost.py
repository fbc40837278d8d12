"""What per-probe scoring costs a search at 100,000 faces (service.scoring, docs/fairness.md).

    nice -n 5 .venv/bin/python bench/probe_cost.py     # writes bench/results/probe_cost.json

A search used to ask the index for 16 neighbours (more when more candidates were wanted);
with per-probe scoring it asks for at least 51 (the probe's top 50 plus itself) and fits the
probe's scale from them. Measured per backend (exact, pq) on a 100,000-face gallery: the
13,233 LFW embeddings of the audit cache (flip, as `facetrust audit` made them) topped up with
synthetic faces drawn from a normal with their mean and covariance (as bench/search.py), and
1,000 real LFW queries: p50/p99 latency of `search(q, 16)`, of `search(q, 51)`, and of
`search(q, 51)` plus `probe_scale`. Enrolment is unchanged (no statistics are stored), so it
is not measured here. Records the machine and the load average before and after.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_data as L
from facetrust.calibration import default_calibration
from facetrust.config import Settings, default_cache_dir
from facetrust.engine import FaceEngine
from facetrust.fairness.datasets import load_lfw
from facetrust.fairness.embedding import FACE
from facetrust.fairness.runner import embed_spec
from facetrust.index import create_index
from facetrust.service.scoring import TAIL_K, probe_scale
from host import machine_record, save_result

RESULTS = Path(__file__).resolve().parent / "results"
SIZE = 100_000
QUERIES = 1000


def unit(v: np.ndarray) -> np.ndarray:
    out: np.ndarray = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return out


def timed(variants: dict[str, Any], queries: np.ndarray) -> dict[str, dict[str, float]]:
    """p50/p99 milliseconds of each variant, interleaved query by query (so load swings hit all alike)."""
    took: dict[str, list[float]] = {name: [] for name in variants}
    for q in queries:
        for name, fn in variants.items():
            start = time.perf_counter()
            fn(q[None, :])
            took[name].append(time.perf_counter() - start)
    out = {}
    for name, values in took.items():
        ms = np.array(values) * 1000
        out[name] = {"p50_ms": round(float(np.median(ms)), 3), "p99_ms": round(float(np.quantile(ms, 0.99)), 3)}
    return out


def main() -> None:
    engine = FaceEngine.load(Settings.load())
    cal = default_calibration(engine.model_id)
    spec = load_lfw(L.data_root() / "lfw")
    emb = embed_spec(engine, spec, cache_dir=default_cache_dir(), workers=1)
    real = emb.vectors[emb.status == FACE]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(real))
    queries, kept = real[order[:QUERIES]], real[order[QUERIES:]]
    mean, cov = kept.mean(axis=0), np.cov(kept, rowvar=False)
    synthetic = unit(rng.multivariate_normal(mean, cov, size=SIZE - len(kept), method="cholesky"))
    gallery = np.vstack([kept, synthetic])
    out: dict[str, Any] = {"machine": machine_record()}
    for backend in ("exact", "pq"):
        index = create_index(backend, gallery.shape[1], expected_size=SIZE)
        start = time.perf_counter()
        index.add(np.arange(SIZE), gallery)
        built = time.perf_counter() - start

        def scaled(q: np.ndarray, index: Any = index) -> None:
            hits = index.search(q, TAIL_K + 1)
            probe_scale(cal, hits.scores[0].tolist(), SIZE)

        variants = {
            "search_k16": lambda q, index=index: index.search(q, 16),
            "search_k51": lambda q, index=index: index.search(q, TAIL_K + 1),
            "search_k51_and_scale": scaled,
        }
        timed(variants, queries[:50])  # warm up
        out[backend] = {"build_s": round(built, 1), **timed(variants, queries)}
        base, new = out[backend]["search_k16"]["p50_ms"], out[backend]["search_k51_and_scale"]["p50_ms"]
        out[backend]["p50_change_pct"] = round(100 * (new - base) / base, 1)
        print(backend, out[backend], file=sys.stderr)
        del index
    save_result(RESULTS / "probe_cost.json", out)


if __name__ == "__main__":
    main()
