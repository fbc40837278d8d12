"""Overhead of governance on IndexFaces and SearchFacesByImage latency, with the real engine on LFW.

Three ``FaceService`` configurations over the same engine (``facetrust.load_engine()``: YuNet +
SFace with flip augmentation), each in its own data directory on the same disk:

- ``bare`` — the baseline: the built-in policy, no template encryption, and the audit log
  switched off by replacing ``facetrust.governance.recorder.audited`` (in every module that
  imported it) with a no-op that writes nothing. Only the checks that cannot be switched off
  remain (the purpose lookup and the expiry filter in search).
- ``default`` — facetrust as shipped without a policy file: the built-in policy, no
  encryption, the audit log on (an entry appended, in its own fsynced transaction for a
  search, per call).
- ``governed`` — a policy file whose purpose requires consent (one lookup per IndexFaces)
  and human review, AES-256-GCM template encryption (a key from ``FACETRUST_TEMPLATE_KEY``-style
  keyring; index snapshots off), and the audit log.

Each collection is first filled with ``--gallery`` faces, one LFW image of each of as many
people, from the embeddings ``bench/lfw_data.py`` caches (the same detector, alignment and
flip-averaged SFace embedding as the engine), inserted through the store (untimed setup; the
governed collection's rows are sealed like any other). Then ``--calls`` IndexFaces calls
(another image of ``--calls`` gallery people) and ``--calls`` SearchFacesByImage calls (another
image of ``--calls`` other gallery people, so searches find their mate) are timed per
configuration, on real image bytes through the whole pipeline. ``--calls`` SearchFaces calls (by
the face id of a stored gallery face: no image decoding, detection or embedding) show the same
costs without the engine's time to hide them. Calls are interleaved (one call
per configuration in turn, the order rotating each round, the same image for all three), so a
change in the machine's load affects the three alike. Images are read into memory beforehand; each call is timed with
``time.perf_counter`` around the ``FaceService`` method alone. Consent for each subject of the
governed collection is recorded before its timed call (setup, not timed: it is a separate
operation, done once per subject in practice).

Overhead = p50(config) / p50(baseline) − 1. The target (issue 6) is ≤ 10 % at p50 for
``governed`` against ``bare``.

Rerun (from the repository root; about 3 minutes on 2 cores)::

    .venv/bin/python bench/governance.py                 # --gallery 1000 --calls 200
    .venv/bin/python bench/governance.py --calls 50      # quick look

Writes ``bench/results/governance.json`` and ``bench/results/governance.md``. Progress on stderr.
The data root is ``$FACETRUST_DATA`` or ``../shared/data`` beside the repository.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from facetrust import load_engine  # noqa: E402
from facetrust.governance import audit, recorder  # noqa: E402
from facetrust.governance.crypto import Keyring, TemplateKey, generate_key  # noqa: E402
from facetrust.governance.policy import DEFAULT_POLICY, Policy, Purpose  # noqa: E402
from facetrust.service import FaceService  # noqa: E402
from facetrust.store.sqlite import NewFace  # noqa: E402
from host import cpu_model  # noqa: E402
from lfw_data import embed_lfw, identity_of, lfw_images, lfw_root  # noqa: E402

SEED = 20261126
CONFIGS = ("bare", "default", "governed")
TARGET = 0.10
GOVERNED_POLICY = Policy(
    purposes={
        "investigation": Purpose(
            "investigation",
            min_threshold=80,
            max_candidates=100,
            human_review=True,
            consent_required=True,
            retention_days=365,
        )
    },
    default_purpose="investigation",
    source="bench/governance.py",
)


class _NullRecord(recorder.Record):
    """A record that is never written."""

    def commit(self, conn: Any, outcome: str = "ok") -> audit.AuditEntry:
        self.entry = audit.AuditEntry(0, 0.0, {}, audit.GENESIS, audit.GENESIS)
        return self.entry


@contextlib.contextmanager
def _no_audit(store: Any, actor: Any, operation: str, collection: str | None = None) -> Iterator[recorder.Record]:
    yield _NullRecord(actor, operation, collection)


@contextlib.contextmanager
def audit_off() -> Iterator[None]:
    """Replace ``audited`` with the no-op wherever it was imported, for the duration."""
    modules = [  # every loaded facetrust module that imported it (the governed path and its users)
        m
        for name, m in list(sys.modules.items())
        if name.startswith("facetrust") and getattr(m, "audited", None) is recorder.audited
    ]
    saved = [m.audited for m in modules]  # type: ignore[attr-defined]
    for m in modules:
        m.audited = _no_audit  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for m, original in zip(modules, saved):
            m.audited = original  # type: ignore[attr-defined]


def loads() -> dict[str, float]:
    one, five, _ = os.getloadavg()
    return {"load1": round(one, 2), "load5": round(five, 2)}


def machine() -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": dt.date.today().isoformat(),
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(ms: list[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(pct(ms, 0.99), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


class Bench:
    def __init__(self, root: Path) -> None:
        self.engine = load_engine()
        key = TemplateKey.from_bytes(base64.b64decode(generate_key()))
        self.services = {
            "bare": FaceService(root / "bare", self.engine, policy=DEFAULT_POLICY),
            "default": FaceService(root / "default", self.engine, policy=DEFAULT_POLICY),
            "governed": FaceService(root / "governed", self.engine, policy=GOVERNED_POLICY, keyring=Keyring(key)),
        }
        self.subjects = 0
        self.gallery_ids: dict[str, list[str]] = {}
        for name, svc in self.services.items():
            with audit_off() if name == "bare" else contextlib.nullcontext():
                svc.create_collection("bench")

    def close(self) -> None:
        for svc in self.services.values():
            svc.close()

    def _subject(self) -> str:
        self.subjects += 1
        return f"subject-{self.subjects:06d}"

    def index(self, name: str, image: bytes, subject: str) -> tuple[float, int]:
        svc = self.services[name]
        if name == "governed":
            svc.record_consent(subject, basis="bench", evidence=subject.encode())
        with audit_off() if name == "bare" else contextlib.nullcontext():
            t0 = time.perf_counter()
            result = svc.index_faces("bench", image, external_image_id=subject)
            elapsed = time.perf_counter() - t0
        return elapsed * 1000, len(result.indexed)

    def search(self, name: str, image: bytes) -> tuple[float, int]:
        svc = self.services[name]
        with audit_off() if name == "bare" else contextlib.nullcontext():
            t0 = time.perf_counter()
            result = svc.search_faces_by_image("bench", image, threshold=80, max_faces=10)
            elapsed = time.perf_counter() - t0
        return elapsed * 1000, len(result.matches)

    def search_stored(self, name: str, gallery_index: int) -> tuple[float, int]:
        svc = self.services[name]
        face_id = self.gallery_ids[name][gallery_index]
        with audit_off() if name == "bare" else contextlib.nullcontext():
            t0 = time.perf_counter()
            result = svc.search_faces("bench", face_id, threshold=80, max_faces=10)
            elapsed = time.perf_counter() - t0
        return elapsed * 1000, len(result.matches)

    def interleaved(self, what: str, count: int, pick: Callable[[int], Any]) -> dict[str, list[float]]:
        times: dict[str, list[float]] = {c: [] for c in CONFIGS}
        start = time.monotonic()
        for i in range(count):
            image = pick(i)
            subject = self._subject()
            order = CONFIGS[i % 3 :] + CONFIGS[: i % 3]
            for name in order:
                if what == "index":
                    ms, _ = self.index(name, image, subject)
                elif what == "search":
                    ms, _ = self.search(name, image)
                else:
                    ms, _ = self.search_stored(name, image)
                times[name].append(ms)
            if (i + 1) % 50 == 0:
                print(f"  {what}: {i + 1}/{count} rounds, {time.monotonic() - start:.0f} s, {loads()}", file=sys.stderr)
        return times

    def fill(self, vectors: list[bytes], scores: list[float]) -> None:
        """Insert the gallery (untimed) through each service's store, then bring each index up to date."""
        import uuid

        for svc in self.services.values():
            row = svc.store.get_collection("bench")
            assert row is not None
            expires = svc.clock() + svc.purpose_of(row.purpose).retention_seconds
            faces = [
                NewFace(
                    str(uuid.uuid4()),
                    str(uuid.uuid4()),
                    f"gallery-{i:05d}",
                    (0.3, 0.3, 0.4, 0.4),
                    score,
                    60.0,
                    60.0,
                    (0.0, 0.0, 0.0),
                    vector,
                    expires,
                )
                for i, (vector, score) in enumerate(zip(vectors, scores))
            ]
            with svc.store.transaction() as conn:
                svc.store.insert_faces(conn, row.id, faces)
            self.gallery_ids[svc.data_dir.name] = [f.face_id for f in faces]
            svc.indexes.get(row).ensure()  # catch the index up now, not in the first timed call


def pick_people(gallery: int, calls: int) -> tuple[list[bytes], list[float], list[bytes], list[bytes], bytes]:
    """Gallery vectors (first image of each of ``gallery`` people), and the image bytes of another
    image of ``calls`` of them to index, of ``calls`` others to search with, and of one more to warm up."""
    root = lfw_root()
    rels = lfw_images(root)
    embedded = embed_lfw(root, rels)
    row_of = {p: i for i, p in enumerate(embedded.paths)}
    vectors = embedded.vectors(flip=True)
    by_person: dict[str, list[str]] = {}
    for rel in rels:
        by_person.setdefault(identity_of(rel), []).append(rel)
    multi = [p for p in sorted(by_person) if len(by_person[p]) >= 2 and embedded.det_score[row_of[by_person[p][0]]] > 0]
    if len(multi) < max(gallery, 2 * calls + 1):
        sys.exit(f"LFW has only {len(multi)} people with two images; lower --gallery or --calls")
    people = random.Random(SEED).sample(multi, gallery)
    firsts = [row_of[by_person[p][0]] for p in people]
    gallery_vectors = [vectors[i].astype("<f4").tobytes() for i in firsts]
    scores = [float(embedded.det_score[i]) for i in firsts]
    second = [(root / "images" / by_person[p][1]).read_bytes() for p in people[: 2 * calls + 1]]
    return gallery_vectors, scores, second[:calls], second[calls : 2 * calls], second[-1]


def run(args: argparse.Namespace) -> dict[str, Any]:
    vectors, scores, to_index, probes, warm = pick_people(args.gallery, args.calls)
    with tempfile.TemporaryDirectory(prefix="facetrust-bench-governance-", dir=args.workdir) as tmp:
        bench = Bench(Path(tmp))
        try:
            for name in CONFIGS:  # first-call costs out of the way (this image is in no timed call)
                bench.index(name, warm, bench._subject())
            bench.fill(vectors, scores)
            for name in CONFIGS:
                bench.search(name, warm)
            start_load = loads()
            indexed = bench.interleaved("index", args.calls, lambda i: to_index[i])
            searched = bench.interleaved("search", args.calls, lambda i: probes[i])
            stored = bench.interleaved("search-stored", args.calls, lambda i: (i * 7919) % len(vectors))
            sizes = {n: s.describe_collection("bench").face_count for n, s in bench.services.items()}
            audit_entries = {n: audit.head(s.store.connection()).seq for n, s in bench.services.items()}
            end_load = loads()
        finally:
            bench.close()
    results: dict[str, Any] = {}
    for op, times in (("IndexFaces", indexed), ("SearchFacesByImage", searched), ("SearchFaces", stored)):
        stats: dict[str, Any] = {c: summary(times[c]) for c in CONFIGS}
        base, default = stats["bare"]["p50_ms"], stats["default"]["p50_ms"]
        stats["overhead_p50"] = {
            "audit log (default vs bare)": round(default / base - 1, 4),
            "policy, consent, review, encryption (governed vs default)": round(
                stats["governed"]["p50_ms"] / default - 1, 4
            ),
            "all governance (governed vs bare)": round(stats["governed"]["p50_ms"] / base - 1, 4),
        }
        stats["paired_median_extra_ms"] = {
            f"{c} - bare": round(statistics.median(t - b for t, b in zip(times[c], times["bare"])), 3)
            for c in ("default", "governed")
        }
        results[op] = stats
    return {
        "machine": machine(),
        "engine": load_engine().model_id,
        "gallery_faces": len(vectors),
        "lfw_images_timed": len(to_index) + len(probes),
        "collection_faces_after": sizes,
        "audit_entries_after": audit_entries,
        "calls_per_config": args.calls,
        "load": {"start": start_load, "end": end_load},
        "target_overhead_p50": TARGET,
        "results": results,
    }


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        "# Governance overhead on IndexFaces and SearchFacesByImage (bench/governance.py)",
        "",
        f"Machine: {m['cpu_model']}, {m['cores']} cores ({m['usable_cpus']} usable), Python {m['python']}, "
        f"{m['date']}. Load average {doc['load']['start']['load1']} at the start, {doc['load']['end']['load1']} "
        "at the end (other processes were running; the three configurations are interleaved call by call, so "
        "they share the load alike).",
        f"Engine {doc['engine']} (`facetrust.load_engine()`), index backend auto. Each collection holds "
        f"{doc['gallery_faces']:,} faces (one grayscale LFW image of each of as many people) before timing; "
        f"{doc['calls_per_config']} timed calls per operation and configuration, on "
        f"{doc['lfw_images_timed']} other LFW images of gallery people (IndexFaces adds them, "
        "SearchFacesByImage finds their mates); SearchFaces searches by the face id of a stored gallery face "
        "(no image work: the governance costs with nothing to hide them).",
        "",
        "- **bare** (baseline): built-in policy, no template encryption, audit log replaced by a no-op "
        "(`facetrust.governance.recorder.audited` patched in every module that imports it).",
        "- **default**: built-in policy, no encryption, audit log on (facetrust without a policy file).",
        "- **governed**: policy file purpose with `consent_required` and `human_review` (threshold ≥ 80), "
        "AES-256-GCM template encryption, audit log on.",
        "",
        "| operation | configuration | p50 ms | p99 ms | mean ms | calls |",
        "|---|---|---|---|---|---|",
    ]
    for op, stats in doc["results"].items():
        for c in CONFIGS:
            s = stats[c]
            lines.append(f"| {op} | {c} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['mean_ms']:.2f} | {s['n']} |")
    lines += ["", "Overhead at p50, p50(configuration) / p50(baseline) − 1 (target ≤ 10 % for all governance):", ""]
    lines += ["| operation | what | overhead |", "|---|---|---|"]
    for op, stats in doc["results"].items():
        for what, value in stats["overhead_p50"].items():
            lines.append(f"| {op} | {what} | {value * 100:+.1f} % |")
    lines += [
        "",
        "Paired: the median over rounds of (this configuration's call − the baseline's call on the same image, "
        "moments apart), which cancels most of the load drift between calls. Under load, p50 ratios move by a "
        "few percent from run to run; the paired medians are the steadier measure:",
        "",
        "| operation | default − bare | governed − bare |",
        "|---|---|---|",
    ]
    for op, stats in doc["results"].items():
        extra = stats["paired_median_extra_ms"]
        lines.append(f"| {op} | {extra['default - bare']:+.2f} ms | {extra['governed - bare']:+.2f} ms |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--gallery", type=int, default=1000, help="faces in each collection before timing")
    parser.add_argument("--calls", type=int, default=200, help="timed calls per operation and configuration")
    parser.add_argument("--workdir", default=None, help="where the data directories go (default: the temp dir)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for governance.json/.md")
    args = parser.parse_args()
    print(f"load before: {loads()}", file=sys.stderr)
    doc = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "governance.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / "governance.md").write_text(markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
