"""The SQL of a bulk write alone, per table, and what secondary indexes, id order and page cache cost.

    nice -n 5 .venv/bin/python bench/ingest_sql.py 200000              # every variant
    nice -n 5 .venv/bin/python bench/ingest_sql.py 1000000 as-is seq+cache

The inserts ``index_prepared_batch`` makes per batch of 5,000 one-face images (faces,
changes, and ingested_images by the store's own statements) and the commit, on the real schema
(store/schema.py) with the store's pragmas (WAL, synchronous=FULL, foreign keys), timed in CPU
seconds per face. Variants: the schema as it is; without the faces' secondary indexes (external
id, user, expiry); without ingested_images' index on image_id; with time-ordered face and image ids instead of random
UUIDs; with a 256 MiB page cache; and the last two together. Rows are made before the clock
starts; the template is 160 random bytes (a sealed 128-d template's size).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from facetrust.store.ingested import record  # noqa: E402
from facetrust.store.schema import DDL  # noqa: E402
from host import machine_record  # noqa: E402

BATCH = 5000
FACES_SQL = (
    "INSERT INTO faces(id, face_id, collection_id, image_id, external_image_id, box_left, box_top, box_width, "
    "box_height, confidence, brightness, sharpness, roll, yaw, pitch, embedding, created_at, expires_at) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
VARIANTS: dict[str, dict[str, object]] = {
    "as-is": {},
    "no-face-indexes": {"drop": ("faces_by_external", "faces_by_user", "faces_by_expiry")},
    "no-image-index": {"drop": ("ingested_by_image",)},
    "seq-ids": {"seq": True},
    "cache": {"cache": 262144},
    "seq+cache": {"seq": True, "cache": 262144},
}


def _rows(first: int, seq: bool) -> tuple[list[tuple[object, ...]], list[tuple[str, str]]]:
    blob = os.urandom(160)
    faces: list[tuple[object, ...]] = []
    ingested: list[tuple[str, str]] = []
    for key in range(first, first + BATCH):
        if seq:  # time order: the key in the top bits, random below
            face_id = str(uuid.UUID(int=(key << 64) | int.from_bytes(os.urandom(8), "big")))
            image_id = str(uuid.UUID(int=(key << 64) | (1 << 63) | int.from_bytes(os.urandom(7), "big")))
        else:
            face_id, image_id = str(uuid.uuid4()), str(uuid.uuid4())
        faces.append((key, face_id, 1, image_id, None, 0.1, 0.1, 0.1, 0.1, 0.9, 0.5, 0.5, 0, 0, 0, blob, 0, 1e12))
        ingested.append((hashlib.sha256(str(key).encode()).hexdigest(), image_id))
    return faces, ingested


def run(name: str, count: int) -> dict[str, float]:
    options = VARIANTS[name]
    with tempfile.TemporaryDirectory(prefix="facetrust-sql-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "x.db", isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
            conn.execute(f"PRAGMA {pragma}")
        if options.get("cache"):
            conn.execute(f"PRAGMA cache_size=-{options['cache']}")
        conn.executescript(DDL)
        for index in options.get("drop", ()):  # type: ignore[attr-defined]
            conn.execute(f"DROP INDEX {index}")
        conn.execute("INSERT INTO collections(name, model, created_at) VALUES ('b', 'm', 0)")
        spent = {"faces": 0.0, "changes": 0.0, "ingested": 0.0, "commit": 0.0}
        for first in range(1, count + 1, BATCH):
            faces, ingested = _rows(first, bool(options.get("seq")))
            conn.execute("BEGIN IMMEDIATE")
            t0 = time.process_time()
            conn.executemany(FACES_SQL, faces)
            t1 = time.process_time()
            conn.executemany(
                "INSERT INTO changes(collection_id, face_key, op) VALUES (1, ?, 'add')", ((f[0],) for f in faces)
            )
            t2 = time.process_time()
            record(conn, 1, ingested, 0.0)  # the store's statements (store/ingested.py)
            t3 = time.process_time()
            conn.execute("COMMIT")
            t4 = time.process_time()
            for part, took in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                spent[part] += took
        conn.close()
    return {part: round(took * 1e6 / count, 1) for part, took in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("count", nargs="?", type=int, default=200_000, help="faces per variant (default 200,000)")
    parser.add_argument("variants", nargs="*", help=f"variants to run: {', '.join(VARIANTS)} (default: all)")
    args = parser.parse_args()
    count, names = args.count, args.variants or list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    print(f"{count:,} faces, batches of {BATCH:,}; CPU µs per face; {machine_record()}", flush=True)
    for name in names:
        spent = run(name, count)
        print(f"{name:<16} {spent}  total {sum(spent.values()):.1f}", flush=True)


if __name__ == "__main__":
    main()
