"""Detect and track the faces of a video file: decode → sample → detect → track → best frames."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from facetrust.errors import VideoTooLargeError
from facetrust.types import Face, FaceEmbedding
from facetrust.video.source import (
    FrameLog,
    VideoInfo,
    VideoLimits,
    VideoPath,
    check_sample_fps,
    iter_frames,
    probe_video,
)
from facetrust.video.tracker import Tracker, TrackerOptions

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.engine import FaceEngine

__all__ = [
    "CutDetector",
    "PersonTrack",
    "Progress",
    "TrackedFace",
    "VideoFaces",
    "VideoOptions",
    "detect_video",
    "tracker_options",
]

Progress = Callable[[int, int], None]
"""Called as ``progress(done_ms, total_ms)`` while a video is processed."""


@dataclass(frozen=True)
class VideoOptions:
    """How a video is read: sampling rate, limits, tracker settings.

    ``embed=False`` tracks by motion and overlap only: no re-identification and no best-frame
    embeddings (redaction without ``keep`` needs neither, and embedding is the costly step).
    ``smallest_face`` (pixels): find every face at least this wide, however large the frame
    (``FaceEngine.detect``; redaction sets the engine's ``min_face_size``); None: the detector's
    usual, faster scale, which misses small faces in large frames.
    """

    sample_fps: float = 10.0
    limits: VideoLimits = field(default_factory=VideoLimits)
    tracker: TrackerOptions = field(default_factory=TrackerOptions)
    embed: bool = True
    smallest_face: int | None = None

    @classmethod
    def from_settings(cls, settings: object, **changes: object) -> VideoOptions:
        base = cls(sample_fps=settings.video_sample_fps, limits=VideoLimits.from_settings(settings))  # type: ignore[attr-defined]
        import dataclasses

        return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TrackedFace:
    """A face seen at ``timestamp_ms`` (frame ``frame_index``), belonging to person ``person``."""

    timestamp_ms: int
    frame_index: int
    person: int
    face: Face


@dataclass(frozen=True)
class PersonTrack:
    """One tracked person: every sighting, and the embeddings of the best frames (best first)."""

    index: int
    faces: tuple[TrackedFace, ...]
    best: tuple[FaceEmbedding, ...] = field(repr=False)

    @property
    def first_ms(self) -> int:
        return self.faces[0].timestamp_ms

    @property
    def last_ms(self) -> int:
        return self.faces[-1].timestamp_ms


@dataclass(frozen=True)
class VideoFaces:
    """The faces of a video: metadata (its frame size as shown, upright), every sighting in time
    order, and the persons (tracks); the time of every decoded frame (by index; empty when not
    read) and the display rotation its frames carry (degrees counterclockwise; boxes are upright)."""

    info: VideoInfo
    sample_fps: float
    frames_sampled: int
    faces: tuple[TrackedFace, ...]
    persons: tuple[PersonTrack, ...]
    frame_times_ms: tuple[int, ...] = field(default=(), repr=False)
    rotation: int = 0


def _embedder(engine: FaceEngine, rgb: np.ndarray) -> Callable[[Sequence[Face]], list[np.ndarray | None]]:
    def embed(faces: Sequence[Face]) -> list[np.ndarray | None]:
        usable = [f for f in faces if f.recognisable]
        found = {id(e.face): e.vector for e in engine.embed(rgb, usable)} if usable else {}
        return [found.get(id(f)) for f in faces]

    return embed


class CutDetector:
    """Tells a cut (a new shot) from motion: the mean change of a 32×18 grey thumbnail between two
    sampled frames, on 0–255, above ``threshold``."""

    def __init__(self, threshold: float = 35.0) -> None:
        self.threshold = threshold
        self._last: np.ndarray | None = None

    def is_cut(self, rgb: np.ndarray) -> bool:
        import cv2
        import numpy as np

        thumb = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (32, 18), interpolation=cv2.INTER_AREA)
        last, self._last = self._last, thumb.astype(np.float32)
        return last is not None and float(np.abs(self._last - last).mean()) > self.threshold


def _no_embeddings(faces: Sequence[Face]) -> list[np.ndarray | None]:
    return [None] * len(faces)


def _persons(tracker: Tracker, model: str) -> tuple[PersonTrack, ...]:
    out = []
    for track in tracker.tracks:
        sightings = tuple(TrackedFace(o.timestamp_ms, o.frame_index, track.index, o.face) for o in track.observations)
        best = tuple(FaceEmbedding(o.embedding, model, o.face) for o in track.best if o.embedding is not None)
        out.append(PersonTrack(track.index, sightings, best))
    return tuple(out)


SFACE_MODEL = "sface-2021dec:fb143eea0783+flip"  # the default profile's model: reid_cosine's scale


def tracker_options(options: TrackerOptions, engine: FaceEngine) -> TrackerOptions:
    """``options`` for ``engine``: ``reid_cosine`` is an SFace score (the default profile); the
    'accurate' profile's fused scores of different people sit far higher (about 0.6), so there
    it becomes the fused score of the same false-match rate under the two shipped calibrations."""
    from facetrust.models.fused import NAME

    if not engine.model_id.startswith(NAME + ":"):
        return options
    from facetrust.calibration import default_calibration

    fmr = default_calibration(SFACE_MODEL).fmr(options.reid_cosine)[0]
    return replace(options, reid_cosine=engine.calibration.score_for_fmr(fmr))


def detect_video(
    path: VideoPath,
    engine: FaceEngine,
    options: VideoOptions | None = None,
    *,
    progress: Progress | None = None,
) -> VideoFaces:
    """Every face in the video at ``path``, tracked into persons; no face → no persons.

    Raises ``InvalidVideoError`` for a file that is not a readable video (or is truncated or
    corrupt) and ``VideoTooLargeError`` for one over ``options.limits`` (its faces too: as soon as
    more than ``limits.sightings`` have been seen).
    """
    options = options or VideoOptions()
    check_sample_fps(options.sample_fps)
    info = probe_video(path, options.limits)
    tracker = Tracker(tracker_options(options.tracker, engine))
    sampled = seen = 0
    cuts = CutDetector()
    log = FrameLog()
    for frame in iter_frames(path, sample_fps=options.sample_fps, limits=options.limits, log=log):
        sampled += 1
        faces = engine.detect(frame.image, smallest_face=options.smallest_face, straighten=options.embed)
        seen += len(faces)
        if seen > options.limits.sightings:
            raise VideoTooLargeError(
                f"more than {options.limits.sightings} faces were seen by {frame.timestamp_ms / 1000:.1f} s (every "
                "face on every frame looked at counts); the limit is max_video_sightings: look at fewer frames a "
                "second (video_sample_fps) or split the video",
                limit_name="max_video_sightings",
                limit=options.limits.sightings,
                actual=seen,
                source=Path(path).name,
            )
        embedder = _embedder(engine, frame.image) if options.embed else _no_embeddings
        tracker.update(frame.index, frame.timestamp_ms, faces, embedder, cut=cuts.is_cut(frame.image))
        if progress is not None:
            progress(min(frame.timestamp_ms, info.duration_ms), info.duration_ms)
    persons = _persons(tracker, engine.model_id)
    sightings = tuple(sorted((f for p in persons for f in p.faces), key=lambda f: (f.timestamp_ms, f.person)))
    if log.rotation in (90, 270):  # stored sideways: shown with width and height swapped
        info = replace(info, width=info.height, height=info.width)
    return VideoFaces(info, options.sample_fps, sampled, sightings, persons, tuple(log.times_ms), log.rotation)
