"""Follow faces across sampled frames: motion-predicted IoU matching, re-identification by embedding.

Each active track predicts its box in the next sampled frame from its last velocity and takes
the detection it overlaps most (IoU ≥ ``min_iou``, greedy, best pairs first). A detection no
active track takes is compared by embedding with the tracks lost in the last
``reid_seconds`` (after an occlusion or a cut); a close enough one (cosine ≥ ``reid_cosine``)
takes it back, else it starts a new track. Each track keeps its ``best_frames`` best
observations by quality (confidence × sharpness × size), with their embeddings; a sighting is
embedded only when it beats the worst of them by 10 % and the track's last embedding is
``embed_every_seconds`` old, so embedding (the costly step) stays rare on long tracks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from facetrust.types import BoundingBox, Face

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["Observation", "Track", "Tracker", "TrackerOptions", "iou", "observation_quality"]


@dataclass(frozen=True)
class TrackerOptions:
    """How tracks are matched and kept (times in seconds of video)."""

    min_iou: float = 0.3
    max_lost_seconds: float = 0.6
    reid_seconds: float = 10.0
    reid_cosine: float = 0.45
    best_frames: int = 3
    embed_every_seconds: float = 0.5


@dataclass(frozen=True, eq=False)
class Observation:
    """A face seen in one sampled frame, with its embedding when one was made."""

    frame_index: int
    timestamp_ms: int
    face: Face
    embedding: np.ndarray | None = field(default=None, repr=False)


def iou(a: BoundingBox, b: BoundingBox) -> float:
    """Intersection over union of two boxes (0 when they do not overlap)."""
    x1, y1 = max(a.left, b.left), max(a.top, b.top)
    x2 = min(a.left + a.width, b.left + b.width)
    y2 = min(a.top + a.height, b.top + b.height)
    inter = max(x2 - x1, 0.0) * max(y2 - y1, 0.0)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def observation_quality(face: Face) -> float:
    """How good a frame of this face is for recognition: confidence × sharpness × size (bigger is better)."""
    return face.confidence * (0.2 + face.quality.sharpness / 100) * min(face.size, 200.0) * (face.recognisable + 0.1)


@dataclass(eq=False)
class Track:
    """One person's face over time: every observation, the best few, and a running mean embedding."""

    index: int
    observations: list[Observation] = field(default_factory=list)
    best: list[Observation] = field(default_factory=list)
    embedding_sum: np.ndarray | None = field(default=None, repr=False)
    embedded_ms: float = -1e18

    @property
    def last(self) -> Observation:
        return self.observations[-1]

    def predicted_box(self, timestamp_ms: int) -> BoundingBox:
        """The last box moved on by the last velocity to ``timestamp_ms``."""
        box = self.last.face.box
        if len(self.observations) < 2:
            return box
        prev = self.observations[-2]
        dt = self.last.timestamp_ms - prev.timestamp_ms
        if dt <= 0:
            return box
        k = (timestamp_ms - self.last.timestamp_ms) / dt
        dx = (box.left - prev.face.box.left) * k
        dy = (box.top - prev.face.box.top) * k
        return BoundingBox(box.left + dx, box.top + dy, box.width, box.height)

    def wants_embedding(self, face: Face, timestamp_ms: int, options: TrackerOptions) -> bool:
        """True when ``face`` would enter this track's best frames by a clear margin, and the track's
        last embedding is ``embed_every_seconds`` old (embedding is the costly step of tracking)."""
        if not face.recognisable or timestamp_ms - self.embedded_ms < options.embed_every_seconds * 1000:
            return False
        if len(self.best) < options.best_frames:
            return True
        return observation_quality(face) > 1.1 * observation_quality(self.best[-1].face)

    def add(self, obs: Observation, keep: int) -> None:
        self.observations.append(obs)
        if obs.embedding is None:
            return
        self.embedded_ms = obs.timestamp_ms
        self.embedding_sum = obs.embedding.copy() if self.embedding_sum is None else self.embedding_sum + obs.embedding
        self.best.append(obs)
        self.best.sort(key=lambda o: observation_quality(o.face), reverse=True)
        del self.best[keep:]

    def mean_embedding(self) -> np.ndarray | None:
        import numpy as np

        if self.embedding_sum is None:
            return None
        out: np.ndarray = self.embedding_sum / max(float(np.linalg.norm(self.embedding_sum)), 1e-12)
        return out


Embedder = Callable[[Sequence[Face]], "list[np.ndarray | None]"]
"""Embeds faces of the current frame on demand (None for a face it cannot embed)."""


class Tracker:
    """Assigns each sampled frame's faces to tracks; ``tracks`` holds every track made so far."""

    def __init__(self, options: TrackerOptions | None = None) -> None:
        self.options = options or TrackerOptions()
        self.tracks: list[Track] = []

    def _recent(self, timestamp_ms: int, seconds: float) -> list[Track]:
        return [t for t in self.tracks if timestamp_ms - t.last.timestamp_ms <= seconds * 1000]

    def _match_iou(self, faces: Sequence[Face], timestamp_ms: int) -> dict[int, Track]:
        active = [
            t for t in self._recent(timestamp_ms, self.options.max_lost_seconds) if t.last.timestamp_ms < timestamp_ms
        ]
        pairs = [
            (iou(t.predicted_box(timestamp_ms), f.box), ti, fi)
            for ti, t in enumerate(active)
            for fi, f in enumerate(faces)
        ]
        taken: dict[int, Track] = {}
        used: set[int] = set()
        for score, ti, fi in sorted(pairs, reverse=True):
            if score < self.options.min_iou:
                break
            if fi in taken or ti in used:
                continue
            taken[fi] = active[ti]
            used.add(ti)
        return taken

    def _reidentify(self, vector: np.ndarray | None, timestamp_ms: int, busy: set[int]) -> Track | None:
        import numpy as np

        if vector is None:
            return None
        best: tuple[float, Track | None] = (self.options.reid_cosine, None)
        for track in self._recent(timestamp_ms, self.options.reid_seconds):
            mean = track.mean_embedding()
            if track.index in busy or mean is None or track.last.timestamp_ms >= timestamp_ms:
                continue
            score = float(np.dot(mean, vector))
            if score >= best[0]:
                best = (score, track)
        return best[1]

    def update(
        self, frame_index: int, timestamp_ms: int, faces: Sequence[Face], embed: Embedder, *, cut: bool = False
    ) -> list[Track]:
        """Assign ``faces`` (one sampled frame) to tracks; returns the track of each face, in order.

        ``cut``: the frame starts a new shot, where positions say nothing: faces are matched to
        tracks by embedding only.
        """
        keep = self.options.best_frames
        taken = {} if cut else self._match_iou(faces, timestamp_ms)
        want = [
            i
            for i, f in enumerate(faces)
            if f.recognisable and (i not in taken or taken[i].wants_embedding(f, timestamp_ms, self.options))
        ]
        vectors: dict[int, np.ndarray | None] = dict(zip(want, embed([faces[i] for i in want]))) if want else {}
        busy = {t.index for t in taken.values()}
        out: list[Track] = []
        for i, face in enumerate(faces):
            vector = vectors.get(i)
            track = taken.get(i) or self._reidentify(vector, timestamp_ms, busy)
            if track is None:
                track = Track(len(self.tracks))
                self.tracks.append(track)
            busy.add(track.index)
            track.add(Observation(frame_index, timestamp_ms, face, vector), keep)
            out.append(track)
        return out
