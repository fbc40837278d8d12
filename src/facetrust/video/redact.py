"""Redaction: blur or pixelate every tracked face in an image or a video, gaps of detection covered.

A video is read twice. The first pass detects and tracks faces at the sampling rate
(``detect_video``); ``plan_boxes`` then covers every frame of each track: boxes grown by
``grow`` on each side, interpolated between sightings less than ``bridge_seconds`` apart, and
held ``hold_seconds`` before the first and after the last sighting of each run, so a face is
not left bare in frames the detector skipped or missed. The second pass decodes every frame,
redacts the planned boxes, encodes the video again at the same timestamps and copies the
audio packets unchanged. Output goes to a temporary file beside ``out``, renamed on success.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facetrust.errors import InvalidParameterError
from facetrust.types import BoundingBox, Face
from facetrust.video.pipeline import PersonTrack, Progress, TrackedFace, VideoFaces, VideoOptions, detect_video
from facetrust.video.source import (
    VideoInfo,
    VideoPath,
    decoded_frames,
    main_audio_stream,
    main_video_stream,
    open_video,
    other_streams,
    probe_video,
)
from facetrust.video.tracker import iou

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.engine import FaceEngine
    from facetrust.images import ImageSource

KeepRule = Callable[[VideoFaces], frozenset[int]]
"""Chooses the persons (track indexes) of a video to leave unredacted."""

__all__ = [
    "METHODS",
    "KeepRule",
    "RedactOptions",
    "RedactionReport",
    "apply_boxes",
    "plan_boxes",
    "redact_image",
    "redact_image_bytes",
    "redact_video",
]

METHODS = ("blur", "pixelate")
VIDEO_SUFFIXES = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}
IMAGE_SUFFIXES = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}


@dataclass(frozen=True)
class RedactOptions:
    """How faces are hidden: ``method`` blur or pixelate, ``strength`` 1–100 (100 hides most)."""

    method: str = "blur"
    strength: int = 60
    grow: float = 0.25
    hold_seconds: float = 0.4
    bridge_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidParameterError(
                f"Unknown redaction method {self.method!r}; use one of {', '.join(METHODS)}", parameter="method"
            )
        if isinstance(self.strength, bool) or not isinstance(self.strength, int) or not 1 <= self.strength <= 100:
            raise InvalidParameterError(f"Strength {self.strength!r} is invalid: give 1 to 100", parameter="strength")
        for name in ("grow", "hold_seconds", "bridge_seconds"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 10:
                raise InvalidParameterError(f"{name} {value!r} is invalid: give 0 to 10", parameter=name)


@dataclass(frozen=True)
class RedactionReport:
    """What a redaction did: faces seen, tracks (persons), tracks kept, frames touched, and the
    streams of the source the output does not carry (described: ``stream 0: video h264 160x120``)."""

    output: str
    frames: int
    frames_redacted: int
    faces: int
    tracks: int
    tracks_kept: int
    boxes: int
    streams_dropped: tuple[str, ...] = ()


def _grown(box: BoundingBox, grow: float) -> BoundingBox:
    dx, dy = box.width * grow, box.height * grow
    return BoundingBox(box.left - dx, box.top - dy, box.width + 2 * dx, box.height + 2 * dy)


def _lerp(a: BoundingBox, b: BoundingBox, k: float) -> BoundingBox:
    return BoundingBox(*(x + (y - x) * k for x, y in zip(vars(a).values(), vars(b).values())))


def _reach(times: Sequence[int], start: int, lo_ms: float, hi_ms: float) -> tuple[int, int]:
    """The first and last frame around ``start`` whose times lie within [lo_ms, hi_ms]."""
    first = last = min(start, len(times) - 1)
    while first > 0 and times[first - 1] >= lo_ms:
        first -= 1
    while last + 1 < len(times) and times[last + 1] <= hi_ms:
        last += 1
    return first, last


def _track_boxes(
    track: PersonTrack, times: Sequence[int], step_ms: float, options: RedactOptions
) -> Iterable[tuple[int, BoundingBox]]:
    """Every frame's box of one track. Times, not frame counts, decide (a variable frame rate
    included): sightings at most ``bridge`` apart are joined, and a run of sightings is held
    ``hold`` before and after, each at least one sampling interval (``step_ms``) so that a face
    always in view is covered however sparsely it is sampled."""
    hold = max(options.hold_seconds * 1000, step_ms)
    bridge = max(options.bridge_seconds * 1000, 1.5 * step_ms)
    seen = track.faces
    for i, sight in enumerate(seen):
        box = _grown(sight.face.box, options.grow)
        f0, t0 = sight.frame_index, sight.timestamp_ms
        gap_before = t0 - seen[i - 1].timestamp_ms if i else None
        gap_after = seen[i + 1].timestamp_ms - t0 if i + 1 < len(seen) else None
        if gap_before is None or gap_before > bridge:
            first, _ = _reach(times, f0, t0 - hold, t0)
            yield from ((f, box) for f in range(first, f0))
        yield f0, box
        if gap_after is not None and gap_after <= bridge:
            after = _grown(seen[i + 1].face.box, options.grow)
            f1 = seen[i + 1].frame_index
            jump = iou(box, after) < 0.3  # a cut, or a fast move: cover both places as well as the way between
            for f in range(f0 + 1, f1):
                k = (times[f] - t0) / gap_after if gap_after > 0 and f < len(times) else (f - f0) / (f1 - f0)
                yield f, _lerp(box, after, min(max(k, 0.0), 1.0))
                if jump:
                    yield f, box
                    yield f, after
        else:
            _, last = _reach(times, f0, t0, t0 + hold)
            yield from ((f, box) for f in range(f0 + 1, last + 1))


def plan_boxes(
    faces: VideoFaces, options: RedactOptions, keep: frozenset[int] = frozenset(), frames: int | None = None
) -> dict[int, list[BoundingBox]]:
    """The boxes to redact in each frame (by decoded frame index) for every person not in ``keep``.

    Frame times come from the detection pass (``faces.frame_times_ms``); without them, from the
    frame rate over ``frames`` frames (default: the header's count)."""
    times: Sequence[int] = faces.frame_times_ms
    if not times:
        total = frames if frames is not None else max(faces.info.frame_count, 1)
        times = [int(round(i * 1000 / faces.info.frame_rate)) for i in range(total)]
    step_ms = 1000 / faces.sample_fps if faces.sample_fps > 0 else 0.0
    plan: dict[int, list[BoundingBox]] = {}
    for track in faces.persons:
        if track.index in keep:
            continue
        for frame, box in _track_boxes(track, times, step_ms, options):
            plan.setdefault(frame, []).append(box)
    return plan


def apply_boxes(image: np.ndarray, boxes: Iterable[BoundingBox], options: RedactOptions) -> np.ndarray:
    """``image`` (modified in place and returned) with every box blurred or pixelated."""
    import cv2

    height, width = image.shape[:2]
    for box in boxes:
        x0, y0 = max(int(box.left), 0), max(int(box.top), 0)
        x1, y1 = min(int(box.left + box.width + 1), width), min(int(box.top + box.height + 1), height)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        region = image[y0:y1, x0:x1]
        side = min(x1 - x0, y1 - y0)
        if options.method == "pixelate":
            cells = max(2, round(16 - 14 * options.strength / 100))
            small = cv2.resize(region, (cells, max(2, cells * (y1 - y0) // (x1 - x0))), interpolation=cv2.INTER_AREA)
            image[y0:y1, x0:x1] = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
        else:
            k = max(3, int(side * (0.1 + 0.5 * options.strength / 100))) | 1
            image[y0:y1, x0:x1] = cv2.blur(cv2.blur(region, (k, k)), (k, k))
    return image


def _smallest_face(engine: FaceEngine, asked: int | None) -> int:
    """The narrowest face redaction must find: every face the engine could recognise
    (``min_face_size``) at any resolution, or a narrower one when asked."""
    floor = engine.settings.min_face_size
    return min(asked, floor) if asked is not None else floor


def _temp_beside(out: Path) -> Path:
    return out.with_name(f".{out.stem}.{uuid.uuid4().hex[:8]}.part{out.suffix}")


def redact_image_bytes(
    source: ImageSource,
    engine: FaceEngine,
    options: RedactOptions | None = None,
    *,
    keep: KeepRule | None = None,
    image_format: str | None = None,
) -> tuple[bytes, str, RedactionReport]:
    """``source`` with every face not kept redacted, encoded as ``image_format`` (JPEG or PNG;
    default: the source's own format, PNG for arrays): (bytes, format, report).

    ``keep`` sees the image as a one-frame video whose persons are its faces.
    """
    import io

    from PIL import Image

    options = options or RedactOptions()
    fmt = image_format or _format_of(source)
    rgb = engine.load_image(source).copy()
    # boxes only, unless ``keep`` compares the faces (their landmarks then align them)
    faces = engine.detect(rgb, smallest_face=_smallest_face(engine, None), straighten=keep is not None)
    kept = keep(_as_video(engine, rgb, faces)) if keep is not None and faces else frozenset()
    apply_boxes(rgb, (_grown(f.box, options.grow) for i, f in enumerate(faces) if i not in kept), options)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    touched = len(faces) - len(kept)
    report = RedactionReport("-", 1, int(touched > 0), len(faces), len(faces), len(kept), touched)
    return buffer.getvalue(), fmt, report


def _format_of(source: ImageSource) -> str:
    head = b""
    if isinstance(source, (bytes, bytearray, memoryview)):
        head = bytes(source[:3])
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            head = fh.read(3)
    return "JPEG" if head == b"\xff\xd8\xff" else "PNG"


def redact_image(
    source: ImageSource,
    out: str | os.PathLike[str],
    engine: FaceEngine,
    options: RedactOptions | None = None,
    *,
    keep: KeepRule | None = None,
) -> RedactionReport:
    """Write ``source`` with every face not kept redacted to ``out`` (.jpg/.jpeg/.png), atomically."""
    target = Path(out)
    fmt = IMAGE_SUFFIXES.get(target.suffix.lower())
    if fmt is None:
        raise InvalidParameterError(
            f"Output {target.name!r} must end in one of {', '.join(IMAGE_SUFFIXES)}", parameter="output"
        )
    data, _, report = redact_image_bytes(source, engine, options, keep=keep, image_format=fmt)
    temp = _temp_beside(target)
    try:
        temp.write_bytes(data)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return dataclasses.replace(report, output=str(target))


def _as_video(engine: FaceEngine, rgb: np.ndarray, faces: list[Face]) -> VideoFaces:
    """An image as a one-frame video: each face one person, its embedding its best frame."""
    embedded = {id(e.face): e for e in engine.embed(rgb, faces)}
    height, width = rgb.shape[:2]
    info = VideoInfo("image", "image", width, height, 1.0, 0, 1, False)
    persons = tuple(
        PersonTrack(i, (TrackedFace(0, 0, i, f),), (embedded[id(f)],) if id(f) in embedded else ())
        for i, f in enumerate(faces)
    )
    return VideoFaces(info, 1.0, 1, tuple(p.faces[0] for p in persons), persons)


def redact_video(
    path: VideoPath,
    out: str | os.PathLike[str],
    engine: FaceEngine,
    options: RedactOptions | None = None,
    video: VideoOptions | None = None,
    *,
    keep: KeepRule | None = None,
    progress: Progress | None = None,
) -> RedactionReport:
    """Write the video at ``path`` with every face not kept redacted to ``out``, audio and timing unchanged."""
    options = options or RedactOptions()
    video = video or VideoOptions()
    target = Path(out)
    if target.suffix.lower() not in VIDEO_SUFFIXES:
        raise InvalidParameterError(
            f"Output {target.name!r} must end in one of {', '.join(VIDEO_SUFFIXES)}", parameter="output"
        )
    info = probe_video(path, video.limits)
    dropped = _check_streams(path, target)
    half = (lambda done, total: progress(done // 2, total)) if progress else None
    # Every face is found however many there are: max_video_sightings bounds the jobs a server runs
    # for its callers, not the redaction of an operator's own file, which must hide them all.
    whole = dataclasses.replace(video.limits, sightings=sys.maxsize)
    wanted = dataclasses.replace(video, smallest_face=_smallest_face(engine, video.smallest_face), limits=whole)
    found = detect_video(
        path, engine, wanted if keep is not None else dataclasses.replace(wanted, embed=False), progress=half
    )
    kept = keep(found) if keep is not None else frozenset()
    plan = plan_boxes(found, options, kept, frames=max(info.frame_count, 1) + int(info.frame_rate))
    temp = _temp_beside(target)
    try:
        frames, touched = _rewrite(path, temp, plan, options, video, progress, found.rotation)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return RedactionReport(
        str(target),
        frames,
        touched,
        len(found.faces),
        len(found.persons),
        len(kept),
        sum(len(b) for b in plan.values()),
        dropped,
    )


def _rewrite(
    path: VideoPath,
    temp: Path,
    plan: dict[int, list[BoundingBox]],
    options: RedactOptions,
    video: VideoOptions,
    progress: Progress | None,
    rotation: int = 0,
) -> tuple[int, int]:
    """Second pass: decode every frame, redact its planned boxes (drawn upright, as the frame is shown),
    encode at the same timestamps (``Forward``: kept strictly increasing) and display rotation; copy
    the audio. (frames, frames touched). A file the output cannot hold → ``InvalidVideoError``."""
    import av

    from facetrust.errors import InvalidVideoError
    from facetrust.video.source import _info

    source = open_video(path)
    try:
        info = _info(source, path)
        in_video = main_video_stream(source)
        in_audio = main_audio_stream(source)
        times = Forward(step=max(1, round(1 / (info.frame_rate * float(in_video.time_base)))))
        with av.open(str(temp), mode="w", options={"avoid_negative_ts": "disabled"}) as sink:
            out_video = _video_stream(sink, in_video, VIDEO_SUFFIXES[temp.suffix.lower()], rotation)
            out_audio = sink.add_stream_from_template(in_audio) if in_audio is not None else None
            frames = touched = 0
            for frame in _frames_and_audio(source, path, info, video, in_audio, out_audio, sink):
                boxes = plan.get(frames, [])
                pts = times.next(frame.pts if frame.pts is not None else frames * times.step)
                if boxes:
                    touched += 1
                    frame = _redacted(frame, boxes, options)
                frame.pts, frame.time_base = pts, in_video.time_base
                frame.pict_type = av.video.frame.PictureType.NONE
                for packet in out_video.encode(frame):
                    sink.mux(packet)
                frames += 1
                if progress is not None and frames % 10 == 0:
                    progress(info.duration_ms // 2 + int(frames * 500 / info.frame_rate), info.duration_ms)
            for packet in out_video.encode():
                sink.mux(packet)
    except av.FFmpegError as exc:
        raise InvalidVideoError(
            f"the redacted copy cannot be written ({exc}); the video's timestamps or streams may be damaged: "
            "remux it first (ffmpeg -i IN -c copy OUT.mkv)",
            source=Path(path).name,
        ) from None
    finally:
        source.close()
    return frames, touched


def _redacted(frame: Any, boxes: list[BoundingBox], options: RedactOptions) -> Any:
    """A new frame: ``frame`` with ``boxes`` redacted (drawn upright, stored turned back as it was)."""
    import av
    import numpy as np

    from facetrust.video.source import rotation_of, upright

    rgb = apply_boxes(upright(frame), boxes, options)
    turns = rotation_of(frame) // 90
    if turns:
        rgb = np.ascontiguousarray(np.rot90(rgb, -turns))
    return av.VideoFrame.from_ndarray(rgb, format="rgb24")


class Forward:
    """Timestamps (in a stream's time base) made strictly increasing, as a file's output needs:
    a time that goes back (timestamps restarting where two MPEG-TS files were joined) starts an
    offset that carries the rest on from one ``step`` after the last; a repeated time moves on by one
    tick. Times that already increase are kept as they are."""

    def __init__(self, step: int) -> None:
        self.step = step
        self._offset = 0
        self._last: int | None = None

    def next(self, t: int) -> int:
        t += self._offset
        if self._last is not None and t <= self._last:
            if t < self._last:
                self._offset += self._last + self.step - t
                t = self._last + self.step
            else:
                t = self._last + 1
        self._last = t
        return t


WEBM_AUDIO = frozenset({"opus", "vorbis"})


def _check_streams(path: VideoPath, target: Path) -> tuple[str, ...]:
    """The streams the output will not carry (only the main video and audio ones are); audio is
    copied, not re-encoded: refuse an output whose container cannot hold it (AAC in WebM, Opus in MOV)."""
    source = open_video(path)
    try:
        audio = main_audio_stream(source)
        codecs = {str(audio.codec_context.name)} if audio is not None else set()
        dropped = other_streams(source)
        holds = audio is None or _holds_audio(audio, target)
    finally:
        source.close()
    if target.suffix.lower() == ".webm" and codecs - WEBM_AUDIO:
        raise InvalidParameterError(
            f"Output {target.name!r}: the audio ({', '.join(sorted(codecs))}) cannot be copied into WebM, which "
            "holds Opus or Vorbis only; write .mkv or .mp4 instead",
            parameter="output",
        )
    if not holds:
        raise InvalidParameterError(
            f"Output {target.name!r}: the audio ({', '.join(sorted(codecs))}) cannot be copied into "
            f"{target.suffix[1:].upper()}; write .mkv instead",
            parameter="output",
        )
    return dropped


CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}


def _holds_audio(audio: Any, target: Path) -> bool:
    """Whether ``target``'s container takes the ``audio`` stream as it is (FFmpeg writes the header
    of such an output in memory: MOV refuses Opus, say), so the copy does not fail at its first
    audio packet after the whole first pass."""
    import io

    import av

    try:
        trial: Any = av.open(io.BytesIO(), mode="w", format=CONTAINERS[target.suffix.lower()])
        with trial:
            video = trial.add_stream(VIDEO_SUFFIXES[target.suffix.lower()], rate=25)
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
            trial.add_stream_from_template(audio)
            trial.start_encoding()
    except (av.FFmpegError, ValueError):
        return False
    return True


def _video_stream(sink: Any, template: Any, codec: str, rotation: int = 0) -> Any:
    """The output's video stream: the source's size, time base (so every frame keeps its timestamp,
    a variable frame rate included) and display rotation; 4:2:0 chroma, or 4:4:4 for an odd width
    or height (which 4:2:0 cannot hold)."""
    stream = sink.add_stream(codec, rate=template.average_rate or template.guessed_rate)
    width, height = template.codec_context.width, template.codec_context.height
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    stream.time_base = template.time_base
    stream.codec_context.time_base = template.time_base
    if rotation:
        stream.set_display_rotation(rotation)
    stream.options = (
        {"crf": "18", "preset": "ultrafast"} if codec == "libx264" else {"crf": "32", "b": "0", "deadline": "realtime"}
    )
    return stream


def _frames_and_audio(
    source: Any, path: VideoPath, info: Any, video: VideoOptions, in_audio: Any, out_audio: Any, sink: Any
) -> Iterable[Any]:
    """The video frames in order (limits and corruption checked), muxing audio packets on the way."""
    if in_audio is None:
        yield from decoded_frames(source, path, info, video.limits)
        return
    import av

    in_video = main_video_stream(source)
    in_video.thread_type = "AUTO"
    audio_times = Forward(step=max(1, int(in_audio.codec_context.frame_size or 1)))
    try:
        for packet in source.demux(in_video, in_audio):
            if packet.stream is in_audio:
                if packet.dts is not None:
                    shift = audio_times.next(packet.dts) - packet.dts
                    packet.dts += shift
                    if packet.pts is not None:
                        packet.pts += shift
                    packet.stream = out_audio
                    sink.mux(packet)
                continue
            yield from packet.decode()
    except av.FFmpegError as exc:
        from facetrust.errors import InvalidVideoError

        raise InvalidVideoError(f"the video is corrupt ({exc})", source=Path(path).name) from None
