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


def write_with_picture(path: Path, frames: list[np.ndarray], picture: int, *, cover: bool) -> None:
    """Write a one-frame MJPEG ``picture``×``picture`` video stream (cover art when ``cover``:
    marked as an attached picture) and then ``frames`` as H.264, at 15 fps."""
    from fractions import Fraction

    import av
    import numpy as np
    from av.stream import Disposition

    with av.open(str(path), mode="w") as out:
        still_stream = out.add_stream("mjpeg", rate=1)
        still_stream.width = still_stream.height = picture
        still_stream.pix_fmt = "yuvj420p"
        if cover:
            still_stream.disposition = Disposition.attached_pic
        video = out.add_stream("libx264", rate=15)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt, video.options = "yuv420p", {"crf": "1", "preset": "ultrafast"}
        image = av.VideoFrame.from_ndarray(np.full((picture, picture, 3), 255, np.uint8), format="rgb24")
        image.pts = 0
        for packet in [*still_stream.encode(image), *still_stream.encode()]:
            out.mux(packet)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 15)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
