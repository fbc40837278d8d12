"""Stored video on this machine: speed (× real time), tracking quality, search accuracy, redaction leak rate.

    nice -n 5 .venv/bin/python bench/video.py          # writes bench/results/video.json and .md

Every clip is generated (facetrust.video.synth): LFW faces (../shared/data/lfw, or
$FACETRUST_DATA/lfw) pasted onto a moving background with exact positions, so ground truth is
exact. Nothing is downloaded.

* Speed: a 10 s, 1280×720, 30 fps H.264 clip with three people walking, processed at the
  default sampling (the ``video_sample_fps`` setting, 10 frames a second): decode only,
  detect+track, search (a collection of the enrolled people), redact (decode, detect, track,
  blur, encode H.264). Reported as seconds of video per second of processing (≥ 1 is real time).
* Tracking: clips of 640×360 at 30 fps, 6 s, three people each in their own lane, entering
  and leaving, one occluded for 0.5 s, and a cut after which every person changes lane. On
  the frames looked at, ground-truth faces are matched to detections by IoU ≥ 0.3: MOTA =
  1 − (misses + false positives + identity switches) / ground-truth faces.
* Search: the people of the tracking clips are enrolled with another LFW photo of each
  (`_0001`; the clip shows `_0002`), with 20 more people as distractors; a person is right
  when every track on them has its best match (Similarity ≥ 80) on their own enrolled face;
  wrong when a track on them matches someone else.
* Redaction leak rate: the boxes redaction plans for every frame (not only the ones looked
  at) against the ground truth; a frame leaks when some face has less than 90 % of its
  area covered. Measured on the tracking clips, then on hard cases: small faces (36 px
  patches, faces about 20 px), faces turned away (squeezed to half their width: a crude
  profile), and blurred faces (Gaussian, σ = 4 px).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_data as L
from facetrust.config import Settings
from facetrust.engine import load_engine
from facetrust.service import FaceService
from facetrust.service.video import governed_video_search
from facetrust.types import BoundingBox
from facetrust.video import VideoOptions, detect_video, iter_frames
from facetrust.video.redact import RedactOptions, plan_boxes, redact_video
from facetrust.video.synth import LFW_FACE_INSET, Scene, ScenePerson, Truth, lfw_face_patch, write_clip
from facetrust.video.tracker import iou
from host import load_avg
from lfw import machine

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 20261129
CLIPS = 6


def people(root: Path, count: int) -> list[str]:
    """The first ``count`` people (sorted) with at least two LFW images."""
    out = []
    for folder in sorted((root / "images").iterdir()):
        if (folder / f"{folder.name}_0002.jpg").is_file():
            out.append(folder.name)
        if len(out) == count:
            break
    return out


def photo(root: Path, name: str, number: int) -> Path:
    return root / "images" / name / f"{name}_{number:04d}.jpg"


def lane_scene(patches: list[np.ndarray], rng: np.random.Generator, size: int = 110, **extra: Any) -> Scene:
    """Three people in three lanes of a 640×360 frame; at the cut each takes the next lane."""
    lanes = [(20, 0), (20, 125), (20, 250)]
    persons = []
    for i, patch in enumerate(patches):
        x0 = float(rng.uniform(0, 400))
        vx = float(rng.uniform(-50, 50))
        dy = lanes[(i + 1) % 3][1] - lanes[i][1]
        persons.append(
            ScenePerson(
                patch,
                size,
                (x0, lanes[i][1] + 5),
                (vx, 0.0),
                enter_s=[0.0, 1.0, 0.0][i],
                leave_s=[6.0, 6.0, 5.0][i],
                occluded=((2.0, 2.5),) if i == 0 else (),
                cut_offsets=((float(rng.uniform(-100, 100)), float(dy)),),
                face_inset=LFW_FACE_INSET,
                **extra,
            )
        )
    return Scene(640, 360, 30, 6.0, tuple(persons), cuts=(3.5,), seed=int(rng.integers(1 << 30)))


def tracking_metrics(found: Any, truth: Truth) -> dict[str, int]:
    """Misses, false positives, identity switches and ground-truth faces on the frames looked at."""
    by_frame: dict[int, list[tuple[int, BoundingBox]]] = {}
    for f in found.faces:
        by_frame.setdefault(f.frame_index, []).append((f.person, f.face.box))
    sampled = sorted({f.frame_index for f in found.faces} | _sampled_frames(found))
    last: dict[int, int] = {}
    gt = misses = fps = switches = 0
    for frame in sampled:
        dets = list(by_frame.get(frame, []))
        for person, box in truth.frames[frame]:
            gt += 1
            best = max(dets, key=lambda d: iou(d[1], box), default=None)
            if best is None or iou(best[1], box) < 0.3:
                misses += 1
                continue
            dets.remove(best)
            if person in last and last[person] != best[0]:
                switches += 1
            last[person] = best[0]
        fps += len(dets)
    return {"ground_truth": gt, "misses": misses, "false_positives": fps, "id_switches": switches}


def _sampled_frames(found: Any) -> set[int]:
    step = found.info.frame_rate / found.sample_fps
    return {int(round(i * step)) for i in range(found.frames_sampled)}


def covered(box: BoundingBox, boxes: list[BoundingBox], shape: tuple[int, int]) -> float:
    """The fraction of ``box`` inside the union of ``boxes``."""
    mask = np.zeros(shape, np.uint8)
    for b in boxes:
        cv2.rectangle(mask, (int(b.left), int(b.top)), (int(b.left + b.width), int(b.top + b.height)), 1, -1)
    x0, y0 = max(int(box.left), 0), max(int(box.top), 0)
    x1, y1 = min(int(box.left + box.width), shape[1]), min(int(box.top + box.height), shape[0])
    region = mask[y0:y1, x0:x1]
    return float(region.mean()) if region.size else 1.0


def leak_frames(found: Any, truth: Truth, shape: tuple[int, int]) -> tuple[int, int]:
    """(frames where a face is less than 90 % covered, frames with a face)."""
    plan = plan_boxes(found, RedactOptions(), frames=len(truth.frames))
    leaks = with_faces = 0
    for frame, visible in enumerate(truth.frames):
        if not visible:
            continue
        with_faces += 1
        if any(covered(box, plan.get(frame, []), shape) < 0.9 for _, box in visible):
            leaks += 1
    return leaks, with_faces


def search_outcome(
    result: Any, truth: Truth, names: list[str], enrolled: dict[str, str], wrong_log: list[str]
) -> tuple[int, int, int]:
    """(people right, people with a wrong match, people) for one clip; wrong matches described in ``wrong_log``."""
    tracks_of: dict[int, set[int]] = {}
    _ON.clear()
    for pm in result.persons:
        for sight in pm.person.faces:
            best = max(truth.frames[sight.frame_index], key=lambda pb: iou(pb[1], sight.face.box), default=None)
            if best is not None and iou(best[1], sight.face.box) >= 0.3:
                tracks_of.setdefault(best[0], set()).add(pm.person.index)
                _ON.setdefault(pm.person.index, set()).add(best[0])
    matches = {pm.person.index: pm.matches for pm in result.persons}
    right = wrong = 0
    for person, name in enumerate(names):
        tracks = tracks_of.get(person, set())
        tops = [matches[t][0].face.face_id if matches[t] else None for t in tracks]
        if any(top is not None and top != enrolled.get(name) for top in tops):
            wrong += 1
            for t in tracks:
                if matches[t] and matches[t][0].face.face_id != enrolled.get(name):
                    m = matches[t][0]
                    wrong_log.append(
                        f"{name} (track {t}, on {len(_ON.get(t, set()))} people) → "
                        f"{m.face.external_image_id} at Similarity {m.similarity:.1f}"
                    )
        elif tops and all(top == enrolled.get(name) for top in tops):
            right += 1
    return right, wrong, len(names)


_ON: dict[int, set[int]] = {}
"""For the clip search_outcome last looked at: track → the ground-truth people its sightings lie on."""


def squeeze(patch: np.ndarray) -> np.ndarray:
    """A face turned away, crudely: squeezed to half its width, on the patch's own edge colour."""
    h, w = patch.shape[:2]
    out = np.empty_like(patch)
    out[:] = patch[:, :1]
    narrow = cv2.resize(patch, (w // 2, h), interpolation=cv2.INTER_AREA)
    out[:, w // 2 - w // 4 : w // 2 - w // 4 + w // 2] = narrow
    return out


def blurred(patch: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(patch, (0, 0), 4)


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = work()
    return time.perf_counter() - start, out


def speed(service: FaceService, patches: list[np.ndarray], folder: Path, options: VideoOptions) -> dict[str, Any]:
    rng = np.random.default_rng(SEED)
    persons = tuple(
        ScenePerson(p, 180, (float(rng.uniform(0, 900)), 60.0 + 220 * i), (float(rng.uniform(-60, 60)), 0.0))
        for i, p in enumerate(patches)
    )
    clip = folder / "speed.mp4"
    write_clip(clip, Scene(1280, 720, 30, 10.0, persons, seed=SEED), crf=23)
    seconds = 10.0
    decode_s, _ = timed(lambda: sum(1 for _ in iter_frames(clip, sample_fps=240)))
    detect_s, found = timed(lambda: detect_video(clip, service.engine, options))
    search_s, _ = timed(lambda: governed_video_search(service.ctx, "people", clip, options=options))
    redact_s, _ = timed(lambda: redact_video(clip, folder / "speed-redacted.mp4", service.engine, video=options))
    return {
        "clip": "1280x720, 30 fps, 10 s, H.264, 3 faces of about 180 px",
        "sample_fps": options.sample_fps,
        "persons_tracked": len(found.persons),
        "seconds": {
            "decode_rgb_all_frames": decode_s,
            "detect_track": detect_s,
            "search": search_s,
            "redact": redact_s,
        },
        "x_real_time": {
            "decode_rgb_all_frames": seconds / decode_s,
            "detect_track": seconds / detect_s,
            "search": seconds / search_s,
            "redact": seconds / redact_s,
        },
        "load_avg_after": load_avg(),
    }


def quality(
    service: FaceService, root: Path, names: list[str], enrolled: dict[str, str], folder: Path
) -> dict[str, Any]:
    options = VideoOptions.from_settings(service.engine.settings)
    rng = np.random.default_rng(SEED + 1)
    totals = {"ground_truth": 0, "misses": 0, "false_positives": 0, "id_switches": 0}
    right = wrong = people_total = leaks = frames = 0
    wrong_log: list[str] = []
    for c in range(CLIPS):
        cast = names[3 * c : 3 * c + 3]
        scene = lane_scene([lfw_face_patch(photo(root, n, 2)) for n in cast], rng)
        clip = folder / f"track{c}.mp4"
        truth = write_clip(clip, scene)
        result = governed_video_search(service.ctx, "people", clip, options=options)
        for key, value in tracking_metrics(result.video, truth).items():
            totals[key] += value
        r, w, n = search_outcome(result, truth, cast, enrolled, wrong_log)
        right, wrong, people_total = right + r, wrong + w, people_total + n
        lk, fr = leak_frames(result.video, truth, (scene.height, scene.width))
        leaks, frames = leaks + lk, frames + fr
    errors = totals["misses"] + totals["false_positives"] + totals["id_switches"]
    return {
        "clips": CLIPS,
        "tracking": {**totals, "mota": 1 - errors / max(totals["ground_truth"], 1)},
        "search": {
            "people": people_total,
            "right": right,
            "wrong_identity": wrong,
            "accuracy": right / people_total,
            "wrong_matches": wrong_log,
        },
        "leak": {"frames_with_faces": frames, "frames_leaking": leaks, "rate": leaks / max(frames, 1)},
    }


def hard_cases(service: FaceService, root: Path, names: list[str], folder: Path) -> dict[str, Any]:
    options = VideoOptions.from_settings(service.engine.settings)
    cases: dict[str, tuple[Callable[[np.ndarray], np.ndarray], int]] = {
        "small (36 px patch, face ≈ 20 px)": (lambda p: p, 36),
        "turned away (squeezed to half width)": (squeeze, 110),
        "blurred (Gaussian σ 4 px)": (blurred, 110),
    }
    out = {}
    for label, (change, size) in cases.items():
        rng = np.random.default_rng(SEED + 2)
        leaks = frames = 0
        for c in range(3):
            cast = names[3 * c : 3 * c + 3]
            scene = lane_scene([change(lfw_face_patch(photo(root, n, 2))) for n in cast], rng, size=size)
            clip = folder / f"hard{c}.mp4"
            truth = write_clip(clip, scene)
            found = detect_video(clip, service.engine, options)
            lk, fr = leak_frames(found, truth, (scene.height, scene.width))
            leaks, frames = leaks + lk, frames + fr
        out[label] = {"frames_with_faces": frames, "frames_leaking": leaks, "rate": leaks / max(frames, 1)}
    return out


def render(result: dict[str, Any]) -> str:
    s, q = result["speed"], result["quality"]
    x = s["x_real_time"]
    lines = [
        "# Stored video (bench/video.py)",
        "",
        f"Machine: {result['machine']}; load average before {result['load_avg_before']}, after "
        f"{s['load_avg_after']} (1/5/15 min; other work may share the 2 cores); niceness {os.nice(0)}.",
        "",
        f"## Speed: {s['clip']}, sampling {s['sample_fps']:g} frames/s",
        "",
        "| step | seconds | × real time |",
        "|---|---|---|",
        *(f"| {k} | {s['seconds'][k]:.1f} | {x[k]:.2f} |" for k in x),
        "",
        f"## Quality: {q['clips']} generated clips (640×360, 30 fps, 6 s, 3 LFW people, an occlusion, a cut)",
        "",
        f"- tracking: MOTA {q['tracking']['mota']:.3f} over {q['tracking']['ground_truth']} ground-truth faces on "
        f"the frames looked at ({q['tracking']['misses']} misses, {q['tracking']['false_positives']} false "
        f"positives, {q['tracking']['id_switches']} identity switches)",
        f"- search: {q['search']['right']} of {q['search']['people']} people matched to their own enrolled face "
        f"({100 * q['search']['accuracy']:.1f} %); {q['search']['wrong_identity']} matched to someone else"
        + "".join(f"\n  - {w}" for w in q["search"]["wrong_matches"]),
        f"- redaction leak rate: {q['leak']['frames_leaking']} of {q['leak']['frames_with_faces']} frames with a "
        f"face ({100 * q['leak']['rate']:.2f} %)",
        "",
        "## Redaction leak rate on hard cases (3 clips each, default sampling)",
        "",
        "| case | frames with a face | frames leaking | rate |",
        "|---|---|---|---|",
        *(
            f"| {k} | {v['frames_with_faces']} | {v['frames_leaking']} | {100 * v['rate']:.1f} % |"
            for k, v in result["hard_cases"].items()
        ),
        "",
        "A frame leaks when any ground-truth face has less than 90 % of its area inside the boxes redaction "
        "plans for that frame (every frame, not only those looked at).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    # no options: --help says what the script does and writes, instead of running it
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    root = L.lfw_root()
    names = people(root, 3 * CLIPS + 20)
    before = load_avg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = Settings()
        service = FaceService(folder / "data", load_engine(settings))
        try:
            service.create_collection("people")
            enrolled = {}
            for name in names:
                done = service.index_faces("people", str(photo(root, name, 1)), external_image_id=name, max_faces=1)
                if done.indexed:
                    enrolled[name] = done.indexed[0].stored.face_id
            options = VideoOptions.from_settings(settings)
            patches = [lfw_face_patch(photo(root, n, 2)) for n in names[:3]]
            result: dict[str, Any] = {
                "machine": machine(),
                "load_avg_before": before,
                "speed": speed(service, patches, folder, options),
                "quality": quality(service, root, names[: 3 * CLIPS], enrolled, folder),
                "hard_cases": hard_cases(service, root, names, folder),
            }
        finally:
            service.close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "video.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "video.md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
