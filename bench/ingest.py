"""Bulk ingestion on LFW: ``facetrust index`` in this process vs ``index --ray`` on a local Ray.

Both run ``facetrust.ingest.ingest`` over the same LFW images into a fresh data directory
(same engine settings, flip augmentation as configured by default); they differ only in the
runner: ``LocalRunner`` (decode, detect, embed in this process) or ``RayRunner`` (the same in
``--workers`` Ray actors, one engine each, batches of ``--batch-size``), the writes staying
in this process. Runs are interleaved plain, Ray, plain, Ray… (``--rounds`` pairs) because
the machine is shared: each run records the load average before and after it. Ray's start
and its workers' model loading are timed once, apart from the steady-state runs. A single-
process profile then times each stage per image (read + hash, decode, detect, embed, governed
write) to feed the scaling model in docs/ingest.md.

Rerun (from the repository root; about 5 minutes on a busy 2-core machine)::

    nice -n 5 .venv/bin/python bench/ingest.py                  # 300 images, 2 rounds
    .venv/bin/python bench/ingest.py --render                   # rewrite the .md from the .json

Writes ``bench/results/ingest.json`` and ``bench/results/ingest.md``. The data root is
``$FACETRUST_DATA`` or ``../shared/data``; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from host import cpu_model, load_avg  # noqa: E402
from lfw_data import lfw_images, lfw_root  # noqa: E402

RESULTS = HERE / "results"


def _timed_run(paths: list[str], runner: Any | None) -> dict[str, Any]:
    from facetrust.engine import load_engine
    from facetrust.ingest import ingest
    from facetrust.service import FaceService

    with tempfile.TemporaryDirectory() as tmp, FaceService(Path(tmp), load_engine()) as svc:
        svc.create_collection("bench")
        before = load_avg()
        start = time.perf_counter()
        done = ingest(svc, "bench", paths, runner=runner)
        wall = time.perf_counter() - start
        faces = sum(len(o.result.indexed) for o in done if o.result is not None)
    return {
        "images": len(paths),
        "faces_indexed": faces,
        "wall_s": round(wall, 2),
        "images_per_s": round(len(paths) / wall, 2),
        "load_before": before,
        "load_after": load_avg(),
    }


def _profile(paths: list[str]) -> dict[str, float]:
    """Milliseconds per image for each stage, in this process, one image at a time."""
    from facetrust.engine import load_engine
    from facetrust.ingest.prepare import sha256_of
    from facetrust.service import FaceService
    from facetrust.service.ingest import PreparedImage, accepted_faces

    engine = load_engine()
    stages = dict.fromkeys(("read_hash", "decode", "detect", "embed", "write"), 0.0)
    with tempfile.TemporaryDirectory() as tmp, FaceService(Path(tmp), engine) as svc:
        svc.create_collection("bench")
        for path in paths:
            t0 = time.perf_counter()
            data = Path(path).read_bytes()
            sha = sha256_of(data)
            t1 = time.perf_counter()
            rgb = engine.load_image(data)
            t2 = time.perf_counter()
            faces = engine.detect(rgb)
            chosen = accepted_faces(faces, "AUTO", None)
            t3 = time.perf_counter()
            embeddings = engine.embed(rgb, chosen) if chosen else []
            t4 = time.perf_counter()
            svc.index_prepared("bench", PreparedImage(sha, tuple(faces), tuple(embeddings)))
            t5 = time.perf_counter()
            for name, span in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                stages[name] += span
    return {name: round(1000 * total / len(paths), 2) for name, total in stages.items()}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    from facetrust.engine import load_engine
    from facetrust.ingest import RayRunner

    root = lfw_root()
    every = lfw_images(root)
    paths = [str(root / "images" / rel) for rel in every[:: max(1, len(every) // args.n)][: args.n]]
    warm = [str(root / "images" / every[1])]
    _timed_run(warm, None)  # the plain engine loaded and warm
    start = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    with RayRunner(load_engine, workers=args.workers, batch_size=args.batch_size) as runner:
        _timed_run(warm * args.workers, runner)  # the workers built their engines
        startup = time.perf_counter() - start
        runs = []
        for round_ in range(args.rounds):
            for kind in ("plain", "ray"):
                print(f"round {round_ + 1}/{args.rounds}: {kind}", file=sys.stderr)
                runs.append({"kind": kind, "round": round_ + 1, **_timed_run(paths, runner if kind == "ray" else None)})
    ray.shutdown()
    print("profile", file=sys.stderr)
    profile = _profile(paths[: args.n_profile])
    ratios = [
        r["images_per_s"] / p["images_per_s"] for p, r in zip(runs[::2], runs[1::2])
    ]  # ray / plain within each round
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpu": cpu_model(), "python": platform.python_version(), "platform": platform.platform()},
        "command": " ".join(sys.argv),
        "images": args.n,
        "workers": args.workers,
        "batch_size": args.batch_size,
        "ray_startup_s": round(startup, 2),
        "runs": runs,
        "ray_over_plain": [round(x, 3) for x in ratios],
        "ray_over_plain_median": round(statistics.median(ratios), 3),
        "profile_ms_per_image": profile,
        "profile_images": args.n_profile,
    }


def render(res: dict[str, Any]) -> str:
    lines = [
        "# Bulk ingestion: plain `index` vs `index --ray` (local Ray)",
        "",
        "Generated by `bench/ingest.py` (its docstring says how to rerun it).",
        "",
        f"- Date: {res['date']}",
        f"- Machine: {res['machine']['cpu']}, 2 CPUs shared with other engineers' work (see the load averages), "
        f"Python {res['machine']['python']}, {res['machine']['platform']}",
        f"- Data: {res['images']} LFW images (every k-th of the sorted list), YuNet + SFace, default settings",
        f"- Ray: local, {res['workers']} actors (one engine each), batches of {res['batch_size']}; start and model "
        f"loading took {res['ray_startup_s']} s (once, not in the runs below)",
        f"- Command: `{res['command']}`",
        "",
        "| round | runner | images | faces | wall s | images/s | load before | load after |",
        "|---:|---|---:|---:|---:|---:|---|---|",
    ]
    for r in res["runs"]:
        lines.append(
            f"| {r['round']} | {r['kind']} | {r['images']} | {r['faces_indexed']} | {r['wall_s']} | "
            f"**{r['images_per_s']}** | {r['load_before']} | {r['load_after']} |"
        )
    ratios = ", ".join(f"{x:.2f}" for x in res["ray_over_plain"])
    lines += [
        "",
        f"Ray / plain images/s per round: {ratios}; median **{res['ray_over_plain_median']:.2f}** "
        "(≥ 0.85 means Ray's overhead is within 15 %).",
        "",
        f"Per-stage time in one process (ms per image, mean of {res['profile_images']} images):",
        "",
        "| stage | ms/image |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v} |" for k, v in res["profile_ms_per_image"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--n-profile", type=int, default=100)
    parser.add_argument("--render", action="store_true", help="rewrite the .md from the .json")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    if args.render:
        res = json.loads((RESULTS / "ingest.json").read_text())
    else:
        res = measure(args)
        (RESULTS / "ingest.json").write_text(json.dumps(res, indent=2) + "\n")
    (RESULTS / "ingest.md").write_text(render(res))
    print(render(res))


if __name__ == "__main__":
    main()
