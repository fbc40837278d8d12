"""Generated clips for the video tests: fake faces (for the fake engine) moving over a moving background."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.models.fake import fake_engine
from facetrust.video.synth import Truth, story_scene, write_clip

if TYPE_CHECKING:
    import numpy as np

FPS = 15  # story_scene's frame rate


@pytest.fixture
def video_engine() -> FaceEngine:
    """The fake engine, with a minimum face size the 48-pixel fake faces pass."""
    return fake_engine(Settings(flip_augment=False, min_face_size=20))


@pytest.fixture(scope="session")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    path = tmp_path_factory.mktemp("clips") / "story.mp4"
    return path, write_clip(path, story_scene(), audio=True, crf=1)


def write_frames(
    path: Path,
    frames: list[np.ndarray],
    *,
    times_ms: list[int] | None = None,
    rotation: int = 0,
    fps: int = 15,
    pix_fmt: str = "yuv420p",
) -> None:
    """Write RGB ``frames`` as lossless-ish H.264 at ``path``, each at ``times_ms`` (default: every
    1/fps s) and with a display rotation (degrees counterclockwise) when asked."""
    from fractions import Fraction

    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.options = {"crf": "1", "preset": "ultrafast"}
        if times_ms is not None:
            video.time_base = video.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            video.set_display_rotation(rotation)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if times_ms is not None:
                frame.pts, frame.time_base = times_ms[i], Fraction(1, 1000)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)


def still(width: int, height: int, faces: tuple[tuple[int, int, int, int], ...]) -> np.ndarray:
    """A grey frame with fake faces drawn as ``(left, top, size, pattern)``."""
    import numpy as np

    from facetrust.models.fake import draw_face

    image = np.full((height, width, 3), 60, np.uint8)
    for left, top, size, pattern in faces:
        draw_face(image, left, top, size, pattern)
    return image
