"""SearchUsers in a large collection where few faces belong to a user: time, memory and the answers.

    nice -n 10 .venv/bin/python bench/user_search.py --label after
    PYTHONPATH=/tmp/facetrust-main/src nice -n 10 .venv/bin/python bench/user_search.py --label before

A temporary data directory (SQLite, the fake engine's 32-dimension templates, the default policy)
gets ``--size`` seeded random unit templates through the store (untimed), and ``--users`` users of
``--faces-per-user`` faces each, the first of them with 100 faces (the most a user holds): the
probe. Then the index is brought up to date, and SearchUsers by that user and by one of its faces
run at threshold 0, so that every face among each query's nearest 4,096 (``MAX_K``) is a
candidate: with 100 queries, nearly the whole collection. Each search runs ``--repeats`` times;
the median wall time is kept, and the peak RSS above the one before the first call (sampled
every 5 ms). The answers (users, similarities, FMRs, best faces, gallery size, FPIR) are kept
with the numbers, and a run says whether they equal those of the runs merged before it. Runs
(``--label``: ``before`` with the previous version's sources on PYTHONPATH) are merged into
bench/results/user-search.json and .md; the load average is recorded around each run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from facetrust.models.fake import fake_engine
from facetrust.service import FaceService
from host import load_avg, machine_record
from synthetic import new_faces

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 20240611
BATCH = 20_000  # faces inserted per transaction


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def fill(svc: FaceService, size: int, users: int, per_user: int) -> tuple[str, str]:
    """``size`` random faces, ``users`` users (the first of 100 faces, the others of ``per_user``);
    the probe user's id and one of its face ids."""
    rng = np.random.default_rng(SEED)
    svc.create_collection("c")
    row = svc.store.get_collection("c")
    assert row is not None
    keys: list[int] = []
    ids: dict[int, str] = {}
    for start in range(0, size, BATCH):
        faces = new_faces(rng, start, min(BATCH, size - start))
        with svc.store.transaction() as conn:
            made = svc.store.insert_faces(conn, row.id, faces)
        keys += made
        ids.update(zip(made, (f.face_id for f in faces)))
    chosen = rng.choice(len(keys), size=100 + (users - 1) * per_user, replace=False)
    with svc.store.transaction() as conn:
        for u in range(users):
            part = chosen[:100] if u == 0 else chosen[100 + (u - 1) * per_user : 100 + u * per_user]
            svc.store.insert_user(conn, row.id, f"user-{u:05d}")
            svc.store.set_user(conn, row.id, [keys[i] for i in part], f"user-{u:05d}")
    svc.ctx.indexes.get(row).ensure()
    return "user-00000", ids[keys[int(chosen[0])]]


def measure(call: Any, repeats: int) -> tuple[dict[str, Any], Any]:
    """Median seconds over ``repeats`` calls, the first call's RSS peak above its start; the answer."""
    start, peak, done = rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.005)

    watcher = threading.Thread(target=sample)
    watcher.start()
    t0 = time.perf_counter()
    answer = call()
    times = [time.perf_counter() - t0]
    done.set()
    watcher.join()
    for _ in range(repeats - 1):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    timing = {"median_s": round(statistics.median(times), 3), "times_s": [round(t, 3) for t in times]}
    return {**timing, "rss_growth_mb": round(max(peak[0] - start, 0) / 2**20, 1)}, answer


def answer_of(result: Any) -> dict[str, Any]:
    return {
        "users": [m.user.user_id for m in result.matches],
        "similarities": [m.similarity for m in result.matches],
        "fmrs": [m.fmr for m in result.matches],
        "best_faces": [m.best_face_id for m in result.matches],
        "face_counts": [m.user.face_count for m in result.matches],
        "gallery_size": result.gallery_size,
        "fpir": result.fpir,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"machine": machine_record(), "size": args.size, "users": args.users}
    with tempfile.TemporaryDirectory() as tmp, FaceService(Path(tmp) / "data", fake_engine()) as svc:
        t0 = time.perf_counter()
        user, face = fill(svc, args.size, args.users, args.faces_per_user)
        out["fill_s"] = round(time.perf_counter() - t0, 1)
        out["user_faces"] = 100 + (args.users - 1) * args.faces_per_user
        for name, call in (
            ("by_user", lambda: svc.search_users("c", user_id=user, threshold=0, max_users=500)),
            ("by_face", lambda: svc.search_users("c", face_id=face, threshold=0, max_users=500)),
        ):
            numbers, answer = measure(call, args.repeats)
            out[name] = {**numbers, "answer": answer_of(answer)}
            print(f"{name}: {numbers}", file=sys.stderr)
    out["machine"]["load_after"] = load_avg()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=200_000)
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--faces-per-user", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--label", default="after")
    ap.add_argument("--out", type=Path, default=RESULTS / "user-search.json")
    args = ap.parse_args()
    runs: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    now = run(args)
    same = [k for k, r in runs.items() if k != args.label and r.get("size") == args.size]
    now["same_answers_as"] = [
        k for k in same if all(runs[k][n]["answer"] == now[n]["answer"] for n in ("by_user", "by_face"))
    ]
    runs[args.label] = now
    args.out.write_text(json.dumps(runs, indent=1) + "\n")
    lines = [
        "# SearchUsers at scale (bench/user_search.py)",
        "",
        "| run | faces | user faces | by user: median s | RSS growth MB | by face: median s | RSS growth MB | "
        "answers equal to |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, r in runs.items():
        u, f = r["by_user"], r["by_face"]
        lines.append(
            f"| {label} | {r['size']:,} | {r['user_faces']:,} | {u['median_s']} | {u['rss_growth_mb']} | "
            f"{f['median_s']} | {f['rss_growth_mb']} | {', '.join(r['same_answers_as']) or '-'} |"
        )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
