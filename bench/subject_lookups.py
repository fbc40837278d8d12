"""Lookups by subject at scale: the faces of an ExternalImageId, and a subject's consent.

    nice -n 10 .venv/bin/python bench/subject_lookups.py --label after
    PYTHONPATH=/tmp/facetrust-old/src nice -n 10 .venv/bin/python bench/subject_lookups.py --label before

A temporary data directory (SQLite, the fake engine's 32-dimension templates) gets ``--faces``
seeded random faces through the store, three to each ExternalImageId (``Person-N``), and
``--consents`` consent records (``subject-N``), written straight into the tables (untimed). Then
``records.faces_by_external_id`` (what recording a consent, revoking one and erasing a subject
read) and ``records.get_consent`` (what indexing a face under a purpose that requires consent
reads) each run ``--repeats`` times with another spelling of a stored subject; the median
milliseconds are kept. Runs (``--label``) are merged into bench/results/subject-lookups.json and .md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from facetrust.models.fake import fake_engine
from facetrust.service import FaceService
from facetrust.store import records
from host import load_span, merge_run, write_table
from synthetic import new_faces

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 10_000


def run(n_faces: int, n_consents: int, repeats: int) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp, FaceService(Path(tmp) / "data", fake_engine()) as svc:
        svc.create_collection("c")
        row = svc.store.get_collection("c")
        assert row is not None
        for start in range(0, n_faces, BATCH):
            faces = new_faces(rng, start, min(BATCH, n_faces - start), external="Person", per_subject=3)
            with svc.store.transaction() as conn:
                svc.store.insert_faces(conn, row.id, faces)
        with svc.store.transaction() as conn:
            conn.executemany(
                "INSERT INTO consents(subject, basis, granted_at, expires_at, evidence_hash, recorded_at) "
                "VALUES (?, 'contract', 0, NULL, ?, 0)",
                [(f"subject-{i}", "0" * 64) for i in range(n_consents)],
            )
        conn = svc.store.connection()
        out: dict[str, Any] = {"faces": n_faces, "consents": n_consents}
        for name, call, check in (
            ("faces_by_external_id", lambda: records.faces_by_external_id(conn, "PERSON-77"), 3),
            ("get_consent", lambda: records.get_consent(conn, "Subject-77"), 1),
        ):
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                found = call()
                times.append(time.perf_counter() - t0)
            got = sum(len(v) for v in found.values()) if isinstance(found, dict) else int(found is not None)
            assert got == check, (name, got)
            out[f"{name}_ms"] = round(1000 * statistics.median(times), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=200_000)
    ap.add_argument("--consents", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--label", default="after")
    ap.add_argument("--out", type=Path, default=RESULTS / "subject-lookups.json")
    args = ap.parse_args()
    runs = merge_run(args.out, args.label, lambda: run(args.faces, args.consents, args.repeats))
    header = [
        "run",
        "faces",
        "consents",
        "faces of a subject: median ms",
        "a subject's consent: median ms",
        "load before / after",
    ]
    rows = [
        [
            label,
            f"{r['faces']:,}",
            f"{r['consents']:,}",
            r["faces_by_external_id_ms"],
            r["get_consent_ms"],
            load_span(r),
        ]
        for label, r in runs.items()
    ]
    write_table(args.out.with_suffix(".md"), "Lookups by subject (bench/subject_lookups.py)", header, rows)


if __name__ == "__main__":
    main()
