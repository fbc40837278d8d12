"""Tilted and upside-down faces: the pose estimate and whether a photo still matches itself.

    nice -n 5 .venv/bin/python bench/tilt.py [--people 60]   # writes bench/results/tilt.{json,md}

One LFW photo each of ``--people`` people (a seeded choice) is turned in the picture plane by a
known angle (no EXIF: the pixels themselves) and run through the default engine. For each angle:
how often the face is still found; the error of the reported Roll against the true tilt (the
upright photo's Roll plus the angle; Pillow turns counter-clockwise, facetrust's Roll is positive
clockwise); and the Similarity of the turned face against the upright one through CompareFaces'
path (``FaceEngine.compare``), with the share below Similarity 80. At 180° the share of faces whose
eyes the detector put below its mouth, as the true face has them, says whether it saw the face
upside down. Nothing is fitted: the numbers describe the engine's landmarks (YuNet's, found again
turned upright for a face turned more than 10°: facetrust/straighten.py) and are quoted in
docs/engine.md.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import facetrust
import lfw_data as L
from facetrust.types import Face
from host import cpu_model

ANGLES = (0, 10, 20, 30, 45, 90, 180)
RESULTS = Path(__file__).resolve().parent / "results"


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def central(faces: list[Face], side: int) -> Face | None:
    """The face nearest the picture's centre: LFW's subject."""
    if not faces:
        return None
    return min(
        faces,
        key=lambda f: (f.box.left + f.box.width / 2 - side / 2) ** 2 + (f.box.top + f.box.height / 2 - side / 2) ** 2,
    )


def eyes_below_mouth(face: Face) -> bool:
    """Whether the detector's eyes sit below its mouth in the picture (an upright reading of an
    upside-down face puts them above)."""
    eyes = (face.landmarks.eye_left.y + face.landmarks.eye_right.y) / 2
    mouth = (face.landmarks.mouth_left.y + face.landmarks.mouth_right.y) / 2
    return bool(eyes > mouth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=60, help="LFW people, one photo each (default 60)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    engine = facetrust.load_engine()
    root = L.lfw_root() / "images"
    people = sorted(p.name for p in root.iterdir() if p.is_dir())
    chosen = random.Random(args.seed).sample(people, args.people)
    photos = [sorted((root / name).glob("*.jpg"))[0] for name in chosen]
    rows: dict[int, dict[str, Any]] = {}
    for angle in ANGLES:
        found, errors, sims, flipped = 0, [], [], 0
        for path in photos:
            upright = Image.open(path).convert("RGB")
            first = central(engine.detect(jpeg(upright)), upright.width)
            turned = jpeg(upright.rotate(angle, fillcolor=(128, 128, 128)))
            face = central(engine.detect(turned), upright.width)
            if first is None or face is None:
                continue
            found += 1
            true_roll = (first.pose.roll - angle + 180) % 360 - 180
            errors.append(abs((face.pose.roll - true_roll + 180) % 360 - 180))
            flipped += eyes_below_mouth(face)
            result = engine.compare(jpeg(upright), turned, threshold=80)
            best = max((m.comparison.similarity for m in result.matches + result.unmatched), default=0.0)
            sims.append(best)
        e, s = np.array(errors), np.array(sims)
        rows[angle] = {
            "photos": len(photos),
            "found": found,
            "roll_error_median": round(float(np.median(e)), 1) if e.size else None,
            "roll_error_over_10": round(float(np.mean(e > 10)), 3) if e.size else None,
            "similarity_median": round(float(np.median(s)), 1) if s.size else None,
            "below_80": round(float(np.mean(s < 80)), 3) if s.size else None,
            "eyes_below_mouth": flipped,
        }
        print(angle, rows[angle], flush=True)
    machine = {"machine": platform.machine(), "cpu": cpu_model(), "python": platform.python_version()}
    out = {"script": "bench/tilt.py", "people": args.people, "seed": args.seed, "machine": machine, "angles": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tilt.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = [
        "# Tilted faces: pose and self-match (`bench/tilt.py`)",
        "",
        f"One LFW photo each of {args.people} people (seed {args.seed}), turned in the picture; default engine.",
        f"Machine: {machine['cpu']} ({machine['machine']}), Python {machine['python']}.",
        "",
        "| turned | found | Roll error, median | Roll off > 10° | Similarity to upright, median | below 80 "
        "| eyes below mouth |",
        "|---|---|---|---|---|---|---|",
    ]
    for angle, r in rows.items():
        lines.append(
            f"| {angle}° | {r['found']} of {r['photos']} | {r['roll_error_median']}° | {r['roll_error_over_10']:.0%} "
            f"| {r['similarity_median']} | {r['below_80']:.0%} | {r['eyes_below_mouth']} |"
            if r["found"]
            else f"| {angle}° | 0 of {r['photos']} | – | – | – | – | – |"
        )
    (RESULTS / "tilt.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
