"""What a video job is: its request, its state and results (and their JSON in the store), and the video it names."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facetrust.errors import VideoLocationError
from facetrust.service.types import FaceSearchMatch, ProbeEstimate, StoredFace
from facetrust.store import video_jobs as jobs_table
from facetrust.types import BoundingBox, Face, Landmarks, Point, Pose, Quality, RatioBox
from facetrust.video.source import VideoInfo

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    from facetrust.service.video import PersonMatches

__all__ = [
    "KINDS",
    "PersonEstimate",
    "VideoJob",
    "VideoJobRequest",
    "job_estimates",
    "job_from",
    "job_matches",
    "matched_ids",
    "resolve_video",
]

KINDS = ("FaceDetection", "FaceSearch")
_BUCKET = re.compile(r"[0-9A-Za-z.\-_]{3,255}")


@dataclass(frozen=True)
class VideoJobRequest:
    """What a job was asked to do: which video (bucket folder + name under the video root), and how."""

    kind: str
    bucket: str
    name: str
    collection: str | None = None
    threshold: float = 80.0
    job_tag: str | None = None
    client_token: str | None = None

    def fingerprint(self) -> str:
        data = dataclasses.asdict(self)
        data.pop("client_token")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class PersonEstimate:
    """How a FaceSearch job's search for one person estimated its own error rates (as an image
    search's ``ProbeEstimate``), and the person's chance of a false match in the gallery."""

    estimate: ProbeEstimate
    fpir: float


@dataclass(frozen=True)
class VideoJob:
    """A job's state; ``faces`` (sightings) and ``matches`` (per person) once it SUCCEEDED, and for a
    search the purpose's review flag and the sequence of its audit entry."""

    job_id: str
    request: VideoJobRequest
    status: str
    status_message: str | None
    metadata: VideoInfo | None
    faces: tuple[tuple[int, int, Face], ...]
    matches: dict[int, tuple[FaceSearchMatch, ...]]
    review_required: bool = False
    audit_seq: int | None = None
    gallery_size: int | None = None
    estimates: dict[int, PersonEstimate] = dataclasses.field(default_factory=dict)


def _encodable(text: str) -> bool:
    """False for text no file system can name (a lone UTF-16 surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def resolve_video(root: Path | None, bucket: str, name: str) -> Path:
    """The file ``name`` in folder ``bucket`` of the video root; nothing outside it can be named."""
    if root is None:
        raise VideoLocationError("This server has no video root: start it with `facetrust serve --video-root DIR`")
    if not _BUCKET.fullmatch(bucket) or set(bucket) == {"."}:
        raise VideoLocationError(f"Bucket {bucket[:100]!r} is not a folder name (3–255 of A–Z a–z 0–9 . - _)")
    if len(name) > 1024 or not name.isprintable() or not _encodable(name):
        raise VideoLocationError(f"Name {name[:100]!r} is not a file name (1–1024 printable characters, valid UTF-8)")
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or "\x00" in name or any(p in ("", ".", "..") for p in parts):
        raise VideoLocationError(f"Name {name[:100]!r} is not a relative path inside the bucket")
    try:
        base = (root / bucket).resolve()
        path = (base / name).resolve()
        if not path.is_relative_to(base) or not base.is_relative_to(root.resolve()):
            raise VideoLocationError(f"Name {name[:100]!r} leads outside the bucket")
        found = path.is_file()
    except OSError as exc:  # e.g. a part longer than the file system allows, a loop of links
        raise VideoLocationError(f"Name {name[:100]!r} cannot be looked up: {exc.strerror}") from None
    if not found:
        raise VideoLocationError(f"No video {name[:100]!r} in bucket {bucket!r}")
    return path


# -- (de)serialisation of results ---------------------------------------------------------


def _face_from(d: dict[str, Any]) -> Face:
    marks = d["landmarks"]
    return Face(
        box=BoundingBox(**d["box"]),
        landmarks=Landmarks(**{k: Point(**v) for k, v in marks.items()}),
        confidence=d["confidence"],
        pose=Pose(**d["pose"]),
        quality=Quality(**d["quality"]),
        size=d["size"],
        image_width=d["image_width"],
        image_height=d["image_height"],
        recognisable=d["recognisable"],
        reason=d["reason"],
    )


def _match_from(d: dict[str, Any]) -> FaceSearchMatch:
    f = d["face"]
    stored = StoredFace(
        **{
            **f,
            "box": RatioBox(**f["box"]),
            "quality": Quality(**f["quality"]),
            "pose": Pose(**f["pose"]),
        }
    )
    return FaceSearchMatch(stored, d["similarity"], d["fmr"], d["score"], d["fmr_is_bound"])


@dataclass(frozen=True)
class JobResult:
    """A finished job's result as stored (its ``result`` JSON), parsed: what never changes once the
    job has finished (its matches live in their own table, and go with an erased face)."""

    faces: tuple[tuple[int, int, Face], ...]
    review_required: bool
    audit_seq: int | None
    gallery_size: int | None
    estimates: dict[int, PersonEstimate]


def parse_result(result: str | None) -> JobResult:
    done = json.loads(result) if result else {"faces": []}
    return JobResult(
        tuple((t, p, _face_from(f)) for t, p, f in done["faces"]),
        bool(done.get("review_required", False)),
        done.get("audit_seq"),
        done.get("gallery_size"),
        {
            int(person): PersonEstimate(ProbeEstimate(e["method"], e["fmr"], e["unreliable"]), e["fpir"])
            for person, e in done.get("estimates", {}).items()
        },
    )


def job_from(row: tuple[Any, ...], stored: list[tuple[int, str]], parsed: JobResult | None = None) -> VideoJob:
    """A job from its row and its stored matches ((person, match as JSON), store/video_jobs.py);
    ``parsed``: its result, already parsed (the row's own is then not read)."""
    job_id, request, status, message, metadata, result = row
    done = parsed if parsed is not None else parse_result(result)
    matches: dict[int, list[FaceSearchMatch]] = {}
    for person, match in stored:
        matches.setdefault(person, []).append(_match_from(json.loads(match)))
    return VideoJob(
        job_id,
        VideoJobRequest(**json.loads(request)),
        status,
        message,
        VideoInfo(**json.loads(metadata)) if metadata else None,
        done.faces,
        {p: tuple(ms) for p, ms in matches.items()},
        done.review_required,
        done.audit_seq,
        done.gallery_size,
        dict(done.estimates),
    )


def job_estimates(persons: Sequence[PersonMatches]) -> dict[str, dict[str, Any]]:
    """Each searched person's estimate, as the job's result JSON keeps it (by person index)."""
    return {
        str(p.person.index): {
            "method": p.estimate.method,
            "fmr": p.estimate.fmr,
            "unreliable": p.estimate.unreliable,
            "fpir": p.fpir,
        }
        for p in persons
        if p.estimate is not None
    }


def job_matches(persons: Sequence[PersonMatches]) -> list[jobs_table.JobMatch]:
    """The matches of a video search's persons, as the store keeps them (one row per match)."""
    return [
        jobs_table.JobMatch(p.person.index, i, m.face.face_id, json.dumps(dataclasses.asdict(m)))
        for p in persons
        for i, m in enumerate(p.matches)
    ]


def matched_ids(job: VideoJob) -> list[str]:
    """The ids of the faces among the job's matches, sorted, each once."""
    return sorted({m.face.face_id for found in job.matches.values() for m in found})
