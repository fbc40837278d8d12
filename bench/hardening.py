"""Hardening of the HTTP service: a bounded fuzz of every operation, stalled connections, decode memory.

    .venv/bin/python bench/hardening.py                       # --part all: writes bench/results/hardening.{json,md}
    .venv/bin/python bench/hardening.py --part fuzz --requests 2000 --out /tmp/hardening   # a quick look

Every part runs against ``facetrust serve`` (authentication on, the default engine and settings)
started in a subprocess on a free 127.0.0.1 port: loopback only, over a fresh temporary data
directory with one collection, one user and (when ../shared/data/lfw is there) one indexed face.

``fuzz``: ``--requests`` requests (10,000 by default; fixed ``--seed``), bounded by
``--max-seconds``. Each names an operation (every operation the server serves, plus unknown
ones), with a body whose members are mostly valid and one or more replaced by a value of a
hostile class: lone UTF-16 surrogates, integers past a double (10**400) and at SQLite's 64-bit
edges, infinities, wrong JSON types, broken images (truncated, bit-flipped, noise, a PNG
signature over garbage), junk keys, or a body that is not JSON at all. Most are signed with an
admin key (botocore's SigV4); some have a header repeated or added after signing, a tampered
body, or no signature. Status codes and error names are counted; the target is 0 × 5xx.

``stall``: ``--stalled`` connections that send half a request head and stop, and as many that
send a head and half a body and stop, while a signed ListCollections is timed; it records how
long the server takes to close each stalled connection (request head timeout, 10 s) and to answer
each stalled body (``RequestTimeoutException``, 408, after 30 s of silence).

``memory``: the concurrent-decode memory test, ``measure_memory()`` from bench/hardening_memory.py
(peak and final RSS under concurrent large images); reported as missing when that file is not here.

The load average is recorded before and after (the machine is shared): note it with any timing.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from host import cpu_model, load_avg
from load import free_port, start_server, stop_server

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
LFW = HERE.parent.parent / "shared" / "data" / "lfw" / "images"
JSON_11 = "application/x-amz-json-1.1"
PARTS = ("fuzz", "stall", "memory")


@dataclass
class Server:
    port: int
    key_id: str
    secret: str
    face_id: str | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def signed_headers(
    server: Server, target: str, body: bytes, extra: dict[str, str] | None = None
) -> list[tuple[str, str]]:
    """The headers botocore's SigV4 signs for ``POST /`` with ``target`` and ``body``."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(
        method="POST",
        url=server.url + "/",
        data=body,
        headers={"X-Amz-Target": target, "Content-Type": JSON_11, **(extra or {})},
    )
    SigV4Auth(Credentials(server.key_id, server.secret), "rekognition", "us-east-1").add_auth(request)
    return [(name, str(value)) for name, value in request.headers.items()]


# -- fixtures: images and the data directory ------------------------------------------------------


def photo() -> bytes:
    """A real face photo (the first LFW image) when the data is here, else a fake-engine picture."""
    if LFW.is_dir():
        for person in sorted(LFW.iterdir()):
            for path in sorted(person.glob("*.jpg")):
                return path.read_bytes()
    from facetrust.models.fake import face_png

    return face_png((40, 40, 80, 1))


def broken_images(good: bytes, rng: random.Random) -> list[bytes]:
    flipped = bytearray(good)
    for _ in range(8):
        flipped[rng.randrange(len(flipped))] ^= rng.randrange(1, 256)
    return [
        good[: rng.randrange(len(good))],
        bytes(flipped),
        rng.randbytes(rng.randrange(1, 400)),
        b"\x89PNG\r\n\x1a\n" + rng.randbytes(rng.randrange(0, 300)),
        b"\xff\xd8\xff" + rng.randbytes(rng.randrange(0, 300)),
        b"",
    ]


def prepare(data_dir: Path) -> tuple[str, str]:
    """An admin key in ``data_dir``'s key store: (key id, secret)."""
    from facetrust.server.keys import KeyStore

    with KeyStore.open(data_dir) as keys:
        return keys.create("admin", "bench/hardening.py")


def seed_data(server: Server, image: bytes) -> str | None:
    """One collection, one user and (if the photo has a face) one face, through the API; the face id."""
    import httpx

    def call(operation: str, members: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(members).encode()
        headers = signed_headers(server, f"RekognitionService.{operation}", body)
        answer: dict[str, Any] = httpx.post(server.url + "/", content=body, headers=headers, timeout=120).json()
        return answer

    call("CreateCollection", {"CollectionId": "fuzz"})
    call("CreateUser", {"CollectionId": "fuzz", "UserId": "ann"})
    indexed = call("IndexFaces", {"CollectionId": "fuzz", "Image": {"Bytes": base64.b64encode(image).decode()}})
    records = indexed.get("FaceRecords") or []
    return str(records[0]["Face"]["FaceId"]) if records else None


# -- the fuzz -------------------------------------------------------------------------------------

RAW = "\x00raw:"  # a string standing for a raw JSON token (1e999, NaN, a 400-digit integer, ...)
SURROGATES = ["\ud800", "a\udfff", "\udbff\udbff", "ok\ud83d"]
EXTREME_INTEGERS = [10**400, -(10**400), 2**63, -(2**63), 2**63 - 1, -(2**63) - 1, 2**64, -1, 0]
RAW_NUMBERS = ["1e999", "-1e999", "NaN", "Infinity", "1" + "0" * 4400, "-0", "1e-400", "0.1e308"]


class Fuzzer:
    """Requests for every operation: mostly valid members, each possibly replaced by a hostile value."""

    def __init__(self, server: Server, image: bytes, seed: int) -> None:
        from facetrust.server.operations import OPERATIONS

        self.server = server
        self.rng = random.Random(seed)
        self.operations = OPERATIONS
        self.names = sorted(OPERATIONS)
        self.good_image = base64.b64encode(image).decode()
        self.broken = [base64.b64encode(b).decode() for b in broken_images(image, self.rng)]
        self.face_id = server.face_id or "00000000-0000-4000-8000-000000000000"

    def valid(self, name: str, member: Any) -> Any:
        from facetrust.server.protocol import Kind

        if member.choices:
            return self.rng.choice(member.choices)
        by_name = {"CollectionId": "fuzz", "UserId": "ann", "FaceId": self.face_id, "ClientRequestToken": "t-1"}
        by_kind = {
            Kind.STRING: by_name.get(name, "x"),
            Kind.INTEGER: self.rng.randrange(1, 20),
            Kind.NUMBER: self.rng.uniform(0, 100),
            Kind.BOOLEAN: self.rng.random() < 0.5,
            Kind.IMAGE: {"Bytes": self.good_image},
            Kind.STRINGS: [self.face_id],
            Kind.STRING_MAP: {},
            Kind.OBJECT: {"S3Object": {"Bucket": "clips", "Name": "clip.mp4"}},  # Video: a file under the root
        }
        return by_kind[member.kind]

    def hostile(self, member: Any) -> Any:
        """A value of a class no client should send, leaning to ``member``'s kind."""
        from facetrust.server.protocol import Kind

        rng = self.rng
        text = rng.choice([rng.choice(SURROGATES), "", "x" * rng.choice([256, 5000]), "bad name!", "é漢字", " "])
        number = rng.choice(
            [rng.choice(EXTREME_INTEGERS), RAW + rng.choice(RAW_NUMBERS), rng.uniform(-1e308, 1e308), 1.5]
        )
        wrong = rng.choice([None, True, [], {}, [[[]]], {"a": {"b": None}}, "12", 12])
        kind = member.kind if member is not None else None
        if kind is Kind.IMAGE:
            return rng.choice(
                [
                    {"Bytes": rng.choice(self.broken)},
                    {"Bytes": rng.choice(SURROGATES)},
                    {"Bytes": "not base64!"},
                    {"S3Object": {"Bucket": "b", "Name": "n"}},
                    {"Bytes": number},
                    {rng.choice(SURROGATES): "x"},
                    wrong,
                ]
            )
        if kind is Kind.STRINGS:
            return rng.choice([[text], [self.face_id] * rng.choice([2, 5000]), [number], text, wrong])
        if kind is Kind.OBJECT:  # Video.S3Object: traversal, surrogates, wrong shapes, versions
            return rng.choice(
                [
                    {"S3Object": {"Bucket": "..", "Name": "../../etc/passwd"}},
                    {"S3Object": {"Bucket": "clips", "Name": text}},
                    {"S3Object": {"Bucket": text, "Name": "clip.mp4", "Version": text}},
                    {"S3Object": {"Bucket": "clips", "Name": number}},
                    {"S3Object": wrong},
                    {rng.choice(SURROGATES): "x"},
                    wrong,
                ]
            )
        if kind is Kind.STRING_MAP:
            return rng.choice([{text: "v"}, {"k": text}, {"facetrust:purpose": text}, {"k": number}, wrong])
        if kind in (Kind.INTEGER, Kind.NUMBER):
            return rng.choice([number, number, number, text, wrong])
        return rng.choice([text, text, number, wrong])

    def body(self, operation: str) -> str:
        rng = self.rng
        members = self.operations[operation].members if operation in self.operations else {}
        values = {n: self.valid(n, m) for n, m in members.items() if m.required or rng.random() < 0.4}
        for name in rng.sample(sorted(members), k=min(len(members), rng.choice([0, 1, 1, 1, 2, 3]))):
            values[name] = self.hostile(members[name])
        if rng.random() < 0.1:
            values[rng.choice(["Junk", rng.choice(SURROGATES), ""])] = self.hostile(None)
        if rng.random() < 0.1 and values:
            values.pop(rng.choice(sorted(values)))
        return to_json(values)

    def request(self) -> tuple[str, bytes, list[tuple[str, str]]]:
        """(operation, body, headers) of the next request."""
        rng = self.rng
        operation = rng.choice(self.names) if rng.random() < 0.97 else rng.choice(["DetectLabels", "", "x" * 200])
        roll = rng.random()
        if roll < 0.04:
            body = rng.choice([b"{", b"[1, 2]", b'"text"', b"null", rng.randbytes(50), b"[" * 100_000, b"\xff{}"])
        else:
            body = self.body(operation).encode()
        headers = signed_headers(self.server, f"RekognitionService.{operation}", body)
        return operation or "-", body, self.tamper(headers, body)

    def tamper(self, headers: list[tuple[str, str]], body: bytes) -> list[tuple[str, str]]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.02:  # a repeated behaviour-selecting header, before or after the signed one
            name, value = rng.choice(
                [
                    ("X-Amz-Target", "RekognitionService.DeleteCollection"),
                    ("Content-Type", "text/plain"),
                    ("X-Facetrust-Case-Ref", "case-1"),
                ]
            )
            return [(name, value), *headers] if rng.random() < 0.5 else [*headers, (name, value)]
        if roll < 0.03:  # an unsigned case reference added after signing
            return [*headers, ("X-Facetrust-Case-Ref", "case-2")]
        if roll < 0.04:  # no signature
            return [(n, v) for n, v in headers if n.lower() != "authorization"]
        if roll < 0.05:  # another content type (signed or not)
            return [(n, "application/json" if n.lower() == "content-type" else v) for n, v in headers]
        return headers


def to_json(value: Any) -> str:
    """JSON text of ``value``, with each ``RAW``-marked string written as its raw token."""
    text = json.dumps(value)
    marker = json.dumps(RAW)[1:-1]
    while marker in text:
        start = text.index('"' + marker)
        end = text.index('"', start + 1 + len(marker))
        text = text[:start] + text[start + 1 + len(marker) : end] + text[end + 1 :]
    return text


def run_fuzz(server: Server, image: bytes, requests: int, seed: int, max_seconds: float) -> dict[str, Any]:
    import httpx

    fuzzer = Fuzzer(server, image, seed)
    statuses: Counter[int] = Counter()
    names: Counter[str] = Counter()
    per_operation: dict[str, Counter[int]] = {}
    server_errors: list[dict[str, Any]] = []
    started = time.monotonic()
    sent = 0
    with httpx.Client(base_url=server.url, timeout=120) as http:
        while sent < requests and time.monotonic() - started < max_seconds:
            operation, body, headers = fuzzer.request()
            try:
                response = http.post("/", content=body, headers=headers)
                status = response.status_code
                name = response.headers.get("x-amzn-errortype", "ok" if status < 400 else "?")
            except httpx.HTTPError as exc:
                status, name = 0, f"connection: {type(exc).__name__}"
            sent += 1
            statuses[status] += 1
            names[f"{status} {name}"] += 1
            per_operation.setdefault(operation, Counter())[status] += 1
            if (status >= 500 or status == 0) and len(server_errors) < 20:
                server_errors.append({"operation": operation, "status": status, "body": body[:300].decode("latin-1")})
    seconds = time.monotonic() - started
    return {
        "requests": sent,
        "seed": seed,
        "seconds": round(seconds, 1),
        "stopped_early": sent < requests,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors": sum(v for k, v in statuses.items() if k >= 500 or k == 0),
        "answers": dict(names.most_common()),
        "per_operation": {op: {str(k): v for k, v in sorted(c.items())} for op, c in sorted(per_operation.items())},
        "examples_of_5xx": server_errors,
    }


# -- stalled connections --------------------------------------------------------------------------


def stall_one(port: int, parts: bytes, wait: float) -> tuple[float, bytes]:
    """Send ``parts`` and stop; (seconds until the server answered or closed, the start of what it sent)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(parts)
        try:
            received = sock.recv(65536)  # the answer (or b"" when the server closes without one)
        except TimeoutError:
            return float("inf"), b""
    return time.monotonic() - started, received


def run_stall(server: Server, stalled: int) -> dict[str, Any]:
    import httpx

    head = b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: RekognitionService.ListCollections\r\n"
    half_body = head + b'Content-Type: application/x-amz-json-1.1\r\nContent-Length: 100\r\n\r\n{"Max'
    outcomes: dict[str, list[tuple[float, bytes]]] = {"head": [], "body": []}
    lock = threading.Lock()

    def stall(kind: str, parts: bytes) -> None:
        outcome = stall_one(server.port, parts, wait=90)
        with lock:
            outcomes[kind].append(outcome)

    threads = [threading.Thread(target=stall, args=("head", head)) for _ in range(stalled)]
    threads += [threading.Thread(target=stall, args=("body", half_body)) for _ in range(stalled)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    latencies = []
    body = b"{}"
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for _ in range(10):
            began = time.monotonic()
            answer = http.post(
                "/", content=body, headers=signed_headers(server, "RekognitionService.ListCollections", body)
            )
            latencies.append((time.monotonic() - began, answer.status_code))
    for thread in threads:
        thread.join()

    def summary(found: list[tuple[float, bytes]]) -> dict[str, Any]:
        times = sorted(t for t, _ in found)
        codes = Counter(
            raw.split(b" ", 2)[1].decode() if raw.startswith(b"HTTP/1.1 ") else "closed" for _, raw in found
        )
        return {
            "connections": len(found),
            "answers": dict(codes),
            "seconds_min": round(times[0], 2),
            "seconds_max": round(times[-1], 2),
            "never_closed": sum(t == float("inf") for t in times),
        }

    return {
        "stalled_heads": summary(outcomes["head"]),
        "stalled_bodies": summary(outcomes["body"]),
        "list_collections_while_stalled": {
            "statuses": dict(Counter(str(s) for _, s in latencies)),
            "seconds_max": round(max(t for t, _ in latencies), 3),
        },
    }


# -- memory (bench/hardening_memory.py) ------------------------------------------------------------


def run_memory() -> dict[str, Any]:
    try:
        from hardening_memory import measure_memory  # type: ignore[import-not-found]
    except ImportError as exc:
        return {"status": "missing", "reason": f"bench/hardening_memory.py is not on this branch ({exc})"}
    result: dict[str, Any] = measure_memory()
    return result


# -- report ----------------------------------------------------------------------------------------


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Hardening",
        "",
        f"{result['date']} · {result['machine']} · load average {result['load_before']} → {result['load_after']}",
        "",
        "Produced by `bench/hardening.py` (see its docstring for what each part does).",
        "",
    ]
    fuzz = result.get("fuzz")
    if fuzz:
        lines += [
            "## Fuzz of every operation",
            "",
            f"{fuzz['requests']} requests (seed {fuzz['seed']}) in {fuzz['seconds']} s"
            + (" (stopped early at --max-seconds)" if fuzz["stopped_early"] else "")
            + f": **{fuzz['server_errors']} × 5xx** (or dropped connections).",
            "",
            "| status | count |",
            "|---|---|",
            *[f"| {status} | {count} |" for status, count in fuzz["statuses"].items()],
            "",
            "| answer | count |",
            "|---|---|",
            *[f"| {name} | {count} |" for name, count in fuzz["answers"].items()],
            "",
        ]
    stall = result.get("stall")
    if stall:
        lines += [
            "## Stalled connections",
            "",
            "| what | connections | answers | answered or closed after (s) | never |",
            "|---|---|---|---|---|",
        ]
        for key in ("stalled_heads", "stalled_bodies"):
            s = stall[key]
            lines.append(
                f"| {key.replace('_', ' ')} | {s['connections']} | {s['answers']} | "
                f"{s['seconds_min']}–{s['seconds_max']} | {s['never_closed']} |"
            )
        during = stall["list_collections_while_stalled"]
        lines += [
            "",
            f"Signed ListCollections while they stalled: {during['statuses']}, slowest {during['seconds_max']} s.",
            "",
        ]
    memory = result.get("memory")
    if memory:
        lines += ["## Concurrent decode memory", "", "```", json.dumps(memory, indent=2), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all")
    parser.add_argument("--requests", type=int, default=10_000, help="fuzzed requests (default 10,000)")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="stop the fuzz after this long")
    parser.add_argument("--stalled", type=int, default=20, help="stalled connections of each kind")
    parser.add_argument("--out", type=Path, default=RESULTS / "hardening", help="writes OUT.json and OUT.md")
    args = parser.parse_args(argv)
    parts = PARTS if args.part == "all" else (args.part,)

    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_model()}, {platform.machine()}, {__import__('os').cpu_count()} cores",
        "load_before": load_avg(),
        "parts": list(parts),
    }
    if "fuzz" in parts or "stall" in parts:
        with_server(lambda server, image: result.update(run_parts(server, image, parts, args)))
    if "memory" in parts:
        result["memory"] = run_memory()
    result["load_after"] = load_avg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    fuzz = result.get("fuzz")
    return 1 if fuzz and fuzz["server_errors"] else 0


def run_parts(server: Server, image: bytes, parts: tuple[str, ...], args: argparse.Namespace) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if "fuzz" in parts:
        found["fuzz"] = run_fuzz(server, image, args.requests, args.seed, args.max_seconds)
    if "stall" in parts:
        found["stall"] = run_stall(server, args.stalled)
    return found


def with_server(use: Callable[[Server, bytes], None]) -> None:
    """Run ``use`` against a fresh ``facetrust serve`` (auth on) over a temporary data directory."""
    data_dir = Path(tempfile.mkdtemp(prefix="facetrust-hardening-"))
    image = photo()
    videos = data_dir.with_name(data_dir.name + "-videos")  # the video operations' root: one bad clip
    (videos / "clips").mkdir(parents=True)
    (videos / "clips" / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    os.environ["FACETRUST_VIDEO_ROOT"] = str(videos)  # the server subprocess inherits it
    try:
        key_id, secret = prepare(data_dir)
        port = free_port()
        proc = start_server(data_dir, port, data_dir / "serve.log")
        try:
            server = Server(port, key_id, secret, None)
            server.face_id = seed_data(server, image)
            use(server, image)
        finally:
            stop_server(proc)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(videos, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
