"""Text and JSON renderings of video results: persons and their sightings, matches, redaction reports."""

from __future__ import annotations

from typing import Any

from facetrust.cli.render import dumps, fmr_text, jsonable, num, similarity_text, table
from facetrust.cli.render_collections import plural
from facetrust.service.video import VideoSearchResult
from facetrust.video.pipeline import PersonTrack, VideoFaces
from facetrust.video.redact import RedactionReport

__all__ = ["detect_json", "detect_text", "redact_json", "redact_text", "search_json", "search_text"]


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.2f} s"


def _header(path: str, found: VideoFaces) -> str:
    info = found.info
    return (
        f"{path}: {info.duration_ms / 1000:.1f} s, {info.width}×{info.height} at {info.frame_rate:g} fps; "
        f"{found.frames_sampled} frames looked at ({found.sample_fps:g} per second), "
        f"{len(found.persons)} person{'' if len(found.persons) == 1 else 's'}"
    )


def _person_cells(p: PersonTrack) -> list[str]:
    biggest = max(f.face.size for f in p.faces)
    return [str(p.index), _seconds(p.first_ms), _seconds(p.last_ms), str(len(p.faces)), num(biggest, 0)]


def detect_text(path: str, found: VideoFaces) -> str:
    lines = [_header(path, found)]
    if found.persons:
        headers = ("person", "first seen", "last seen", "sightings", "largest px")
        lines.append(table(headers, [_person_cells(p) for p in found.persons], right=frozenset({0, 1, 2, 3, 4})))
    return "\n".join(lines)


def _metadata(found: VideoFaces) -> dict[str, Any]:
    info = found.info
    return {
        "codec": info.codec,
        "format": info.format,
        "width": info.width,
        "height": info.height,
        "frame_rate": info.frame_rate,
        "duration_ms": info.duration_ms,
        "frames": info.frame_count,
        "audio": info.has_audio,
    }


def _person_json(p: PersonTrack) -> dict[str, Any]:
    return {
        "person": p.index,
        "first_ms": p.first_ms,
        "last_ms": p.last_ms,
        "sightings": [
            {
                "timestamp_ms": f.timestamp_ms,
                "box": jsonable(f.face.box),
                "confidence": round(f.face.confidence, 2),
            }
            for f in p.faces
        ],
    }


def detect_json(path: str, found: VideoFaces) -> str:
    return dumps(
        {
            "video": path,
            "metadata": _metadata(found),
            "sample_fps": found.sample_fps,
            "persons": [_person_json(p) for p in found.persons],
        }
    )


def search_text(path: str, collection: str, result: VideoSearchResult) -> str:
    lines = [_header(path, result.video)]
    rows = []
    for pm in result.persons:
        first = pm.matches[0] if pm.matches else None
        cells = _person_cells(pm.person)[:3]
        if first is None:
            rows.append([*cells, "-", "-", "-", "-"])
        else:
            ext = first.face.external_image_id or "-"
            sim, fmr = similarity_text(first.similarity), fmr_text(first.fmr, first.fmr_is_bound)
            rows.append([*cells, first.face.face_id, ext, sim, fmr])
    if rows:
        headers = ("person", "first seen", "last seen", "best match", "external image id", "similarity", "est. FMR")
        lines.append(table(headers, rows, right=frozenset({0, 1, 2, 5, 6})))
    matched = sum(1 for p in result.persons if p.matches)
    lines.append(
        f"{matched} of {len(result.persons)} persons match in {collection} at similarity ≥ {result.threshold:g} "
        f"(gallery of {plural(result.gallery_size, 'face')}; audit entry {result.audit_seq})"
    )
    for pm in result.persons:
        if pm.estimate is not None and pm.estimate.unreliable is not None:
            lines.append(f"person {pm.person.index}: estimate unreliable: {pm.estimate.unreliable}")
    if result.review_required:
        lines.append(
            f"review required: candidates only, not an identification; another person records the decision with "
            f"`facetrust review record {result.audit_seq} --decision confirmed|rejected|inconclusive`"
        )
    return "\n".join(lines)


def search_json(path: str, collection: str, result: VideoSearchResult) -> str:
    persons = []
    for pm in result.persons:
        doc = _person_json(pm.person)
        doc["matches"] = [
            {
                "face_id": m.face.face_id,
                "external_image_id": m.face.external_image_id,
                "user_id": m.face.user_id,
                "similarity": round(m.similarity, 4),
                "fmr": m.fmr,
                "fmr_is_bound": m.fmr_is_bound,
            }
            for m in pm.matches
        ]
        if pm.estimate is not None:  # as `facetrust search --json` reports an image search's
            doc["fpir"] = pm.fpir
            doc["estimate"] = {
                "method": pm.estimate.method,
                "fmr": pm.estimate.fmr,
                "unreliable": pm.estimate.unreliable,
            }
        persons.append(doc)
    return dumps(
        {
            "video": path,
            "collection": collection,
            "metadata": _metadata(result.video),
            "threshold": result.threshold,
            "gallery_size": result.gallery_size,
            "fpir": result.fpir,
            "review_required": result.review_required,
            "audit_seq": result.audit_seq,
            "persons": persons,
        }
    )


def redact_text(source: str, report: RedactionReport) -> str:
    return (
        f"{source} → {report.output}: {report.faces} face sightings in {report.tracks} tracks, "
        f"{report.tracks_kept} kept; {report.frames_redacted} of {report.frames} frames redacted "
        f"({report.boxes} boxes)"
        + (f"; not carried: {', '.join(report.streams_dropped)}" if report.streams_dropped else "")
    )


def redact_json(source: str, report: RedactionReport) -> str:
    return dumps({"source": source, **jsonable(report)})
