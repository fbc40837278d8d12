"""Load test of the HTTP service: concurrent, unmodified boto3 clients against ``facetrust serve``.

    .venv/bin/python bench/load.py                      # 32 clients, 60 s, 100,000 faces; writes
                                                        # bench/results/load.json and load.md
    .venv/bin/python bench/load.py --clients 8 --seconds 15 --faces 20000 --out /tmp/load   # a quick look
    .venv/bin/python bench/load.py --replicas 1,2       # one server, then two replicas over one store;
                                                        # both runs in load.json and load.md

Check ``uptime`` first (or pass ``--wait-idle 600``): every request runs the real engine, so
another busy process moves the numbers. The load average is recorded before and after.

What runs. A fresh data directory (a temporary one, or ``--data``) gets one collection, created
through ``FaceService`` (so its model id and purpose are the real engine's), filled through the
store layer (``Store.insert_faces``, 10,000 faces a transaction) with the 13,233 real LFW
embeddings (``flip=True``, from the bench cache, see lfw_data.py) topped up to ``--faces`` with
synthetic ones: a multivariate normal with the real embeddings' mean and covariance,
L2-normalised. An admin key is created in the data directory's key store, and ``facetrust
serve`` starts in a subprocess (uvicorn, authentication on, the default engine and settings);
its index of the collection is built from the database by the first search (the warm-up, not
timed). Then ``--clients`` threads, each with its own boto3 client signing with that key
(SigV4, no retries), call for ``--seconds``: SearchFacesByImage, IndexFaces and CompareFaces in
the ``--mix`` proportions (60/20/20), with real LFW photos (one detected face each). Each
IndexFaces carries a unique ExternalImageId, so each stores a distinguishable face (identical
calls within one second share a signature, which the server accepts as an honest repeat;
docs/auth.md). Every exception (a non-2xx answer included) counts as an error.

On a machine with few cores the server, its engine and the clients (signing, base64 and JSON in
Python threads) share the CPU, so requests/s is a floor for the server alone, and latency
includes queueing behind the other 31 clients.

``--replicas 1,2`` runs the whole measurement once per count, each on a fresh data directory:
with 2, two ``facetrust serve`` processes (``replica_id`` r1, r2) share the one SQLite store and
every client sends its requests to them in turn (round-robin per request), as a load balancer
would. Both replicas run on the same machine and share its cores (docs/replicas.md).

``--stores sqlite,postgresql`` (one per ``--replicas`` count, in order) names each run's store:
``postgresql`` starts a throwaway PostgreSQL cluster for the run as the tests do
(tests/pg_cluster.py: ``initdb`` in a temporary folder, Unix socket only, fsync off), or uses
``FACETRUST_TEST_POSTGRES``; the collection and the keys go into a fresh schema of it, and each
replica gets its own data directory (its index snapshots and audit head file), as on separate
machines. The issue's comparison, two replicas over PostgreSQL vs one over SQLite:

    nice -n 5 .venv/bin/python bench/load.py --replicas 1,2 --stores sqlite,postgresql
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_data as L
from host import cpu_model, load_avg

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SEED = 20261126
COLLECTION = "load"
OPERATIONS = ("SearchFacesByImage", "IndexFaces", "CompareFaces")
INSERT_BATCH = 10_000
POOL_IMAGES = 600
ERROR_SAMPLES = 5


# -- the collection ------------------------------------------------------------------------------


def synthetic(real: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` vectors from a normal with ``real``'s mean and covariance, L2-normalised."""
    if n <= 0:
        return np.empty((0, real.shape[1]), np.float32)
    mean = real.mean(axis=0, dtype=np.float64)
    cov = np.cov(real, rowvar=False)
    x: np.ndarray = rng.multivariate_normal(mean, cov, size=n, method="cholesky")
    return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


def new_face(vector: np.ndarray, external: str) -> Any:
    from facetrust.store.sqlite import NewFace

    return NewFace(
        face_id=str(uuid.uuid4()),
        image_id=str(uuid.uuid4()),
        external_image_id=external,
        box=(0.3, 0.3, 0.4, 0.4),
        confidence=99.0,
        brightness=60.0,
        sharpness=60.0,
        pose=(0.0, 0.0, 0.0),
        embedding=vector.astype("<f4").tobytes(),
    )


def build_collection(data_dir: Path, faces: int, rng: np.random.Generator, store: str | None) -> dict[str, Any]:
    """Create the collection through FaceService and insert ``faces`` embeddings through its store."""
    from facetrust.config import Settings
    from facetrust.service import FaceService

    root = L.lfw_root()
    paths = L.lfw_images(root)
    real = L.embed_lfw(root, paths).vectors(flip=True)
    real_paths = [p for p, v in zip(paths, real) if np.any(v)]
    real = real[np.any(real, axis=1)][:faces]
    extra = synthetic(real, faces - len(real), rng)
    started = time.perf_counter()
    with FaceService.open(data_dir, Settings(data_dir=data_dir, store=store)) as service:
        info = service.create_collection(COLLECTION)
        row = service.store.get_collection(COLLECTION)
        assert row is not None and row.model == info.model
        names = [f"lfw/{p}" for p in real_paths[: len(real)]] + [f"synthetic-{i}" for i in range(len(extra))]
        vectors = np.vstack([real, extra])
        for start in range(0, len(vectors), INSERT_BATCH):
            batch = [new_face(v, n) for v, n in zip(vectors[start : start + INSERT_BATCH], names[start:])]
            with service.store.transaction() as conn:
                service.store.insert_faces(conn, row.id, batch)
            print(f"  inserted {start + len(batch):,} faces", file=sys.stderr)
    return {
        "faces": len(vectors),
        "real_lfw": len(real),
        "synthetic": len(extra),
        "model": info.model,
        "insert_s": round(time.perf_counter() - started, 1),
    }


# -- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    data_dir: Path, port: int, log_path: Path, replica_id: str = "", store: str | None = None
) -> subprocess.Popen[bytes]:
    """``facetrust serve`` over ``data_dir`` (auth on; ``store``: a postgresql://… URL), once /health answers."""
    exe = Path(sys.executable).parent / "facetrust"
    cmd = [str(exe), "serve", "--data", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "FACETRUST_REPLICA_ID": replica_id, **({"FACETRUST_STORE": store} if store else {})}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"facetrust serve exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
                if answer.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    stop_server(proc)
    sys.exit(f"facetrust serve did not answer /health within 120 s; see {log_path}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(2)  # SIGINT: uvicorn shuts down and the service closes its data directory
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def health(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30) as answer:
        result: dict[str, Any] = json.load(answer)
        return result


def make_client(session: Any, url: str, key_id: str, secret: str) -> Any:
    from botocore.config import Config

    return session.client(
        "rekognition",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}, read_timeout=600, connect_timeout=30),
    )


# -- the workload --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Photos:
    """LFW photos with one clearly detected face: bytes, and who is in them."""

    data: list[bytes]
    person: list[str]
    by_person: dict[str, list[int]]


def load_photos(n: int, rng: random.Random) -> Photos:
    root = L.lfw_root()
    paths = L.lfw_images(root)
    emb = L.embed_lfw(root, paths)
    good = [p for p, score, count in zip(paths, emb.det_score, emb.face_counts) if score >= 0.9 and count == 1]
    chosen = sorted(rng.sample(good, min(n, len(good))))
    people = [L.identity_of(p) for p in chosen]
    by_person: dict[str, list[int]] = {}
    for i, person in enumerate(people):
        by_person.setdefault(person, []).append(i)
    return Photos([(root / "images" / p).read_bytes() for p in chosen], people, by_person)


@dataclass
class Record:
    operation: str
    started: float  # seconds since the timed section began
    latency_s: float
    error: str | None


@dataclass
class Worker:
    """One client thread: its boto3 clients (one per replica, used in turn), its random stream, what it recorded."""

    number: int
    clients: list[Any]
    photos: Photos
    mix: tuple[float, float, float]
    rng: random.Random
    records: list[Record] = field(default_factory=list)
    indexed: int = 0
    turn: int = 0

    @property
    def client(self) -> Any:
        """The next replica's client: round-robin per request, as a load balancer does."""
        self.turn = (self.turn + 1) % len(self.clients)
        return self.clients[self.turn]

    def request(self, operation: str) -> Callable[[], Any]:
        photos, rng, client = self.photos, self.rng, self.client
        image = rng.randrange(len(photos.data))
        if operation == "SearchFacesByImage":
            return lambda: client.search_faces_by_image(
                CollectionId=COLLECTION, Image={"Bytes": photos.data[image]}, MaxFaces=10
            )
        if operation == "IndexFaces":
            self.indexed += 1
            external = f"load-{self.number}-{self.indexed}-{uuid.uuid4().hex[:8]}"  # unique: writes must not repeat
            return lambda: client.index_faces(
                CollectionId=COLLECTION, Image={"Bytes": photos.data[image]}, ExternalImageId=external
            )
        mates = [i for i in photos.by_person[photos.person[image]] if i != image]
        target = rng.choice(mates) if mates and rng.random() < 0.5 else rng.randrange(len(photos.data))
        return lambda: client.compare_faces(
            SourceImage={"Bytes": photos.data[image]}, TargetImage={"Bytes": photos.data[target]}
        )

    def run(self, start: threading.Barrier, t0: list[float], seconds: float) -> None:
        start.wait()
        while True:
            began = time.perf_counter()
            if began - t0[0] >= seconds:
                return
            operation = self.rng.choices(OPERATIONS, weights=self.mix)[0]
            call = self.request(operation)
            error = None
            try:
                call()
            except Exception as exc:  # every failure counts: non-2xx answers, timeouts, resets
                error = f"{type(exc).__name__}: {exc}"[:500]
            self.records.append(Record(operation, began - t0[0], time.perf_counter() - began, error))


def run_load(workers: list[Worker], seconds: float) -> float:
    """Run every worker for ``seconds``; the wall time until the last request finished."""
    t0 = [0.0]
    start = threading.Barrier(len(workers) + 1, action=lambda: t0.__setitem__(0, time.perf_counter()))
    threads = [threading.Thread(target=w.run, args=(start, t0, seconds), name=f"client-{w.number}") for w in workers]
    for t in threads:
        t.start()
    start.wait()
    for t in threads:
        t.join()
    return time.perf_counter() - t0[0]


def warm_up(client: Any, photos: Photos) -> float:
    """One call of each operation, untimed; the first search builds the server's index."""
    started = time.perf_counter()
    client.search_faces_by_image(CollectionId=COLLECTION, Image={"Bytes": photos.data[0]}, MaxFaces=10)
    client.index_faces(CollectionId=COLLECTION, Image={"Bytes": photos.data[1]}, ExternalImageId="warm-up")
    client.compare_faces(SourceImage={"Bytes": photos.data[0]}, TargetImage={"Bytes": photos.data[1]})
    return time.perf_counter() - started


# -- report --------------------------------------------------------------------------------------


def latency_summary(records: Sequence[Record], wall_s: float) -> dict[str, Any]:
    ms = np.array([r.latency_s * 1000 for r in records]) if records else np.zeros(1)
    return {
        "requests": len(records),
        "requests_per_s": round(len(records) / wall_s, 2),
        "errors": sum(r.error is not None for r in records),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "mean_ms": round(float(ms.mean()), 1),
        "max_ms": round(float(ms.max()), 1),
    }


def machine() -> dict[str, Any]:
    cpu = cpu_model()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {name: metadata.version(name) for name in ("facetrust", "boto3", "uvicorn", "starlette")},
        "date": dt.date.today().isoformat(),
    }


def wait_for_idle(max_wait_s: float) -> None:
    """Wait (at most ``max_wait_s``) until the 1-minute load average is below half the cores."""
    limit = (os.cpu_count() or 1) / 2
    deadline = time.monotonic() + max_wait_s
    while os.getloadavg()[0] >= limit and time.monotonic() < deadline:
        print(f"  waiting for an idle machine: load average {load_avg()}", file=sys.stderr)
        time.sleep(15)


def render(report: dict[str, Any]) -> str:
    cfg, res, m = report["config"], report["results"], report["machine"]
    lines = [
        "# HTTP load: concurrent boto3 clients against `facetrust serve`",
        "",
        f"{cfg['clients']} unmodified boto3 clients (one per thread, SigV4 with an issued admin key, no retries) "
        f"for {cfg['seconds']} s against a collection of {report['collection']['faces']:,} faces "
        f"({report['collection']['real_lfw']:,} real LFW embeddings, {report['collection']['synthetic']:,} synthetic); "
        f"mix {cfg['mix']} (SearchFacesByImage / IndexFaces / CompareFaces), real LFW photos, the real engine "
        f"(`{report['server']['face_model_version']}`), authentication on. Made by `bench/load.py`.",
        "",
        "| operation | requests | requests/s | errors | p50 ms | p99 ms | mean ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in [*res["operations"].items(), ("**all**", res["overall"])]:
        lines.append(
            f"| {name} | {s['requests']:,} | {s['requests_per_s']} | {s['errors']} | {s['p50_ms']:,} | "
            f"{s['p99_ms']:,} | {s['mean_ms']:,} |"
        )
    lines += [
        "",
        f"Total: **{res['overall']['requests']:,} requests in {res['wall_s']} s, "
        f"{res['overall']['requests_per_s']} requests/s, {res['overall']['errors']} errors**. "
        f"Faces in the collection: {res['faces_before']:,} before, {res['faces_after']:,} after.",
    ]
    if res["error_samples"]:
        lines += ["", "First errors:", "", *[f"- `{e}`" for e in res["error_samples"]]]
    lines += [
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['date']}; load average {report['load_before']} before, "
        f"{report['load_after']} after. Python {m['python']}, boto3 {m['versions']['boto3']}, "
        f"uvicorn {m['versions']['uvicorn']}.",
        "",
        f"On this {m['cores']}-core machine the server, its engine (detection and two embedding passes per photo) "
        f"and the {cfg['clients']} client threads (signing, base64, JSON) share the CPU, so requests/s is a floor "
        "for the server alone and the latencies are mostly queueing: with every client waiting on one request, "
        "p50 is about clients ÷ requests/s. Building the collection (store inserts, "
        f"{report['collection']['insert_s']} s) and the server's first search (which builds the index, "
        f"{report['warm_up_s']} s with the other warm-up calls) are not timed.",
        "",
        "Rerun: `.venv/bin/python bench/load.py` (see its docstring).",
    ]
    return "\n".join(lines) + "\n"


def render_runs(reports: Sequence[dict[str, Any]]) -> str:
    """One report per replica count, after a table that compares them."""
    lines = [
        "# HTTP load: one `facetrust serve` vs replicas over one store",
        "",
        "The same measurement (below, in full) with 1 and with N server processes over one store (one SQLite "
        "data directory, or one PostgreSQL database on this machine with a data directory per replica), each "
        "client sending its requests to the replicas in turn. **All replicas (and PostgreSQL) run on this one "
        "machine and share its cores** (and the clients run there too), so more replicas add no CPU: this "
        "measures what replication costs or gains here, not the throughput of N machines. On a machine "
        "shared with other work (a load average above the core count), N server processes also get a larger "
        "share of the CPU than one, which alone raises their requests/s: compare runs made at a low load.",
        "",
        "| replicas | store | requests/s | errors | p50 ms | p99 ms | load average before → after |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in reports:
        o = r["results"]["overall"]
        lines.append(
            f"| {r['config']['replicas']} | {r['config']['store'].split()[0]} | {o['requests_per_s']} | "
            f"{o['errors']} | {o['p50_ms']:,} | "
            f"{o['p99_ms']:,} | {r['load_before']} → {r['load_after']} |"
        )
    for r in reports:
        body = render(r).split("\n", 1)[1]
        title = f"{r['config']['replicas']} replica(s) over {r['config']['store'].split()[0]}"
        lines += ["", f"## {title}", body.rstrip("\n")]
    return "\n".join(lines) + "\n"


# -- main ----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Concurrent boto3 clients against facetrust serve.")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients, one thread each (32)")
    p.add_argument("--seconds", type=float, default=60.0, help="length of the timed section (60)")
    p.add_argument("--faces", type=int, default=100_000, help="faces in the collection (100000)")
    p.add_argument("--mix", default="60/20/20", help="percent SearchFacesByImage/IndexFaces/CompareFaces")
    p.add_argument("--data", type=Path, help="data directory to create (default: a temporary one, removed after)")
    p.add_argument("--out", type=Path, default=RESULTS, help="where load.json and load.md go (bench/results)")
    p.add_argument("--wait-idle", type=float, default=0.0, help="wait up to this many seconds for an idle CPU")
    p.add_argument("--replicas", default="1", help="server processes over one store, one run per count: 1 or 1,2")
    p.add_argument("--stores", default="", help="each run's store, sqlite or postgresql, one per count (all sqlite)")
    args = p.parse_args(argv)
    try:
        args.replica_counts = [int(x) for x in args.replicas.split(",")]
    except ValueError:
        p.error(f"--replicas must be counts like 1 or 1,2, not {args.replicas!r}")
    if not args.replica_counts or min(args.replica_counts) < 1 or max(args.replica_counts) > 4:
        p.error(f"--replicas counts must be between 1 and 4, not {args.replicas!r}")
    parts = [float(x) for x in args.mix.split("/")]
    if len(parts) != 3 or min(parts) < 0 or sum(parts) <= 0:
        p.error(f"--mix must be three non-negative numbers like 60/20/20, not {args.mix!r}")
    args.weights = tuple(parts)
    args.store_kinds = args.stores.split(",") if args.stores else ["sqlite"] * len(args.replica_counts)
    if len(args.store_kinds) != len(args.replica_counts) or set(args.store_kinds) - {"sqlite", "postgresql"}:
        p.error(f"--stores must name sqlite or postgresql once per --replicas count, not {args.stores!r}")
    if args.data is not None and (args.data.exists() or len(args.replica_counts) > 1):
        p.error(f"--data {args.data}: give a new directory, and one replica count (the collection is built fresh)")
    return args


def measure(args: argparse.Namespace, data_dir: Path, replicas: int = 1, store: str | None = None) -> dict[str, Any]:
    """One run; ``store`` None: SQLite in ``data_dir``, shared by the replicas; a postgresql://…
    URL: that database, each replica with its own data directory under ``data_dir``."""
    import boto3

    from facetrust.server.keys import KeyStore

    load_before = load_avg()
    print(f"Building a collection of {args.faces:,} faces in {data_dir}", file=sys.stderr)
    collection = build_collection(data_dir, args.faces, np.random.default_rng(SEED), store)
    with KeyStore.open(data_dir, store=store) as keys:
        key_id, secret = keys.create("admin", "bench/load.py")
    photos = load_photos(POOL_IMAGES, random.Random(SEED))
    ports = [free_port() for _ in range(replicas)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for n, port in enumerate(ports, start=1):
            replica_id = f"r{n}" if replicas > 1 else ""
            own = data_dir if store is None else data_dir / f"replica-{n}"  # PostgreSQL: as on its own machine
            procs.append(start_server(own, port, data_dir / f"serve-{n}.log", replica_id, store))
        session = boto3.session.Session()
        clients = [[make_client(session, url, key_id, secret) for url in urls] for _ in range(args.clients)]
        print("Warming up (each replica's first search builds its index)", file=sys.stderr)
        warm_s = sum(warm_up(c, photos) for c in clients[0])
        faces_before = clients[0][0].describe_collection(CollectionId=COLLECTION)["FaceCount"]
        workers = [Worker(i, c, photos, args.weights, random.Random(SEED + i)) for i, c in enumerate(clients, start=1)]
        print(f"Running {args.clients} clients for {args.seconds:g} s against {replicas} replica(s)", file=sys.stderr)
        wall_s = run_load(workers, args.seconds)
        faces_after = clients[0][-1].describe_collection(CollectionId=COLLECTION)["FaceCount"]
        server = health(ports[0])
        for pair in clients:
            for c in pair:
                c.close()
    finally:
        for proc in procs:
            stop_server(proc)
    records = [r for w in workers for r in w.records]
    return {
        "config": {
            "clients": args.clients,
            "seconds": args.seconds,
            "mix": args.mix,
            "seed": SEED,
            "replicas": replicas,
            "store": "sqlite (one data directory)"
            if store is None
            else "postgresql (one database, a data directory per replica)",
        },
        "collection": collection,
        "server": {"face_model_version": server["face_model_version"], "models": server["models"]},
        "warm_up_s": round(warm_s, 1),
        "results": {
            "wall_s": round(wall_s, 2),
            "overall": latency_summary(records, wall_s),
            "operations": {op: latency_summary([r for r in records if r.operation == op], wall_s) for op in OPERATIONS},
            "error_samples": [f"{r.operation}: {r.error}" for r in records if r.error][:ERROR_SAMPLES],
            "faces_before": faces_before,
            "faces_after": faces_after,
        },
        "load_before": load_before,
        "load_after": load_avg(),
        "machine": machine(),
    }


@contextlib.contextmanager
def postgres_store(kind: str) -> Iterator[str | None]:
    """None for SQLite; for PostgreSQL, a fresh schema's URL on a throwaway cluster (removed after)."""
    if kind == "sqlite":
        yield None
        return
    sys.path.insert(0, str(HERE.parent / "tests"))
    from pg_cluster import start_server as start_postgres

    server = start_postgres()
    try:
        yield server.schema_url("load")
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.wait_idle > 0:
        wait_for_idle(args.wait_idle)
    reports = []
    for count, kind in zip(args.replica_counts, args.store_kinds):
        with postgres_store(kind) as store:
            if args.data is not None:
                reports.append(measure(args, args.data, count, store))
                continue
            temp = Path(tempfile.mkdtemp(prefix="facetrust-load-"))
            try:
                reports.append(measure(args, temp / "data", count, store))
            finally:
                shutil.rmtree(temp, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    document = reports[0] if len(reports) == 1 else {"runs": reports}
    text = render(reports[0]) if len(reports) == 1 else render_runs(reports)
    (args.out / "load.json").write_text(json.dumps(document, indent=2) + "\n")
    (args.out / "load.md").write_text(text)
    print(text)
    for report in reports:
        for sample in report["results"]["error_samples"]:
            print(f"error: {sample}", file=sys.stderr)


if __name__ == "__main__":
    main()
