"""What per-probe scoring costs a search at 100,000 faces (service.scoring, docs/fairness.md).

    nice -n 5 .venv/bin/python bench/probe_cost.py     # writes bench/results/probe_cost.json

A search used to ask the index for 16 neighbours (more when more candidates were wanted);
with per-probe scoring it asks for at least 51 (the probe's top 50 plus itself) and fits the
probe's scale from them. Measured per backend (exact, pq) on a 100,000-face gallery: the
13,233 LFW embeddings of the audit cache (flip, as `facetrust audit` made them) topped up with
synthetic faces drawn from a normal with their mean and covariance (as bench/search.py), and
1,000 real LFW queries: p50/p99 latency of `search(q, 16)`, of `search(q, 51)`, and of
`search(q, 51)` plus `probe_scale`.

Per-face statistics (``service.tails``), through a real ``FaceService`` over the same 100,000
faces (rows written straight into the store, then the statistics computed by a deferred
catch-up, timed): IndexFaces of real LFW images (detection, embedding, write) with statistics
computed at enrolment against the same with ``face_tail_stats = "deferred"``, alternately; the
same for ``index_prepared`` (embeddings made beforehand, the bulk path); and ``SearchFaces`` at
threshold 80 of stored real faces with ``symmetric_scores`` on against off, interleaved.
Records the machine and the load average before and after.

    nice -n 5 .venv/bin/python bench/probe_cost.py [--part index|service|background]

``--part background``: IndexFaces with ``face_tail_stats = "background"`` (the statistics computed
by a ``LeasedTailKeeper`` ticking in a thread, as a server does) against none computed, pq at
100,000 faces, in alternating blocks (``background_costs``); ``--out`` then names another file
whose ``tail_stats_background`` goes into probe_cost.json.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
import uuid
from dataclasses import replace
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
from facetrust.service import FaceService, tails
from facetrust.service.ingest import PreparedImage
from facetrust.service.scoring import TAIL_K, probe_scale
from facetrust.store.sqlite import NewFace
from facetrust.types import FaceEmbedding
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


def p50(values: list[float]) -> float:
    return round(float(np.median(values)) * 1000, 3)


def fill(service: FaceService, gallery: np.ndarray) -> list[str]:
    """Collection "g" holding the gallery (rows written straight into the store); the face ids."""
    service.create_collection("g")
    row = service.store.get_collection("g")
    assert row is not None
    ids = [str(uuid.uuid4()) for _ in range(len(gallery))]
    for start in range(0, len(gallery), 10_000):
        new = [
            NewFace(ids[i], ids[i], None, (0.1, 0.1, 0.5, 0.5), 0.9, 0.5, 0.5, (0, 0, 0), gallery[i].tobytes())
            for i in range(start, min(start + 10_000, len(gallery)))
        ]
        with service.store.transaction() as conn:
            service.store.insert_faces(conn, row.id, new)
    return ids


def enrol_costs(services: dict[str, FaceService], images: list[Path], engine: FaceEngine) -> dict[str, Any]:
    """IndexFaces and index_prepared p50 per service, alternating image by image."""
    took: dict[str, list[float]] = {f"{kind}_{name}": [] for kind in ("index_faces", "prepared") for name in services}
    for n, path in enumerate(images):
        for name, service in services.items():
            start = time.perf_counter()
            service.index_faces("g", path, external_image_id=f"{name}{n}")
            took[f"index_faces_{name}"].append(time.perf_counter() - start)
        rgb = engine.load_image(path)
        faces = engine.detect(rgb)[:1]
        embs = tuple(FaceEmbedding(e.vector, e.model, e.face) for e in engine.embed(rgb, faces))
        for name, service in services.items():
            prepared = PreparedImage(hashlib.sha256(f"{name}{n}".encode()).hexdigest(), tuple(faces), embs)
            start = time.perf_counter()
            service.index_prepared("g", prepared, max_faces=1)
            took[f"prepared_{name}"].append(time.perf_counter() - start)
    out: dict[str, Any] = {key: {"p50_ms": p50(v), "n": len(v)} for key, v in took.items()}
    for kind in ("index_faces", "prepared"):
        base, new = out[f"{kind}_deferred"]["p50_ms"], out[f"{kind}_enrolment"]["p50_ms"]
        out[f"{kind}_change_pct"] = round(100 * (new - base) / base, 1)
    return out


def search_costs(services: dict[str, FaceService], face_ids: list[str]) -> dict[str, Any]:
    """SearchFaces p50/p99 per service (threshold 80), interleaved query by query."""
    took: dict[str, list[float]] = {name: [] for name in services}
    for face_id in face_ids:
        for name, service in services.items():
            start = time.perf_counter()
            service.search_faces("g", face_id, threshold=80.0, max_faces=100)
            took[name].append(time.perf_counter() - start)
    out: dict[str, Any] = {
        name: {"p50_ms": p50(v), "p99_ms": round(float(np.quantile(v, 0.99)) * 1000, 3)} for name, v in took.items()
    }
    base, new = out["probe_only"]["p50_ms"], out["symmetric"]["p50_ms"]
    out["p50_change_pct"] = round(100 * (new - base) / base, 1)
    return out


def service_part(settings: Settings, gallery: np.ndarray, real: int, images: list[Path]) -> dict[str, Any]:
    """Per-face statistics' cost at enrolment and in search, per backend, through FaceService."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"

        def open_with(backend: str, **changes: Any) -> FaceService:
            return FaceService(data, FaceEngine.load(replace(settings, **changes)), index_backend=backend)

        loader = open_with("auto", face_tail_stats="deferred")  # pq at 100,000 faces, as a deployment
        start = time.perf_counter()
        ids = fill(loader, gallery)
        out["fill_s"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        done = tails.catch_up(loader.ctx, "g")
        took = time.perf_counter() - start
        out["catch_up"] = {"faces": done.computed, "s": round(took, 1), "faces_per_s": round(done.computed / took)}
        loader.close()
        print("catch-up", out["catch_up"], file=sys.stderr)
        rng = np.random.default_rng(1)
        probes = [ids[i] for i in rng.choice(real, size=200, replace=False)]
        for backend in ("exact", "pq"):
            search = {
                "probe_only": open_with(backend),
                "symmetric": open_with(backend, symmetric_scores=True),
            }
            search_costs(search, probes[:10])  # warm up: builds the indexes
            out[backend] = {"search": search_costs(search, probes)}
            enrol = {"enrolment": search["probe_only"], "deferred": open_with(backend, face_tail_stats="deferred")}
            enrol_costs(enrol, images[:5], enrol["enrolment"].engine)  # warm up
            out[backend]["enrol"] = enrol_costs(enrol, images[5:], enrol["enrolment"].engine)
            print(backend, out[backend], file=sys.stderr)
            for service in {*search.values(), *enrol.values()}:
                service.close()
    return out


def background_costs(
    services: dict[str, FaceService], images: list[Path], tick_s: float, block: int = 5
) -> dict[str, Any]:
    """IndexFaces p50 with ``face_tail_stats = "background"`` (a ``LeasedTailKeeper`` ticking every
    ``tick_s`` in a thread, as a server's background step does) against none computed (deferred,
    keeper stopped), in alternating blocks of ``block`` images (a keeper running during a block
    slows that block's enrolments only); then how long the last faces waited for their statistics."""
    import threading

    from facetrust.service.tailkeeper import LeasedTailKeeper

    took: dict[str, list[float]] = {name: [] for name in services}
    keeper = LeasedTailKeeper(services["background"].ctx, lease_s=30, holder="bench")
    computed = [0]

    def run(stop: threading.Event) -> None:
        while not stop.wait(tick_s):
            computed[0] += sum(c.computed for c in keeper.tick() or [])

    for start in range(0, len(images), block):
        for name, service in services.items():
            stop = threading.Event()
            worker = threading.Thread(target=run, args=(stop,)) if name == "background" else None
            if worker is not None:
                worker.start()
            for n, path in enumerate(images[start : start + block], start):
                begin = time.perf_counter()
                service.index_faces("g", path, external_image_id=f"{name}{n}")
                took[name].append(time.perf_counter() - begin)
            stop.set()
            if worker is not None:
                worker.join()
    begin = time.perf_counter()
    while (done := keeper.tick()) and any(c.computed for c in done):
        computed[0] += sum(c.computed for c in done)
    out: dict[str, Any] = {f"index_faces_{k}": {"p50_ms": p50(v), "n": len(v)} for k, v in took.items()}
    base, new = out["index_faces_deferred"]["p50_ms"], out["index_faces_background"]["p50_ms"]
    out["index_faces_change_pct"] = round(100 * (new - base) / base, 1)
    out["keeper"] = {
        "tick_s": tick_s,
        "faces_computed": computed[0],
        "left_after_run_s": round(time.perf_counter() - begin, 2),
    }
    keeper.stop()
    return out


def background_part(settings: Settings, gallery: np.ndarray, images: list[Path]) -> dict[str, Any]:
    """Background statistics' cost at enrolment (pq, auto at 100,000 faces), through FaceService."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"

        def open_with(**changes: Any) -> FaceService:
            return FaceService(data, FaceEngine.load(replace(settings, **changes)), index_backend="auto")

        services = {
            "background": open_with(face_tail_stats="background"),
            "deferred": open_with(face_tail_stats="deferred"),
        }
        fill(services["deferred"], gallery)
        start = time.perf_counter()
        done = tails.catch_up(services["deferred"].ctx, "g")
        took = time.perf_counter() - start
        out["catch_up"] = {"faces": done.computed, "s": round(took, 1), "faces_per_s": round(done.computed / took)}
        print("catch-up", out["catch_up"], file=sys.stderr)
        background_costs(services, images[:4], tick_s=1.0, block=2)  # warm up
        out["pq"] = background_costs(services, images[4:], tick_s=1.0)
        print("pq", out["pq"], file=sys.stderr)
        for service in services.values():
            service.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("index", "service", "background", "all"), default="all")
    parser.add_argument("--images", type=int, default=45, help="LFW images enrolled per variant (5 warm up)")
    parser.add_argument("--size", type=int, default=SIZE, help="gallery faces (a smaller one: a quick check)")
    parser.add_argument("--out", type=Path, default=RESULTS / "probe_cost.json")
    args = parser.parse_args()
    settings = Settings.load()
    engine = FaceEngine.load(settings)
    cal = default_calibration(engine.model_id)
    spec = load_lfw(L.data_root() / "lfw")
    emb = embed_spec(engine, spec, cache_dir=default_cache_dir(), workers=1)
    real = emb.vectors[emb.status == FACE]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(real))
    queries, kept = real[order[:QUERIES]], real[order[QUERIES:]]
    mean, cov = kept.mean(axis=0), np.cov(kept, rowvar=False)
    synthetic = unit(rng.multivariate_normal(mean, cov, size=args.size - len(kept), method="cholesky"))
    gallery = np.vstack([kept, synthetic])
    out: dict[str, Any] = {"machine": machine_record()}
    if args.part in ("service", "all"):
        paths = [Path(spec.images[i].path) for i in np.flatnonzero(emb.status == FACE)[order[: args.images]]]
        out["tail_stats"] = service_part(settings, gallery, len(kept), paths)
    if args.part == "background":
        paths = [Path(spec.images[i].path) for i in np.flatnonzero(emb.status == FACE)[order[: args.images]]]
        out["tail_stats_background"] = background_part(settings, gallery, paths)
    for backend in ("exact", "pq") if args.part in ("index", "all") else ():
        index = create_index(backend, gallery.shape[1], expected_size=len(gallery))
        start = time.perf_counter()
        index.add(np.arange(len(gallery)), gallery)
        built = time.perf_counter() - start

        def scaled(q: np.ndarray, index: Any = index) -> None:
            hits = index.search(q, TAIL_K + 1)
            probe_scale(cal, hits.scores[0].tolist(), len(gallery))

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
    save_result(args.out, out)


if __name__ == "__main__":
    main()
