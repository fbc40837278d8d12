"""Frames and multi-track files for the video tests (tests/video and the CLI's redaction tests
import them from here: a conftest is not a module other test folders can import)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["still", "write_tracks"]


def still(width: int, height: int, faces: tuple[tuple[int, int, int, int], ...]) -> np.ndarray:
    """A grey frame with fake faces drawn as ``(left, top, size, pattern)``."""
    import numpy as np

    from facetrust.models.fake import draw_face

    image = np.full((height, width, 3), 60, np.uint8)
    for left, top, size, pattern in faces:
        draw_face(image, left, top, size, pattern)
    return image


def write_tracks(path: Path, tracks: list[list[np.ndarray]], fps: int = 15) -> None:
    """Write several video tracks, in this order, into one file (a phone's MOV with a preview first)."""
    from fractions import Fraction

    import av

    with av.open(str(path), mode="w") as out:
        streams = []
        for frames in tracks:
            stream = out.add_stream("libx264", rate=fps)
            stream.height, stream.width = frames[0].shape[:2]
            stream.pix_fmt, stream.options = "yuv420p", {"crf": "1", "preset": "ultrafast"}
            streams.append(stream)
        for i in range(len(tracks[0])):
            for stream, frames in zip(streams, tracks):
                frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, fps)
                for packet in stream.encode(frame):
                    out.mux(packet)
        for stream in streams:
            for packet in stream.encode():
                out.mux(packet)
