"""What a bagged 1:1 normaliser costs a comparison (issue 11: the cost targets).

    nice -n 5 .venv/bin/python bench/normaliser_cost.py   # writes bench/results/normaliser-cost.{json,md}

Since December 3, 2026 each shipped normaliser holds five k-means fits (``ClusterNormaliser.fits``),
so a pair's shift reads five nearest regions instead of one. This times ``ClusterNormaliser.score``
on random unit vectors of each profile's width, for the shipped (bagged) file and for the one-fit
file it replaced (read from git at ``--before``), beside the time one face takes to embed in the
default engine (detection, alignment and the flip-averaged SFace pass on a 250 × 250 LFW image),
so the two can be set side by side. Medians of repeated timings; no threshold is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_data as L
from facetrust.clusternorm import ClusterNormaliser, shipped_name, shipped_normaliser
from facetrust.config import Settings
from facetrust.engine import FaceEngine
from host import machine_record, save_result

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent
MODELS = {"default": "sface-2021dec:fb143eea0783+flip", "accurate": "fused-sface-dlib:a5ff4225b9ac"}


def per_call_us(fn: Any, repeats: int = 7, number: int = 2000) -> float:
    """Median over ``repeats`` of the mean time of ``number`` calls, in microseconds."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter() - start) / number * 1e6)
    return statistics.median(runs)


def before(model: str, rev: str) -> ClusterNormaliser:
    path = f"src/facetrust/data/{shipped_name(model)}"
    text = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=REPO, check=True, capture_output=True, text=True)
    return ClusterNormaliser.from_json(text.stdout, origin=f"{rev}:{path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="264a3db", help="the commit whose one-fit files to time")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"machine": machine_record(), "before": args.before, "score_us": {}}
    for profile, model in MODELS.items():
        now = shipped_normaliser(model)
        assert now is not None
        for name, n in (("one fit (before)", before(model, args.before)), ("bagged (shipped)", now)):
            u, v = rng.standard_normal((2, n.centroids.shape[1])).astype(np.float32)
            u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
            out["score_us"][f"{profile}: {name}"] = {
                "regions": list(n.fit_sizes),
                "us": per_call_us(lambda n=n, u=u, v=v: n.score(u, v)),
            }
    engine = FaceEngine.load(Settings())
    image = next(iter(sorted((L.data_root() / "lfw").rglob("*.jpg"))))
    data = image.read_bytes()
    engine.embed(data)  # warm
    out["embed_ms"] = per_call_us(lambda: engine.embed(data), repeats=5, number=10) / 1000
    out["embed_image"] = image.name
    save_result(RESULTS / "normaliser-cost.json", out)
    (RESULTS / "normaliser-cost.md").write_text(render(out))


def render(out: dict[str, Any]) -> str:
    lines = [
        "# What a bagged 1:1 normaliser costs a comparison (bench/normaliser_cost.py)",
        "",
        f"Machine: {out['machine']}. `ClusterNormaliser.score` of one pair (median of 7 × 2,000 calls), "
        f"against the one-fit files of commit {out['before']}.",
        "",
        "| normaliser | regions | µs per pair |",
        "|---|---|---|",
    ]
    for name, e in out["score_us"].items():
        lines.append(f"| {name} | {' + '.join(map(str, e['regions']))} | {e['us']:.1f} |")
    lines += [
        "",
        f"One face embedded by the default engine ({out['embed_image']}, detection to flip-averaged embedding): "
        f"{out['embed_ms']:.1f} ms; a 1:1 comparison embeds two.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
