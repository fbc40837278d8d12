"""Governed video operations: search a collection for the persons of a video, and redact with ``keep``.

A video search is governed like an image search (the collection's purpose must allow 1:N
search at the threshold asked; the audit log gets one entry with every person's matches; the
purpose's review flag is returned). Each person is matched once, by the normalised mean of
the embeddings of its best frames, so one blurred frame neither makes nor breaks a match.
Redaction is audited too; with a ``keep`` collection it is a search of that collection
(consenting staff, say) and is governed as one. Each operation takes the service's context
(``FaceService.ctx``), as the other operation modules do.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facetrust.errors import InvalidParameterError
from facetrust.governance.actor import LOCAL, Actor
from facetrust.governance.recorder import Record
from facetrust.service.governed import Governed, governed
from facetrust.service.scoring import estimate_of, estimate_record
from facetrust.service.search import answered_rates, fpir, log_matches, match_faces, under_purpose
from facetrust.service.types import FaceSearchMatch, ProbeEstimate
from facetrust.video.pipeline import PersonTrack, Progress, VideoFaces, VideoOptions, detect_video
from facetrust.video.redact import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    KeepRule,
    RedactionReport,
    RedactOptions,
    redact_image,
    redact_image_bytes,
    redact_video,
)
from facetrust.video.source import VideoPath

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.engine import FaceEngine
    from facetrust.images import ImageSource
    from facetrust.service.context import ServiceContext

__all__ = [
    "PersonMatches",
    "VideoSearchResult",
    "governed_image_redaction",
    "governed_redaction",
    "governed_video_search",
]


@dataclass(frozen=True)
class PersonMatches:
    """One tracked person of a video and the stored faces it matches, best first; how the person's
    search estimated its own error rates (``estimate``, as an image search's) and its chance of a
    false match in the gallery (``fpir``). Both None for a person with no frame good enough to search."""

    person: PersonTrack
    matches: tuple[FaceSearchMatch, ...]
    estimate: ProbeEstimate | None = None
    fpir: float | None = None


@dataclass(frozen=True)
class VideoSearchResult:
    """Every person of a video with its matches in a collection, and how the search was governed."""

    video: VideoFaces
    persons: tuple[PersonMatches, ...]
    threshold: float
    gallery_size: int
    fpir: float
    model: str
    review_required: bool
    audit_seq: int


def person_query(person: PersonTrack) -> np.ndarray | None:
    """The normalised mean embedding of a person's best frames (1×dim), or None without any."""
    import numpy as np

    if not person.best:
        return None
    mean = np.mean([e.vector for e in person.best], axis=0)
    out: np.ndarray = (mean / max(float(np.linalg.norm(mean)), 1e-12))[None, :].astype(np.float32)
    return out


class _Matcher:
    """Matches persons against one collection under its purpose, for one operation on the governed path."""

    def __init__(self, ctx: ServiceContext, step: Governed, threshold: float, max_faces: int) -> None:
        self.ctx = ctx
        self.step = step
        self.row, self.purpose, self.threshold, self.limit = under_purpose(
            step, threshold, "FaceMatchThreshold", max_faces, "MaxFaces"
        )
        self.gallery = 0
        self.estimates: list[dict[str, object]] = []  # each person's per-probe estimate, as searches record it

    def match(self, person: PersonTrack) -> PersonMatches:
        query = person_query(person)
        if query is None:
            return PersonMatches(person, ())
        matches, size, scale = match_faces(self.ctx, self.step, query, self.threshold, self.limit, set())
        self.estimates.append(estimate_record(scale, self.threshold, size))
        self.gallery = max(self.gallery, size)
        return PersonMatches(person, matches, estimate_of(scale, self.threshold), scale.fpir(self.threshold, size))

    def log(self, rec: Record, persons: tuple[PersonMatches, ...], **extra: object) -> int:
        found = [(p.person.index, m) for p in persons for m in p.matches]
        entry = log_matches(
            self.ctx.store,
            rec,
            [m.similarity for _, m in found],
            self.threshold,
            self.gallery,
            self.purpose,
            face_ids=[m.face.face_id for _, m in found],
            **answered_rates([m for _, m in found]),
            persons=[i for i, _ in found],
            estimates=self.estimates,
            **extra,
        )
        return entry.seq


def governed_video_search(
    ctx: ServiceContext,
    collection: str,
    path: VideoPath,
    *,
    actor: Actor = LOCAL,
    operation: str = "VideoSearch",
    threshold: float = 80.0,
    max_faces: int = 10,
    options: VideoOptions | None = None,
    progress: Progress | None = None,
) -> VideoSearchResult:
    """Track the persons of the video at ``path`` and search ``collection`` for each, on the governed path
    (role, the collection purpose's search rules, one audit entry with every person's matches)."""
    with governed(ctx, actor, operation, collection, model_check=True) as step:
        matcher = _Matcher(ctx, step, threshold, max_faces)
        found = detect_video(path, ctx.engine_for(step.collection), options, progress=progress)
        persons = tuple(matcher.match(p) for p in found.persons)
        seq = matcher.log(step.record, persons, video=Path(path).name, tracked_persons=len(found.persons))
    return VideoSearchResult(
        found,
        persons,
        matcher.threshold,
        matcher.gallery,
        fpir(matcher.threshold, matcher.gallery, ctx.engine_for(matcher.row).calibration.floor_fmr),
        matcher.row.model,
        matcher.purpose.human_review,
        seq,
    )


def governed_redaction(
    ctx: ServiceContext,
    source: VideoPath,
    out: str | os.PathLike[str],
    *,
    actor: Actor = LOCAL,
    options: RedactOptions | None = None,
    video: VideoOptions | None = None,
    keep: str | None = None,
    threshold: float = 80.0,
    progress: Progress | None = None,
) -> RedactionReport:
    """Redact every face of an image or video (``out``'s suffix says which); audited.

    With ``keep``, persons matching that collection at ``threshold`` are left unredacted:
    a governed search of ``keep`` whose matches the audit entry records.
    """

    def run(engine: FaceEngine, rule: KeepRule | None) -> RedactionReport:
        suffix = Path(out).suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            return redact_image(source, out, engine, options, keep=rule)
        if suffix not in VIDEO_SUFFIXES:
            raise InvalidParameterError(
                f"Output {Path(out).name!r} must end in one of {', '.join((*IMAGE_SUFFIXES, *VIDEO_SUFFIXES))}: "
                "an image for an image, a video for a video",
                parameter="output",
            )
        return redact_video(source, out, engine, options, video, keep=rule, progress=progress)

    names = (Path(source).name, Path(out).name)
    return _audited_redaction(ctx, actor, "Redact", keep, threshold, names, run)


def governed_image_redaction(
    ctx: ServiceContext,
    image: ImageSource,
    *,
    actor: Actor = LOCAL,
    options: RedactOptions | None = None,
    keep: str | None = None,
    threshold: float = 80.0,
) -> tuple[bytes, str, RedactionReport]:
    """An image's bytes with every face not kept redacted (same format as the image), audited."""
    encoded: list[tuple[bytes, str]] = []

    def run(engine: FaceEngine, rule: KeepRule | None) -> RedactionReport:
        data, fmt, report = redact_image_bytes(image, engine, options, keep=rule)
        encoded.append((data, fmt))
        return report

    report = _audited_redaction(ctx, actor, "RedactImage", keep, threshold, ("-", "-"), run)
    return encoded[0][0], encoded[0][1], report


def _audited_redaction(
    ctx: ServiceContext,
    actor: Actor,
    operation: str,
    keep: str | None,
    threshold: float,
    names: tuple[str, str],
    run: Callable[[FaceEngine, KeepRule | None], RedactionReport],
) -> RedactionReport:
    """Run ``run`` with the engine of the ``keep`` collection's profile (the service's own without
    ``keep``: its faces are matched against that collection's templates) on the governed path."""
    with governed(ctx, actor, operation, keep, model_check=keep is not None) as step:
        rec = step.record
        matcher = _Matcher(ctx, step, threshold, 1) if keep is not None else None
        kept: list[PersonMatches] = []
        engine = ctx.engine_for(step.collection) if keep is not None else ctx.engine
        report = run(engine, _keep_rule(matcher, kept) if matcher is not None else None)
        extra = {
            "source": names[0],
            "output": names[1],
            "frames": report.frames,
            "frames_redacted": report.frames_redacted,
            "tracks": report.tracks,
            "tracks_kept": report.tracks_kept,
            "streams_dropped": list(report.streams_dropped),
        }
        if matcher is not None:
            matcher.log(rec, tuple(kept), **extra)
        else:
            rec.details = extra
    return report


def _keep_rule(matcher: _Matcher, kept: list[PersonMatches]) -> Callable[[VideoFaces], frozenset[int]]:
    def rule(found: VideoFaces) -> frozenset[int]:
        for person in found.persons:
            found_person = matcher.match(person)
            if found_person.matches:
                kept.append(found_person)
        return frozenset(p.person.index for p in kept)

    return rule
