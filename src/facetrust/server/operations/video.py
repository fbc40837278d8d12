"""StartFaceDetection/GetFaceDetection and StartFaceSearch/GetFaceSearch: background jobs over stored video.

``Video.S3Object{Bucket, Name}`` names a file under the server's video root (Bucket: a folder
of it). Jobs run in the background (service/video_jobs.py) and survive a restart. Results are
served in pages (``MaxResults`` up to 1000, ``NextToken``), GetFaceSearch sorted by
``SortBy`` TIMESTAMP (default) or INDEX. SNS notification is not available here:
``NotificationChannel`` is refused, and callers poll the Get operation.

RedactImage is facetrust's own extension (not in boto3's model): an image in, the same image
with its faces blurred or pixelated out.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from facetrust.errors import InvalidPaginationTokenError, InvalidParameterError
from facetrust.governance.actor import Actor
from facetrust.server.operations.base import COLLECTION, IMAGE, THRESHOLD, Operation
from facetrust.server.protocol import Kind, Member
from facetrust.server.shapes import bounding_box, estimate, face_detail, similarity, stored_face
from facetrust.service import FaceService
from facetrust.service.validate import check_collection_id, check_limit, check_threshold, decode_position, encode_token
from facetrust.service.video import governed_image_redaction
from facetrust.service.video_jobs import VideoJob, VideoJobRequest, jobs_of
from facetrust.video.redact import METHODS, RedactOptions
from facetrust.video.source import VideoInfo

__all__ = ["OPERATIONS"]

MAX_RESULTS = 1000
_ORDERS = ("INDEX", "TIMESTAMP")  # GetFaceSearch's SortBy
_TOKEN = r"^[a-zA-Z0-9-_]+$"


def _video(value: dict[str, Any]) -> tuple[str, str]:
    unknown = sorted(set(value) - {"S3Object"})
    if unknown:
        raise InvalidParameterError(f"Video.{unknown[0][:100]} is not a member of Video", parameter="Video")
    s3 = value.get("S3Object")
    if not isinstance(s3, dict):
        raise InvalidParameterError("Video.S3Object is required: {Bucket, Name}", parameter="Video.S3Object")
    unknown = sorted(set(s3) - {"Bucket", "Name", "Version"})  # Rekognition's S3Object members
    if unknown:
        raise InvalidParameterError(
            f"Video.S3Object.{unknown[0][:100]} is not a member of S3Object; send Bucket and Name",
            parameter="Video.S3Object",
        )
    bucket, name = s3.get("Bucket"), s3.get("Name")
    if not isinstance(bucket, str) or not isinstance(name, str):
        raise InvalidParameterError("Video.S3Object needs Bucket and Name as strings", parameter="Video.S3Object")
    if "Version" in s3:
        raise InvalidParameterError(
            "Video.S3Object.Version is not supported: files have no versions here", parameter="Video.S3Object.Version"
        )
    return bucket, name


def _check_token(name: str, value: str | None, most: int) -> str | None:
    import re

    if value is not None and (not 1 <= len(value) <= most or not re.fullmatch(_TOKEN[1:-1], value)):
        raise InvalidParameterError(f"{name} {value[:100]!r} must be 1–{most} of A–Z a–z 0–9 - _", parameter=name)
    return value


def _job_tag(value: str | None) -> str | None:
    import re

    if value is not None and (not 1 <= len(value) <= 1024 or not re.fullmatch(r"[a-zA-Z0-9_.\-:+=/]+", value)):
        raise InvalidParameterError(f"JobTag {value[:100]!r} is invalid", parameter="JobTag")
    return value


def _start(service: FaceService, p: dict[str, Any], actor: Actor, kind: str) -> dict[str, Any]:
    if "NotificationChannel" in p:
        raise InvalidParameterError(
            "NotificationChannel is not supported: facetrust does not publish to SNS; poll "
            f"Get{kind} with the JobId until JobStatus is not IN_PROGRESS",
            parameter="NotificationChannel",
        )
    bucket, name = _video(p["Video"])
    request = VideoJobRequest(
        kind=kind,
        bucket=bucket,
        name=name,
        collection=check_collection_id(p["CollectionId"]) if "CollectionId" in p else None,
        threshold=check_threshold(p.get("FaceMatchThreshold", 80.0)),
        job_tag=_job_tag(p.get("JobTag")),
        client_token=_check_token("ClientRequestToken", p.get("ClientRequestToken"), 64),
    )
    return {"JobId": jobs_of(service).start(request, actor)}


# Rekognition names a video's format MP4, MOV or AVI; FFmpeg names MP4 and MOV alike ("mov")
_FORMATS = {".mp4": "MP4", ".m4v": "MP4", ".mov": "MOV", ".avi": "AVI"}


def _metadata(info: VideoInfo, name: str) -> dict[str, Any]:
    return {
        "Codec": info.codec,
        "DurationMillis": info.duration_ms,
        "Format": _FORMATS.get(PurePosixPath(name).suffix.lower(), info.format.upper()),
        "FrameRate": info.frame_rate,
        "FrameHeight": info.height,
        "FrameWidth": info.width,
    }


def _scope(job: VideoJob, order: str | None) -> str:
    """What a token is valid for: the job, and for GetFaceSearch the SortBy it was issued under
    (a position in one order names another result in the other)."""
    return job.job_id if order is None else f"{job.job_id}/{order}"


def _start_at(token: object, kind: str, job: VideoJob, order: str | None) -> int:
    try:
        return decode_position(token, kind, _scope(job, order))
    except InvalidPaginationTokenError:
        for other in _ORDERS if order is not None else ():
            if other != order and _issued(token, kind, _scope(job, other)):
                raise InvalidPaginationTokenError(
                    f"NextToken was issued for SortBy {other}, not {order}: ask with SortBy {other}, "
                    "or start again without NextToken"
                ) from None
        raise


def _issued(token: object, kind: str, scope: str) -> bool:
    try:
        decode_position(token, kind, scope)
    except InvalidPaginationTokenError:
        return False
    return True


def _job(
    service: FaceService, p: dict[str, Any], kind: str, actor: Actor, order: str | None = None
) -> tuple[VideoJob, int, int]:
    job_id = _check_token("JobId", p["JobId"], 64)
    job = jobs_of(service).get(str(job_id), kind, actor=actor)  # the starting key's (or an admin's) only
    # as Rekognition: more than 1,000 asked gives pages of 1,000
    most = min(check_limit(p.get("MaxResults", MAX_RESULTS), "MaxResults", 1, 2**31 - 1), MAX_RESULTS)
    start = _start_at(p["NextToken"], kind, job, order) if "NextToken" in p else 0
    return job, min(most, MAX_RESULTS), start


def _envelope(
    job: VideoJob, kind: str, items: list[Any], start: int, most: int, order: str | None = None
) -> dict[str, Any]:
    if start > len(items):  # a position past the results: no token this listing issued
        raise InvalidPaginationTokenError(
            f"NextToken is not a token this {kind} listing issued; start again without it"
        )
    out: dict[str, Any] = {"JobStatus": job.status, "JobId": job.job_id}
    video = {"S3Object": {"Bucket": job.request.bucket, "Name": job.request.name}}
    out["Video"] = video
    if job.request.job_tag is not None:
        out["JobTag"] = job.request.job_tag
    if job.status_message is not None:
        out["StatusMessage"] = job.status_message
    if job.metadata is not None:
        out["VideoMetadata"] = _metadata(job.metadata, job.request.name)
    if start + most < len(items):
        out["NextToken"] = encode_token(kind, _scope(job, order), start + most)
    return out


def start_face_detection(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    return _start(service, p, actor, "FaceDetection")


def get_face_detection(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    job, most, start = _job(service, p, "FaceDetection", actor)
    faces = list(job.faces)
    out = _envelope(job, "FaceDetection", faces, start, most)
    out["Faces"] = [{"Timestamp": t, "Face": face_detail(face)} for t, _, face in faces[start : start + most]]
    return out


def start_face_search(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    return _start(service, p, actor, "FaceSearch")


def get_face_search(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    order = p.get("SortBy", "TIMESTAMP")
    job, most, start = _job(service, p, "FaceSearch", actor, order)
    faces = list(job.faces)
    if order == "INDEX":
        faces.sort(key=lambda f: (f[1], f[0]))
    out = _envelope(job, "FaceSearch", faces, start, most, order)
    persons = []
    for t, index, face in faces[start : start + most]:
        entry: dict[str, Any] = {
            "Timestamp": t,
            "Person": {"Index": index, "BoundingBox": bounding_box(face.ratio_box), "Face": face_detail(face)},
        }
        matches = job.matches.get(index, ())
        if matches:
            entry["FaceMatches"] = [
                {**similarity(m.similarity, m.fmr, m.fmr_is_bound), "Face": stored_face(m.face)} for m in matches
            ]
        found = job.estimates.get(index)
        if found is not None:  # facetrust's: how this person's search estimated its own error rates
            entry["GalleryFalsePositiveIdentificationRate"] = float(found.fpir)
            entry.update(estimate(found.estimate))
        persons.append(entry)
    out["Persons"] = persons
    if job.audit_seq is not None:  # facetrust's governance fields, as image searches return them
        out["ReviewRequired"] = job.review_required
        out["AuditSequence"] = job.audit_seq
    if job.gallery_size is not None:
        out["GallerySize"] = job.gallery_size
    return out


def redact_image(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    """facetrust's extension: the image with its faces blurred or pixelated (not those ``KeepCollectionId`` holds)."""
    import base64

    options = RedactOptions(method=p.get("Method", "blur"), strength=p.get("Strength", 60))
    data, fmt, report = governed_image_redaction(
        service.ctx,
        p["Image"],
        actor=actor,
        options=options,
        keep=check_collection_id(p["KeepCollectionId"], "KeepCollectionId") if "KeepCollectionId" in p else None,
        threshold=check_threshold(p.get("KeepThreshold", 80.0), "KeepThreshold"),
    )
    return {
        "Image": {"Bytes": base64.b64encode(data).decode()},
        "ImageFormat": fmt,
        "FacesFound": report.faces,
        "FacesKept": report.tracks_kept,
        "FacesRedacted": report.boxes,
    }


_VIDEO = Member(Kind.OBJECT, required=True)
_STARTS = {
    "Video": _VIDEO,
    "ClientRequestToken": Member(Kind.STRING),
    "NotificationChannel": Member(Kind.OBJECT),
    "JobTag": Member(Kind.STRING),
}
_GETS = {
    "JobId": Member(Kind.STRING, required=True),
    "MaxResults": Member(Kind.INTEGER),
    "NextToken": Member(Kind.STRING),
}

OPERATIONS = (
    Operation(
        "StartFaceDetection",
        start_face_detection,
        {**_STARTS, "FaceAttributes": Member(Kind.STRING, choices=("DEFAULT", "ALL"))},
    ),
    Operation("GetFaceDetection", get_face_detection, _GETS),
    Operation(
        "StartFaceSearch",
        start_face_search,
        {**_STARTS, "CollectionId": COLLECTION, "FaceMatchThreshold": THRESHOLD},
    ),
    Operation(
        "RedactImage",
        redact_image,
        {
            "Image": IMAGE,
            "Method": Member(Kind.STRING, choices=METHODS),
            "Strength": Member(Kind.INTEGER),
            "KeepCollectionId": Member(Kind.STRING),
            "KeepThreshold": THRESHOLD,
        },
        images=1,
    ),
    Operation(
        "GetFaceSearch",
        get_face_search,
        {**_GETS, "SortBy": Member(Kind.STRING, choices=_ORDERS)},
    ),
)
