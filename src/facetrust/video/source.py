"""Video files in: PyAV opens and probes them, checks the limits, and yields sampled RGB frames."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facetrust.errors import InvalidParameterError, InvalidVideoError, VideoTooLargeError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "Frame",
    "FrameLog",
    "PlayClock",
    "VideoInfo",
    "VideoLimits",
    "iter_frames",
    "main_audio_stream",
    "main_video_stream",
    "open_video",
    "other_streams",
    "probe_video",
    "upright",
]

log = logging.getLogger(__name__)

VideoPath = str | PathLike[str]


@dataclass(frozen=True)
class VideoLimits:
    """What a video may be: at most ``seconds`` long, ``pixels`` per frame and ``frames`` frames,
    with at most ``sightings`` faces seen on the frames looked at (all of them are kept until the
    video's end, so they bound a pass's memory)."""

    seconds: float = 3600.0
    pixels: int = 3840 * 2160
    frames: int = 500_000
    sightings: int = 200_000

    @classmethod
    def from_settings(cls, settings: Any) -> VideoLimits:
        return cls(
            settings.max_video_seconds,
            settings.max_video_pixels,
            settings.max_video_frames,
            settings.max_video_sightings,
        )


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video's main video stream (Rekognition's ``VideoMetadata``)."""

    codec: str
    format: str
    width: int
    height: int
    frame_rate: float
    duration_ms: int
    frame_count: int
    has_audio: bool


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame: its index among all decoded frames, its time and its RGB pixels."""

    index: int
    timestamp_ms: int
    image: np.ndarray


@dataclass
class FrameLog:
    """What a pass over a video saw besides its sampled frames: the time of every decoded frame
    (by decoded index) and the display rotation of the first (degrees counterclockwise, a multiple
    of 90: a phone's portrait video is stored sideways with a rotation to show it upright)."""

    times_ms: list[int] = field(default_factory=list)
    rotation: int = 0


def rotation_of(frame: Any) -> int:
    """The frame's display rotation, counterclockwise, to the nearest multiple of 90 degrees (0–270)."""
    angle = getattr(frame, "rotation", 0) or 0
    return int(round(float(angle) / 90.0)) % 4 * 90


def upright(frame: Any) -> np.ndarray:
    """The frame's RGB pixels as it is shown: turned by its display rotation."""
    import numpy as np

    rgb = frame.to_ndarray(format="rgb24")
    turns = rotation_of(frame) // 90
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _label(path: VideoPath) -> str:
    return Path(path).name


def open_video(path: VideoPath) -> Any:
    """An open PyAV input container for ``path``, or ``InvalidVideoError`` naming the file."""
    import av

    p = Path(path)
    if not p.is_file():
        raise InvalidVideoError("no such video file", source=_label(path))
    try:
        container = av.open(str(p), mode="r")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidVideoError(
            f"not a video FFmpeg can read ({exc.__class__.__name__})", source=_label(path)
        ) from None
    if _image_format(container.format.name):
        container.close()
        raise InvalidVideoError(
            f"the file is a still image ({container.format.name}), not a video", source=_label(path)
        )
    if not _moving(container):
        container.close()
        what = "only a still picture (cover art)" if container.streams.video else "no video stream"
        raise InvalidVideoError(f"the file holds {what}", source=_label(path))
    return container


def _image_format(name: str) -> bool:
    """FFmpeg's demuxers of still images (a JPEG, PNG, WebP … file: ``image2``, ``jpeg_pipe``,
    ``png_pipe`` …), which read one picture as a one-frame video; an animated GIF is ``gif``."""
    return name in ("image2", "image2pipe") or name.endswith("_pipe")


def _still(stream: Any) -> bool:
    """An attached picture (cover art) or a still image stored as a video stream."""
    from av.stream import Disposition

    return bool(stream.disposition & (Disposition.attached_pic | Disposition.still_image))


def _moving(container: Any) -> list[Any]:
    return [s for s in container.streams.video if not _still(s)]


def main_video_stream(container: Any) -> Any:
    """The stream a video's pictures are read from: the largest (width × height) video stream that
    is not a still picture (cover art); of equal ones, the one of the highest frame rate (a
    one-frame picture stored as a track of its own runs at a frame a second or so, unmarked), then
    the first. A phone's MOV may hold a small preview track before the main one; the first stream
    is not always the video."""

    def size(stream: Any) -> tuple[int, float, int]:
        ctx = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate or 0
        return (ctx.width or 0) * (ctx.height or 0), float(rate), -stream.index

    return max(_moving(container), key=size)


def main_audio_stream(container: Any) -> Any | None:
    """The audio stream a redacted copy carries (FFmpeg's best one), or None without audio."""
    if not container.streams.audio:
        return None
    return container.streams.best("audio") or container.streams.audio[0]


def other_streams(container: Any) -> tuple[str, ...]:
    """Every stream but the main video and audio ones, described: what a redacted copy drops."""
    kept = {main_video_stream(container).index}
    audio = main_audio_stream(container)
    if audio is not None:
        kept.add(audio.index)
    out = []
    for stream in container.streams:
        if stream.index in kept:
            continue
        ctx = stream.codec_context
        codec = ctx.name if ctx is not None else "unknown"
        what = f"stream {stream.index}: {stream.type} {codec}"
        if stream.type == "video":
            what += f" {ctx.width}x{ctx.height}" + (" (still picture)" if _still(stream) else "")
        out.append(what)
    return tuple(out)


def _info(container: Any, path: VideoPath) -> VideoInfo:
    stream = main_video_stream(container)
    ctx = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate or Fraction(0)
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / 1_000_000
    else:
        seconds = 0.0
    frames = int(stream.frames or round(seconds * float(rate)))
    if not ctx.width or not ctx.height or float(rate) <= 0:
        raise InvalidVideoError("the video stream has no frame size or frame rate", source=_label(path))
    return VideoInfo(
        codec=str(ctx.name),
        format=str(container.format.name).split(",")[0],
        width=int(ctx.width),
        height=int(ctx.height),
        frame_rate=float(rate),
        duration_ms=int(round(seconds * 1000)),
        frame_count=frames,
        has_audio=bool(container.streams.audio),
    )


def _amount(value: float) -> str:
    """A count or a length as written in settings: 33177600, not 3.31776e+07; 3600.5 s as it is."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def check_limits(info: VideoInfo, limits: VideoLimits, source: str | None = None) -> None:
    """Raise ``VideoTooLargeError`` naming the first limit ``info`` exceeds."""
    checks = (
        ("max_video_seconds", info.duration_ms / 1000, limits.seconds, "seconds long"),
        ("max_video_pixels", info.width * info.height, limits.pixels, "pixels per frame"),
        ("max_video_frames", info.frame_count, limits.frames, "frames"),
    )
    for name, actual, limit, unit in checks:
        if actual > limit:
            size = f"{info.width}x{info.height} = " if name == "max_video_pixels" else ""
            raise VideoTooLargeError(
                f"the video is {size}{_amount(actual)} {unit}; the limit ({name}) is {_amount(limit)}",
                limit_name=name,
                limit=limit,
                actual=actual,
                source=source,
            )


def probe_video(path: VideoPath, limits: VideoLimits | None = None) -> VideoInfo:
    """The metadata of the video at ``path``, checked against ``limits`` when given."""
    container = open_video(path)
    try:
        info = _info(container, path)
    finally:
        container.close()
    if limits is not None:
        check_limits(info, limits, _label(path))
    return info


def check_sample_fps(sample_fps: float) -> float:
    if not isinstance(sample_fps, (int, float)) or isinstance(sample_fps, bool) or not 0.1 <= sample_fps <= 240:
        raise InvalidParameterError(
            f"Sample rate {sample_fps!r} is invalid: give 0.1 to 240 frames per second", parameter="sample_fps"
        )
    return float(sample_fps)


def frame_time_ms(frame: Any, index: int, rate: float) -> int:
    """A decoded frame's presentation time in milliseconds (from its index when it has none)."""
    t = frame.time
    return int(round(t * 1000)) if t is not None else int(round(index * 1000 / rate))


class PlayClock:
    """Decoded frames' times as they play, in milliseconds, never going back: timestamps that jump
    back (they restart where two MPEG-TS files were joined, say) continue one frame after the last
    time instead, so sampling, tracking and the redaction plan see time go on; equal times stay equal."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._offset = 0
        self._last: int | None = None

    def time_ms(self, frame: Any, index: int) -> int:
        t = frame_time_ms(frame, index, self._rate) + self._offset
        if self._last is not None and t < self._last:
            step = max(int(round(1000 / self._rate)), 1)
            log.info("timestamps go back %d ms at frame %d: taken as a restart", self._last - t, index)
            self._offset += self._last + step - t
            t = self._last + step
        self._last = t
        return t


def decoded_frames(container: Any, path: VideoPath, info: VideoInfo, limits: VideoLimits) -> Iterator[Any]:
    """Every frame of the main video stream (PyAV ``VideoFrame``); corrupt or truncated → ``InvalidVideoError``."""
    import av

    stream = main_video_stream(container)
    stream.thread_type = "AUTO"
    count = 0
    last_ms = 0
    clock = PlayClock(info.frame_rate)
    try:
        for frame in container.decode(stream):
            count += 1
            if count > limits.frames:
                raise VideoTooLargeError(
                    f"the video has more than {limits.frames} frames",
                    limit_name="max_video_frames",
                    limit=limits.frames,
                    actual=count,
                    source=_label(path),
                )
            if frame.width * frame.height > limits.pixels:  # the header said less: a stream may change size
                raise VideoTooLargeError(
                    f"a frame is {frame.width}x{frame.height} = {frame.width * frame.height} pixels; the limit "
                    f"(max_video_pixels) is {limits.pixels}",
                    limit_name="max_video_pixels",
                    limit=limits.pixels,
                    actual=frame.width * frame.height,
                    source=_label(path),
                )
            last_ms = clock.time_ms(frame, count - 1)
            if last_ms > limits.seconds * 1000:
                raise VideoTooLargeError(
                    f"the video runs past {limits.seconds:g} seconds",
                    limit_name="max_video_seconds",
                    limit=limits.seconds,
                    actual=last_ms / 1000,
                    source=_label(path),
                )
            yield frame
    except av.FFmpegError as exc:
        raise InvalidVideoError(f"the video is corrupt after {count} frames ({exc})", source=_label(path)) from None
    if count == 0:
        raise InvalidVideoError("no frame could be decoded", source=_label(path))
    frame_ms = 1000 / info.frame_rate
    if info.duration_ms > 0 and last_ms + frame_ms < 0.9 * info.duration_ms - 1000:
        raise InvalidVideoError(
            f"the video is truncated: frames stop at {last_ms / 1000:.1f} s of {info.duration_ms / 1000:.1f} s",
            source=_label(path),
        )


def iter_frames(
    path: VideoPath, *, sample_fps: float = 10.0, limits: VideoLimits | None = None, log: FrameLog | None = None
) -> Iterator[Frame]:
    """The frames of ``path`` sampled at about ``sample_fps`` (every frame when the video is slower),
    each upright (turned by its display rotation); ``log`` collects every decoded frame's time and
    the first one's rotation.

    Raises ``InvalidVideoError`` (unreadable, truncated, corrupt) and ``VideoTooLargeError``
    (over ``limits``: checked from the header first, then while decoding).
    """
    sample_fps = check_sample_fps(sample_fps)
    limits = limits or VideoLimits()
    container = open_video(path)
    try:
        info = _info(container, path)
        check_limits(info, limits, _label(path))
        step_ms = 1000 / sample_fps
        next_ms = 0.0
        clock = PlayClock(info.frame_rate)
        for index, frame in enumerate(decoded_frames(container, path, info, limits)):
            ts = clock.time_ms(frame, index)
            if log is not None:
                if index == 0:
                    log.rotation = rotation_of(frame)
                log.times_ms.append(ts)
            if ts + 0.5 < next_ms:
                continue
            next_ms = max(next_ms + step_ms, ts + step_ms * 0.5)
            yield Frame(index, ts, upright(frame))
    finally:
        container.close()
