"""1:N fairness end to end through the HTTP API: does the FPIR each search reports hold per group?

    nice -n 5 .venv/bin/python bench/search_fairness.py     # writes bench/results/search_fairness.json
    nice -n 5 .venv/bin/python bench/search_fairness.py --other-half   # search_fairness-other-half.json
    FACETRUST_CALIBRATION_FILE=t.json nice -n 5 .venv/bin/python bench/search_fairness.py --tag cap20
        # another raw table (here `facetrust calibrate --max-per-identity 20`): search_fairness-cap20.json
    FACETRUST_PROFILE=accurate nice -n 5 .venv/bin/python bench/search_fairness.py --tag accurate
        # a server and collection of the accurate profile (SFace fused with dlib)

A real server (the default engine, uvicorn on 127.0.0.1, an unmodified boto3 client with
docs/http.md's hook) indexes a seeded half of UTKFace (near-duplicates dropped first, as
`facetrust calibrate` does; ExternalImageId = the file name), then every indexed face is
searched with ``SearchFaces`` at threshold 80, three times: with per-probe scoring (the
default), with ``symmetric_scores`` on (each gallery face's own statistics, computed as it was
indexed, combined with the probe's) and with ``probe_normalisation`` off (the global
calibration: facetrust before). UTKFace has
no identities, so every candidate is a wrong one; a second count leaves out candidates at raw
cosine ≥ 0.6 to the probe (presumed the same person, ../shared/FACTS.md; SFace's cosine, a fused
template's SFace part under the accurate profile, as for the near-duplicates).

Per group (adults by race; children 0–12; adults): the fraction of probes with at least one
wrong candidate (measured FPIR, 95 % bootstrap interval over probes), the mean FPIR the
responses reported, and the share of responses flagged ``EstimateUnreliable``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "server"))
from live import rekognition, serving, with_facetrust_fields

import lfw_data as L
from facetrust.config import Settings, default_cache_dir
from facetrust.engine import FaceEngine
from facetrust.fairness.datasets import load_utkface
from facetrust.fairness.embedding import FACE
from facetrust.fairness.robustfit import duplicate_rows
from facetrust.fairness.runner import embed_spec
from facetrust.models.fused import sface_vectors
from facetrust.server import create_app
from facetrust.service import FaceService
from facetrust.service.tails import catch_up
from host import machine_record, save_result

RESULTS = Path(__file__).resolve().parent / "results"
HALVES = ("search_fairness.json", "search_fairness-other-half.json")
PRESUMED_SAME = 0.6
REPLICATES = 1000


def boot(values: np.ndarray, rng: np.random.Generator) -> list[float]:
    if values.size == 0:
        return [float("nan")] * 3
    reps = values[rng.integers(0, values.size, size=(REPLICATES, values.size))].mean(axis=1)
    return [float(values.mean()), *np.quantile(reps, [0.025, 0.975]).tolist()]


def search_all(client: Any, face_ids: dict[str, str], name_of: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per indexed file: the files of its candidates, the reported FPIR and the unreliable flag."""
    out = {}
    for file, face_id in face_ids.items():
        r = client.search_faces(CollectionId="utk", FaceId=face_id, FaceMatchThreshold=80, MaxFaces=4096)
        out[file] = {
            "candidates": [name_of[m["Face"]["FaceId"]] for m in r["FaceMatches"]],
            "fpir": float(r["GalleryFalsePositiveIdentificationRate"]),
            "unreliable": bool(r.get("EstimateUnreliable", False)),
            "method": r.get("EstimateMethod"),
        }
    return out


def summarise(
    found: dict[str, dict[str, Any]], groups: dict[str, list[str]], vec: dict[str, np.ndarray]
) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    out = {}
    for name, files in groups.items():
        files = [f for f in files if f in found]
        wrong = np.array([bool(found[f]["candidates"]) for f in files], dtype=float)
        strict = np.array(
            [any(float(vec[f] @ vec[c]) < PRESUMED_SAME for c in found[f]["candidates"]) for f in files], dtype=float
        )
        out[name] = {
            "probes": len(files),
            "fpir_measured": boot(wrong, rng),
            "fpir_measured_excl_presumed_same": boot(strict, rng),
            "fpir_reported_mean": float(np.mean([found[f]["fpir"] for f in files])) if files else None,
            "unreliable_share": float(np.mean([found[f]["unreliable"] for f in files])) if files else None,
        }
    return out


def search_again(
    settings: Settings, data: Path, face_ids: dict[str, str], name_of: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """``search_all`` through a server over the same data directory with other settings. With
    ``symmetric_scores`` on, the gallery faces' own statistics are computed first (a server computes
    them in a background step this bench does not run, so without this no face would have any)."""
    service = FaceService(data, FaceEngine.load(settings))
    if settings.symmetric_scores:
        catch_up(service.ctx, "utk")
    app = create_app(service, authenticator=None, settings=replace(settings, data_dir=data))
    with serving(app) as url:
        found = search_all(with_facetrust_fields(rekognition(url)), face_ids, name_of)
    service.close()
    return found


def half_names(tag: str | None) -> list[str]:
    return [name.replace(".json", f"-{tag}.json") if tag else name for name in HALVES]


def pool_halves(tag: str | None = None) -> dict[str, Any]:
    """Both runs' probes together (each probe searched its own half's gallery): per group, probes and
    probes with a wrong candidate under the default (per-probe) scores, and the adult race worst/best."""
    runs = [json.loads((RESULTS / name).read_text())["probe-tail"] for name in half_names(tag)]
    groups: dict[str, Any] = {}
    for name in runs[0]:
        probes = sum(int(run[name]["probes"]) for run in runs)
        wrong = sum(round(run[name]["probes"] * run[name]["fpir_measured"][0]) for run in runs)
        groups[name] = {"probes": probes, "wrong": wrong, "fpir_measured": wrong / probes}
    races = [v["fpir_measured"] for k, v in groups.items() if k.startswith("adult ")]
    ratio = max(races) / min(races)
    return {"machine": machine_record(), "groups": groups, "race_worst_over_best": ratio, "from": half_names(tag)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other-half", action="store_true", help="index the images the default run leaves out")
    parser.add_argument("--pool", action="store_true", help="pool the two halves' saved results (runs no search)")
    parser.add_argument(
        "--tag", help="a name for a run with other settings (e.g. a calibration_file): -TAG in the file"
    )
    args = parser.parse_args()
    if args.pool:
        save_result(RESULTS / f"search_fairness-pooled{'-' + args.tag if args.tag else ''}.json", pool_halves(args.tag))
        return
    started = time.perf_counter()
    settings = Settings.load()
    engine = FaceEngine.load(settings)
    spec = load_utkface(L.data_root() / "utkface")
    emb = embed_spec(engine, spec, cache_dir=default_cache_dir(), workers=1)
    face = np.flatnonzero(emb.status == FACE)
    sface = sface_vectors(engine.model_id, emb.vectors)  # the 0.9 and 0.6 rules are stated in SFace's cosines
    rows = np.setdiff1d(face, duplicate_rows(sface, face, [None] * len(spec.images)))
    shuffled = np.random.default_rng(0).permutation(rows)
    rows = np.sort(shuffled[len(rows) // 2 :] if args.other_half else shuffled[: len(rows) // 2])
    files = {Path(spec.images[i].path).name: i for i in rows}
    vec = {f: sface[i] for f, i in files.items()}
    groups: dict[str, list[str]] = {}
    for f, i in files.items():
        g = spec.images[i].groups
        if g["age_band"] == "0-12":
            groups.setdefault("children 0-12", []).append(f)
        elif g["age_band"] in ("18-39", "40-59", "60+"):
            groups.setdefault(f"adult {g['race']}", []).append(f)
            groups.setdefault("adults", []).append(f)
    result: dict[str, Any] = {
        "machine": machine_record(),
        "calibration": {
            "dataset": engine.calibration.dataset,
            "similarity_80": engine.calibration.score_for_similarity(80),
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        service = FaceService(data, engine)
        app = create_app(service, authenticator=None, settings=replace(settings, data_dir=data))
        face_ids: dict[str, str] = {}
        with serving(app) as url:
            client = with_facetrust_fields(rekognition(url))
            client.create_collection(CollectionId="utk")
            t0 = time.perf_counter()
            for f, i in files.items():
                r = client.index_faces(
                    CollectionId="utk", Image={"Bytes": Path(spec.images[i].path).read_bytes()}, ExternalImageId=f
                )
                if r["FaceRecords"]:
                    face_ids[f] = r["FaceRecords"][0]["Face"]["FaceId"]
            result["index_seconds"] = round(time.perf_counter() - t0, 1)
            name_of = {v: k for k, v in face_ids.items()}
            result["indexed"] = len(face_ids)
            per_probe = search_all(client, face_ids, name_of)
        service.close()
        symmetric = search_again(replace(settings, symmetric_scores=True), data, face_ids, name_of)
        raw = search_again(replace(settings, probe_normalisation=False), data, face_ids, name_of)
    result["probe-tail"] = summarise(per_probe, groups, vec)
    result["symmetric-tail"] = summarise(symmetric, groups, vec)
    result["raw"] = summarise(raw, groups, vec)
    result["methods_seen"] = sorted({str(v["method"]) for v in [*per_probe.values(), *symmetric.values()]})
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["half"] = "other" if args.other_half else "first"
    stem = "search_fairness-other-half" if args.other_half else "search_fairness"
    save_result(RESULTS / (f"{stem}-{args.tag}.json" if args.tag else f"{stem}.json"), result)


if __name__ == "__main__":
    main()
