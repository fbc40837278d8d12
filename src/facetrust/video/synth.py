"""Generated test clips with exact ground truth: face patches moving over a moving background.

Tests and ``bench/video.py`` build a ``Scene`` (persons with a face patch, a path, entry and
exit times, occlusions, and cuts where every position jumps and the background changes),
write it with ``write_clip`` (H.264 in MP4/MKV via PyAV, optionally with an audio tone), and
get back the ground truth: for each frame, which person's face is visible where.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from facetrust.types import BoundingBox

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "LFW_FACE_INSET",
    "Scene",
    "ScenePerson",
    "Truth",
    "fake_face_patch",
    "lfw_face_patch",
    "story_scene",
    "write_clip",
]


@dataclass(frozen=True, eq=False)
class ScenePerson:
    """A face patch (RGB, square) drawn at ``size`` pixels, moving at ``velocity`` px/s from ``start``.

    Visible from ``enter_s`` until ``leave_s``, except inside each ``occluded`` interval (a grey
    board covers it); after the n-th cut it is offset by ``cut_offsets[n]``.
    """

    patch: np.ndarray = field(repr=False)
    size: int
    start: tuple[float, float]
    velocity: tuple[float, float] = (0.0, 0.0)
    enter_s: float = 0.0
    leave_s: float = 1e9
    occluded: tuple[tuple[float, float], ...] = ()
    cut_offsets: tuple[tuple[float, float], ...] = ()
    face_inset: float = 0.0


@dataclass(frozen=True)
class Scene:
    width: int
    height: int
    fps: int
    seconds: float
    persons: tuple[ScenePerson, ...]
    cuts: tuple[float, ...] = ()
    seed: int = 0


@dataclass(frozen=True)
class Truth:
    """Per frame: (person number, face box) of every visible face."""

    fps: int
    frames: tuple[tuple[tuple[int, BoundingBox], ...], ...]


def fake_face_patch(pattern: int, size: int = 64) -> np.ndarray:
    """A face the fake detector finds (see ``facetrust.models.fake.draw_face``)."""
    import numpy as np

    from facetrust.models.fake import draw_face

    patch = np.full((size, size, 3), 60, np.uint8)
    return draw_face(patch, 0, 0, size, pattern)


LFW_FACE_INSET = 0.2
"""In an ``lfw_face_patch`` the face lies about this fraction of the side in from each edge."""


def lfw_face_patch(path: str | Path) -> np.ndarray:
    """The central 150×150 pixels of a 250×250 LFW image: the face and a little around it, as RGB."""
    from facetrust.images import load_image

    return load_image(path)[50:200, 50:200].copy()


def _background(scene: Scene, shot: int, t: float) -> np.ndarray:
    import numpy as np

    rng = np.random.default_rng(scene.seed * 100 + shot)
    low = (20, 80)[shot % 2]  # each shot another place: darker and brighter in turn
    tile = rng.integers(low, low + 100, size=(scene.height // 8 + 2, scene.width // 8 + 2, 3), dtype=np.uint8)
    big = np.kron(tile, np.ones((8, 8, 1), np.uint8))
    shift = int(t * 40) % 8 + 8 * (int(t * 40) // 8 % 2)
    return np.ascontiguousarray(big[shift % 16 // 2 : shift % 16 // 2 + scene.height, shift : shift + scene.width])


def _position(person: ScenePerson, t: float, shot: int) -> tuple[float, float]:
    x = person.start[0] + person.velocity[0] * t
    y = person.start[1] + person.velocity[1] * t
    for dx, dy in person.cut_offsets[:shot]:
        x, y = x + dx, y + dy
    return x, y


def render(scene: Scene, index: int) -> tuple[np.ndarray, tuple[tuple[int, BoundingBox], ...]]:
    """Frame ``index`` of ``scene`` and the faces visible in it."""
    import cv2

    t = index / scene.fps
    shot = sum(1 for c in scene.cuts if t >= c)
    image = _background(scene, shot, t)
    visible = []
    for number, person in enumerate(scene.persons):
        if not person.enter_s <= t < person.leave_s:
            continue
        x, y = (int(round(v)) for v in _position(person, t, shot))
        s = person.size
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + s, scene.width), min(y + s, scene.height)
        if x1 - x0 < s // 2 or y1 - y0 < s // 2:
            continue
        patch = cv2.resize(person.patch, (s, s), interpolation=cv2.INTER_AREA)
        image[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]
        if any(a <= t < b for a, b in person.occluded):
            image[y0:y1, x0:x1] = 128
            continue
        inset = person.face_inset * s
        visible.append((number, BoundingBox(x0 + inset, y0 + inset, x1 - x0 - 2 * inset, y1 - y0 - 2 * inset)))
    return image, tuple(visible)


def write_clip(path: str | Path, scene: Scene, *, audio: bool = False, crf: int = 18) -> Truth:
    """Write ``scene`` as H.264 (yuv420p) at ``path`` (.mp4/.mkv/.mov), with a 440 Hz tone when ``audio``."""
    import av
    import numpy as np

    frames_total = int(round(scene.seconds * scene.fps))
    truth = []
    with av.open(str(path), mode="w") as out:
        video = out.add_stream("libx264", rate=scene.fps)
        video.width, video.height, video.pix_fmt = scene.width, scene.height, "yuv420p"
        video.options = {"crf": str(crf), "preset": "ultrafast"}
        sound = out.add_stream("aac", rate=16000) if audio else None
        for i in range(frames_total):
            image, visible = render(scene, i)
            truth.append(visible)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            samples = int(scene.seconds * 16000)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 16000)).astype(np.float32)[None, :]
            chunk = 1024
            for start in range(0, samples, chunk):
                frame = av.AudioFrame.from_ndarray(tone[:, start : start + chunk], format="fltp", layout="mono")
                frame.sample_rate = 16000
                frame.pts = start
                for packet in sound.encode(frame):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return Truth(scene.fps, tuple(truth))


def story_scene() -> Scene:
    """The tests' story with fake faces: person 0 walks right and jumps 60 px at a cut at 2.2 s;
    person 1 enters at 1.0 s and is hidden behind a board from 1.5 s to 2.0 s. 240×160, 15 fps, 3 s."""
    return Scene(
        240,
        160,
        15,
        3.0,
        (
            ScenePerson(fake_face_patch(1), 48, (10, 10), (20, 5), cut_offsets=((60, 0),)),
            ScenePerson(fake_face_patch(2), 48, (170, 90), (-10, 0), enter_s=1.0, occluded=((1.5, 2.0),)),
        ),
        cuts=(2.2,),
        seed=1,
    )
