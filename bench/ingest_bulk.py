"""Writing pre-computed faces through the governed service: one image at a time vs batches.

    nice -n 5 .venv/bin/python bench/ingest_bulk.py                   # → results/ingest-bulk.json/.md
    nice -n 5 .venv/bin/python bench/ingest_bulk.py --faces 200000    # more faces in the batched run
    nice -n 5 .venv/bin/python bench/ingest_bulk.py --faces 10000000 --modes single,batch --out ingest-bulk-10m

What a bulk import of millions of faces costs after detection and embedding (done elsewhere,
e.g. on Ray workers): ``FaceService.index_prepared`` (one IndexFaces per image: a transaction,
an audit entry, a commit) against ``index_prepared_batch`` (one IndexFaces, transaction and
audit entry per batch of images, one multi-row insert). A fresh data directory each, with the
service's defaults as ``FaceService.open`` sets them: SQLite, templates sealed with the default
key, the auto index backend. One face per image (a face from the fake detector, re-used; the
embeddings are seeded random unit vectors: the write does not look at their values). Then the
first search after the import, which brings the collection's index up to date from the store
(decrypting every template), and the store's size on disk per face. The machine's load average
is recorded before and after each run: it is shared, so wall-clock rates stretch with the load.
Also the time until the import is searchable (write + first search) and the process's peak RSS
(a run's peak includes the runs before it: give ``--modes`` one bulk mode to measure its own).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from host import machine_record  # noqa: E402

RESULTS = HERE / "results"
SEED = 20261129


def open_service(root: Path) -> Any:
    from facetrust.config import Settings
    from facetrust.models.fake import fake_engine
    from facetrust.service import FaceService

    settings = Settings(data_dir=root, index_backend="auto", template_encryption=True)
    svc = FaceService.open(root, settings, engine=fake_engine())
    svc.create_collection("bulk")
    return svc


def images(svc: Any, count: int, offset: int) -> Iterator[Any]:
    """``count`` prepared one-face images with distinct hashes and random unit embeddings."""
    from facetrust.ingest.prepare import Job, prepare, sha256_of
    from facetrust.models.fake import face_png
    from facetrust.service.ingest import PreparedImage
    from facetrust.types import FaceEmbedding

    data = face_png((20, 20, 100, 1))
    template = prepare(svc.engine, Job(data, sha256_of(data), "AUTO", None))
    face, model = template.faces[0], template.embeddings[0].model
    rng = np.random.default_rng(SEED + offset)
    for start in range(0, count, 10_000):
        vectors = rng.standard_normal((min(10_000, count - start), svc.engine.recogniser.dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for i, v in enumerate(vectors):
            digest = hashlib.sha256(f"{offset}-{start + i}".encode()).hexdigest()
            yield PreparedImage(digest, (face,), (FaceEmbedding(v, model, face),))


def disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def run(mode: str, count: int, batch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="facetrust-bulk-") as tmp:
        root = Path(tmp)
        svc = open_service(root)
        row: dict[str, Any] = {"mode": mode, "faces": count, "batch": 1 if mode == "single" else batch}
        row["load_before"] = machine_record()["load_before"]
        stream = images(svc, count, 1 if mode == "single" else 0)
        c, t = time.process_time(), time.perf_counter()
        if mode == "batch":
            pending: list[tuple[Any, str | None]] = []
            for prepared in stream:
                pending.append((prepared, None))
                if len(pending) == batch:
                    svc.index_prepared_batch("bulk", pending)
                    pending = []
            if pending:
                svc.index_prepared_batch("bulk", pending)
        else:
            for prepared in stream:
                svc.index_prepared("bulk", prepared)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        row.update(write_s=round(wall, 1), write_cpu_s=round(cpu, 1), faces_per_s=round(count / wall))
        row["faces_per_cpu_s"] = round(count / cpu)
        t = time.perf_counter()
        probe = next(images(svc, 1, 2))
        svc.indexes.get(svc.store.get_collection("bulk")).search(probe.embeddings[0].vector[None], 10)
        row["first_search_s"] = round(time.perf_counter() - t, 1)
        row["searchable_s"] = round(row["write_s"] + row["first_search_s"], 1)  # ingested and searchable
        row["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        svc.close()
        row["store_bytes_per_face"] = round(disk_bytes(root) / count)
        row["load_after"] = machine_record()["load_before"]
    print(f"   {row}", file=sys.stderr, flush=True)
    return row


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Bulk writes through the governed service (bench/ingest_bulk.py)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {result['date']}. Defaults of FaceService.open: SQLite, "
        "templates sealed, auto index. One face per image; detection and embedding not included.",
        "",
        "| path | faces | images per IndexFaces | faces/s (wall) | faces per CPU s | first search s "
        "| write + first search s | peak RSS MB | store B/face | load before → after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        lines.append(
            f"| {r['mode']} | {r['faces']:,} | {r['batch']:,} | {r['faces_per_s']:,} | {r['faces_per_cpu_s']:,} "
            f"| {r['first_search_s']} | {r.get('searchable_s', '')} | {r.get('max_rss_mb', '')} "
            f"| {r['store_bytes_per_face']} | {r['load_before']} → {r['load_after']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=100_000, help="faces in the batched run")
    parser.add_argument("--modes", default="single,batch", help="runs, in order (single, batch)")
    parser.add_argument("--single", type=int, default=2_000, help="faces in the one-image-at-a-time run")
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--out", default="ingest-bulk", help="result name in bench/results (.json and .md)")
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": machine_record(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    modes = args.modes.split(",")
    unknown = set(modes) - {"single", "batch"}
    if unknown:
        parser.error(f"unknown mode(s) {sorted(unknown)}; use single, batch")
    result["runs"] = [run(m, args.single if m == "single" else args.faces, args.batch) for m in modes]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{args.out}.md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
