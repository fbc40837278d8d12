"""Fit (and check) the map from YuNet's detector score to a Rekognition-scale face confidence.

Rekognition reports ~99.9 for clear faces; YuNet's raw score for them is 0.80–0.95, so client
code ported from AWS that filters on ``Confidence > 95`` dropped every face. This script fits
a logistic (Platt) map ``P(face | score) = 1 / (1 + exp(-(a·logit(score) + b)))``, with
Platt's smoothed targets, on YuNet's candidates for faces and for non-faces, and checks it on held-out images:

- **faces**: in each image (LFW, grayscale 250×250; UTKFace, colour 200×200 crops) the
  candidate nearest the centre, within a quarter of the image's side of it, at a score
  threshold of 0.02 (each image holds one main face, centred);
- **non-faces**: in the UTKFace images (tight crops around one face), every candidate at
  score ≥ 0.02 with that face blanked out (the face box, grown by half its size, filled with
  the image's mean grey), plus the other candidates of the unmasked image that do not overlap
  the main face and lie away from it. LFW images give faces only: they are cut from news
  photos and often hold other people, whose faces would be counted as non-faces (a first run
  that used them put ~1 % of its "non-faces" above 0.9).

Images are split by identity (LFW person, UTKFace file) into a fit half and a check half.
Classes are weighted equally in the fit (a prior of 1/2), so the confidence answers "is this
candidate a face?" without depending on how many non-face candidates an image happens to hold.
On the check half it reports the calibration by score bin, the Brier score, and the share of
clear frontal faces (|yaw| ≤ 20°, |pitch| ≤ 20°, sharpness ≥ 25 and a box of ≥ 80 px) that reach
99. It writes the parameters to ``src/facetrust/data/confidence-yunet-2023mar.json`` (aggregate
numbers only: no image, score or name) and ``bench/results/confidence.{json,md}``::

    nice -n 5 .venv/bin/python bench/confidence.py            # --lfw 2000 --utk 2400
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from host import load_avg, machine_info
from lfw_data import data_root

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SHIPPED = ROOT / "src" / "facetrust" / "data" / "confidence-yunet-2023mar.json"
LOW = 0.02  # candidates at or above this score are collected


def _images(lfw: int, utk: int) -> list[tuple[str, Path]]:
    """(identity, path): the first image of ``lfw`` LFW people and ``utk`` UTKFace files, sorted."""
    root = data_root()
    people = sorted(p for p in (root / "lfw" / "images").iterdir() if p.is_dir())[:lfw]
    out = [(p.name, sorted(p.iterdir())[0]) for p in people]
    files = sorted((root / "utkface" / "images").iterdir())[:utk]
    out += [(f.name, f) for f in files]
    return out


def _fit_half(identity: str) -> bool:
    return hashlib.sha256(identity.encode()).digest()[0] % 2 == 0


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    h = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _candidates(detector: Any, rgb: np.ndarray) -> list[Any]:
    return list(detector.detect(rgb))


def _collect(detector: Any, items: list[tuple[str, Path]]) -> dict[str, list[Any]]:
    """Per half: faces (score, is clear frontal) and non-face scores."""
    from PIL import Image

    from facetrust.analysis import build_face

    out: dict[str, list[Any]] = {"fit_pos": [], "fit_neg": [], "check_pos": [], "check_neg": []}
    for n, (identity, path) in enumerate(items):
        half = "fit" if _fit_half(identity) else "check"
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        height, width = rgb.shape[:2]
        found = _candidates(detector, rgb)
        cx, cy = width / 2, height / 2
        central = [
            d for d in found if math.hypot(d.box[0] + d.box[2] / 2 - cx, d.box[1] + d.box[3] / 2 - cy) < width / 4
        ]
        if not central:
            continue
        face = max(central, key=lambda d: d.score)
        built = build_face(rgb, face, min_face_size=40)
        clear = (
            abs(built.pose.yaw) <= 20
            and abs(built.pose.pitch) <= 20
            and built.quality.sharpness >= 25
            and built.size >= 80
        )
        out[f"{half}_pos"].append((face.score, clear))
        if "lfw" in path.parts:  # LFW photos often hold other people too: their faces are not non-faces
            continue
        for d in found:
            far = math.hypot(d.box[0] + d.box[2] / 2 - cx, d.box[1] + d.box[3] / 2 - cy) > width / 3
            if d is not face and _iou(d.box, face.box) < 0.05 and far:
                out[f"{half}_neg"].append(d.score)
        masked = rgb.copy()
        left, top, w, h = face.box
        x0, y0 = max(0, int(left - w / 4)), max(0, int(top - h / 4))
        x1, y1 = min(width, int(left + w * 1.25)), min(height, int(top + h * 1.25))
        masked[y0:y1, x0:x1] = rgb.mean(axis=(0, 1)).astype(np.uint8)
        for d in _candidates(detector, masked):
            if _iou(d.box, (x0, y0, x1 - x0, y1 - y0)) < 0.3:
                out[f"{half}_neg"].append(d.score)
        if n % 500 == 0:
            print(f"{n}/{len(items)} images", file=sys.stderr)
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_platt(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """(a, b) maximising the class-balanced log-likelihood of P = σ(a·logit(s) + b), by Newton's method.

    The targets are Platt's (N₊ + 1)/(N₊ + 2) for faces and 1/(N₋ + 2) for non-faces rather than
    1 and 0: faces and non-faces barely overlap in score, and with hard 0/1 targets the fit
    would grow ever steeper (a step at one arbitrary score in the gap) instead of converging.
    """
    x = np.concatenate([_logit(pos), _logit(neg)])
    y = np.concatenate([np.full(len(pos), (len(pos) + 1) / (len(pos) + 2)), np.full(len(neg), 1 / (len(neg) + 2))])
    weight = np.concatenate([np.full(len(pos), 0.5 / len(pos)), np.full(len(neg), 0.5 / len(neg))])
    a, b = 1.0, 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-(a * x + b)))
        g = np.array([np.sum(weight * (p - y) * x), np.sum(weight * (p - y))])
        s = weight * p * (1 - p)
        hess = np.array([[np.sum(s * x * x), np.sum(s * x)], [np.sum(s * x), np.sum(s)]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, g)
        a, b = a - step[0], b - step[1]
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(a), float(b)


def confidence(scores: np.ndarray, a: float, b: float) -> np.ndarray:
    return 100 / (1 + np.exp(-(a * _logit(scores) + b)))


def _check(pos: list[tuple[float, bool]], neg: list[float], a: float, b: float) -> dict[str, Any]:
    ps = np.array([s for s, _ in pos])
    clear = np.array([c for _, c in pos])
    ns = np.array(neg)
    cp, cn = confidence(ps, a, b), confidence(ns, a, b)
    bins = []
    for low, high in [(0, 50), (50, 90), (90, 99), (99, 100.01)]:
        in_p, in_n = ((cp >= low) & (cp < high)).sum(), ((cn >= low) & (cn < high)).sum()
        # the share of faces among candidates in the bin, at equal class weights (as fitted)
        wp, wn = in_p / max(len(ps), 1), in_n / max(len(ns), 1)
        mean_conf = (
            float(np.concatenate([cp[(cp >= low) & (cp < high)], cn[(cn >= low) & (cn < high)]]).mean())
            if in_p + in_n
            else None
        )
        bins.append(
            {
                "confidence": f"{low}–{min(high, 100):g}",
                "faces": int(in_p),
                "non_faces": int(in_n),
                "face_share_balanced": round(wp / (wp + wn), 4) if wp + wn else None,
                "mean_confidence": round(mean_conf, 2) if mean_conf is not None else None,
            }
        )
    brier = float(0.5 * np.mean((cp / 100 - 1) ** 2) + 0.5 * np.mean((cn / 100) ** 2))
    return {
        "faces": len(ps),
        "non_faces": len(ns),
        "clear_frontal_faces": int(clear.sum()),
        "clear_frontal_at_99_or_more": round(float((cp[clear] >= 99).mean()), 4) if clear.any() else None,
        "faces_at_99_or_more": round(float((cp >= 99).mean()), 4),
        "faces_at_95_or_more": round(float((cp >= 95).mean()), 4),
        "non_faces_at_95_or_more": round(float((cn >= 95).mean()), 4) if len(ns) else None,
        "non_faces_at_50_or_more": round(float((cn >= 50).mean()), 4) if len(ns) else None,
        "raw_score_median_faces": round(float(np.median(ps)), 4),
        "raw_score_median_non_faces": round(float(np.median(ns)), 4) if len(ns) else None,
        "brier_balanced": round(brier, 5),
        "bins": bins,
    }


def _markdown(report: dict[str, Any]) -> str:
    m, c, p = report["machine"], report["check"], report["params"]
    lines = [
        "# Detector score → Rekognition-scale confidence (bench/confidence.py)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['date']}; load average "
        f"{m['load_before'][0]} → {m['load_after'][0]}.",
        "",
        f"Fitted on {report['fit']['faces']:,} faces and {report['fit']['non_faces']:,} non-face candidates "
        f"(half of {report['images']:,} LFW + UTKFace images, split by identity): "
        f"confidence = 100 · σ({p['a']:.4f} · logit(score) + {p['b']:.4f}).",
        "",
        f"Held-out half: {c['faces']:,} faces, {c['non_faces']:,} non-face candidates.",
        "",
        "| measure | value |",
        "|---|---|",
        "| clear frontal faces at confidence ≥ 99 | "
        f"{c['clear_frontal_at_99_or_more']:.1%} of {c['clear_frontal_faces']:,} |",
        f"| all faces at ≥ 99 / ≥ 95 | {c['faces_at_99_or_more']:.1%} / {c['faces_at_95_or_more']:.1%} |",
        "| non-face candidates at ≥ 95 / ≥ 50 | "
        f"{c['non_faces_at_95_or_more']:.1%} / {c['non_faces_at_50_or_more']:.1%} |",
        f"| median raw score, faces / non-faces | {c['raw_score_median_faces']} / {c['raw_score_median_non_faces']} |",
        f"| Brier score (classes weighted equally) | {c['brier_balanced']} |",
        "",
        "| confidence bin | faces | non-faces | face share (equal class weights) | mean confidence |",
        "|---|---|---|---|---|",
    ]
    for b in c["bins"]:
        share, mean = b["face_share_balanced"], b["mean_confidence"]
        lines.append(f"| {b['confidence']} | {b['faces']:,} | {b['non_faces']:,} | {share} | {mean} |")
    lines += ["", "| raw score | confidence |", "|---|---|"]
    for s, v in report["table"]:
        lines.append(f"| {s} | {v} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=int, default=2000)
    parser.add_argument("--utk", type=int, default=2400)
    args = parser.parse_args()
    from facetrust.config import Settings
    from facetrust.models.catalog import CATALOG
    from facetrust.models.files import prepared_model_path
    from facetrust.models.yunet import YuNetDetector

    machine = machine_info()
    path = prepared_model_path(CATALOG["yunet-2023mar"], Settings().resolved_cache_dir)
    detector = YuNetDetector(path, score_threshold=LOW)
    items = _images(args.lfw, args.utk)
    data = _collect(detector, items)
    if os.environ.get("FACETRUST_CONFIDENCE_DUMP"):  # for trying other fits offline: aggregate scores only
        Path(os.environ["FACETRUST_CONFIDENCE_DUMP"]).write_text(json.dumps(data))
    pos = np.array([s for s, _ in data["fit_pos"]])
    neg = np.array(data["fit_neg"])
    a, b = fit_platt(pos, neg)
    check = _check(data["check_pos"], data["check_neg"], a, b)
    machine["load_after"] = load_avg()
    table = [
        (s, round(float(confidence(np.array([s]), a, b)[0]), 2)) for s in (0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
    ]
    report = {
        "machine": machine,
        "images": len(items),
        "params": {"a": round(a, 6), "b": round(b, 6)},
        "fit": {"faces": len(pos), "non_faces": len(neg)},
        "check": check,
        "table": table,
    }
    shipped = {
        "model": CATALOG["yunet-2023mar"].model_id,
        "form": "confidence = 100 / (1 + exp(-(a * logit(score) + b))), score clipped to [1e-6, 1 - 1e-6]",
        "a": round(a, 6),
        "b": round(b, 6),
        "fitted_on": (
            f"{len(pos)} face (LFW + UTKFace) and {len(neg)} non-face (UTKFace) YuNet candidates, "
            "fit half by identity, classes weighted equally"
        ),
        "made_by": "bench/confidence.py",
    }
    SHIPPED.write_text(json.dumps(shipped, indent=2) + "\n")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "confidence.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "confidence.md").write_text(_markdown(report))
    print(_markdown(report))


if __name__ == "__main__":
    main()
