"""Output renderers for collection commands: tables and JSON from ``facetrust.service`` results."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from facetrust.cli.render import dumps, face_json, fmr_text, jsonable, num, px_box, similarity_text, table

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.service import (
        AssociateResult,
        CollectionInfo,
        FaceSearchResult,
        IndexResult,
        StoredFace,
        UserInfo,
        UserSearchResult,
    )
    from facetrust.types import Face, RatioBox

__all__ = [
    "IndexOutcome",
    "associate_text",
    "collection_json",
    "collection_text",
    "collections_json",
    "collections_text",
    "faces_json",
    "faces_text",
    "index_json",
    "index_summary",
    "plural",
    "search_json",
    "search_text",
    "timestamp",
    "user_search_json",
    "user_search_text",
    "users_json",
    "users_text",
]


def timestamp(seconds: float) -> str:
    """Seconds since the epoch as an ISO 8601 UTC time to the second (a time no calendar date
    holds, stored by an older facetrust, as the number)."""
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        return f"{seconds:g} s after 1970-01-01T00:00:00Z"


def timestamp_or_none(seconds: float | None) -> str | None:
    """``timestamp(seconds)``, or None for a time that is not set."""
    return None if seconds is None else timestamp(seconds)


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _ratio(box: RatioBox) -> str:
    return f"{box.left:.3f},{box.top:.3f},{box.width:.3f},{box.height:.3f}"


def _fmr4(value: float) -> float:
    return float(f"{value:.4g}")


def _chance(fpir: float) -> str:
    return f"{fpir:.2g}"


# -- collections ----------------------------------------------------------------------------


def collections_text(names: Sequence[str], models: Sequence[str]) -> str:
    if not names:
        return "no collections"
    return table(("name", "model"), [[n, m] for n, m in zip(names, models, strict=True)])


def collections_json(names: Sequence[str], models: Sequence[str]) -> str:
    return dumps([{"name": n, "model": m} for n, m in zip(names, models, strict=True)])


def collection_text(info: CollectionInfo) -> str:
    rows = [
        ("name", info.name),
        ("model", info.model),
        ("profile", info.profile),
        ("created", timestamp(info.created_at)),
        ("faces", str(info.face_count)),
        ("users", str(info.user_count)),
    ]
    return "\n".join(f"{k:<8} {v}" for k, v in rows)


def collection_json(info: CollectionInfo) -> str:
    return dumps({**jsonable(info), "created": timestamp(info.created_at)})


# -- index ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexOutcome:
    """One image of an ``index`` run: its result, or the error that stopped it."""

    image: str
    external_image_id: str | None
    result: IndexResult | None = None
    error: dict[str, str] | None = None


def index_summary(collection: str, outcomes: Sequence[IndexOutcome]) -> str:
    """``C: N images, K faces indexed, U not indexed (REASON: n, …), F failed``."""
    done = [o.result for o in outcomes if o.result is not None]
    indexed = sum(len(r.indexed) for r in done)
    unindexed = [u for r in done for u in r.unindexed]
    reasons = Counter(reason for u in unindexed for reason in u.reasons)
    why = f" ({', '.join(f'{r}: {n}' for r, n in sorted(reasons.items()))})" if reasons else ""
    failed = sum(o.error is not None for o in outcomes)
    return (
        f"{collection}: {plural(len(outcomes), 'image')}, {plural(indexed, 'face')} indexed, "
        f"{len(unindexed)} not indexed{why}, {failed} failed"
    )


def _stored_json(face: StoredFace) -> dict[str, Any]:
    data: dict[str, Any] = jsonable(face)
    data["created"] = timestamp(face.created_at)
    return data


def index_json(collection: str, model: str, outcomes: Sequence[IndexOutcome]) -> str:
    images: list[dict[str, Any]] = []
    for o in outcomes:
        entry: dict[str, Any] = {"image": o.image, "external_image_id": o.external_image_id}
        if o.result is not None:
            entry["image_id"] = o.result.image_id
            entry["indexed"] = [{**_stored_json(f.stored), "face": face_json(f.face)} for f in o.result.indexed]
            entry["unindexed"] = [{"reasons": list(u.reasons), "face": face_json(u.face)} for u in o.result.unindexed]
        else:
            entry["error"] = o.error
        images.append(entry)
    return dumps({"collection": collection, "model": model, "images": images})


# -- faces ----------------------------------------------------------------------------------


def faces_text(collection: str, faces: Sequence[StoredFace]) -> str:
    if not faces:
        return f"{collection}: no faces"
    headers = ("face id", "external image id", "user id", "box ratio (l,t,w,h)", "conf", "bright", "sharp")
    rows = [
        [
            f.face_id,
            f.external_image_id or "-",
            f.user_id or "-",
            _ratio(f.box),
            num(f.confidence),
            num(f.quality.brightness),
            num(f.quality.sharpness),
        ]
        for f in faces
    ]
    return f"{collection}: {plural(len(faces), 'face')}\n" + table(headers, rows, right=frozenset({4, 5, 6}))


def faces_json(collection: str, model: str, faces: Sequence[StoredFace]) -> str:
    return dumps({"collection": collection, "model": model, "faces": [_stored_json(f) for f in faces]})


# -- users ----------------------------------------------------------------------------------


def users_text(collection: str, users: Sequence[UserInfo]) -> str:
    if not users:
        return f"{collection}: no users"
    rows = [[u.user_id, str(u.face_count), u.status] for u in users]
    return f"{collection}: {plural(len(users), 'user')}\n" + table(
        ("user id", "faces", "status"), rows, right=frozenset({1})
    )


def users_json(collection: str, users: Sequence[UserInfo]) -> str:
    return dumps(
        {"collection": collection, "users": [{**jsonable(u), "created": timestamp(u.created_at)} for u in users]}
    )


def associate_text(verb: str, result: AssociateResult) -> str:
    """The faces ``verb`` (associated / disassociated) and the user's face count after."""
    lines = [f"{verb} {face_id}" for face_id in result.associated]
    lines.append(f"user {result.user.user_id} has {plural(result.user.face_count, 'face')}")
    return "\n".join(lines)


# -- search ---------------------------------------------------------------------------------


def _searched_line(image: str | None, face: Face | None, searched: str | None) -> str:
    if face is not None:
        return f"{image}: searched face at {px_box(face)} ({face.size:.0f} px)"
    if searched is None:
        return f"{image}: no face that can be searched (none found, or all too small, cut off or below the filter)"
    return f"searched {searched}"


def _fpir_line(gallery: int, fpir: float, users: bool = False) -> str:
    """The chance of a false match in the list; a user search's gallery is the users' faces (its
    per-probe estimate, in the unreliable line, reads every face of the collection)."""
    what = f"{plural(gallery, 'face')} of users" if users else f"gallery of {plural(gallery, 'face')}"
    return f"{what}: chance of at least one false match in this list ≈ {_chance(fpir)}"


def _unreliable_lines(result: FaceSearchResult | UserSearchResult) -> list[str]:
    """Why the probe's Similarity, FMR and FPIR should not be trusted, when they should not."""
    reason = result.estimate.unreliable
    return [] if reason is None else [f"estimate unreliable: {reason}"]


def search_text(image: str, result: FaceSearchResult) -> str:
    lines = [_searched_line(image, result.searched_face, f"face {result.searched_face_id}")]
    if result.matches:
        headers = ("#", "face id", "external image id", "similarity", "est. FMR")
        rows = [
            [
                str(i),
                m.face.face_id,
                m.face.external_image_id or "-",
                similarity_text(m.similarity),
                fmr_text(m.fmr, m.fmr_is_bound),
            ]
            for i, m in enumerate(result.matches, 1)
        ]
        lines.append(table(headers, rows, right=frozenset({0, 3, 4})))
    else:
        lines.append(f"no faces match at similarity ≥ {result.threshold:g}")
    lines.append(_fpir_line(result.gallery_size, result.fpir))
    lines.extend(_unreliable_lines(result))
    lines.extend(_review_lines(result))
    return "\n".join(lines)


def _review_lines(result: FaceSearchResult | UserSearchResult) -> list[str]:
    """For purposes with human review: the candidates are not an identification (docs/governance.md)."""
    if not result.review_required:
        return []
    return [
        f"review required: candidates only, not an identification (search {result.audit_seq}); another person "
        f"records the decision with `facetrust review record {result.audit_seq} --decision "
        "confirmed|rejected|inconclusive`"
    ]


def _search_head(result: FaceSearchResult | UserSearchResult) -> dict[str, Any]:
    return {
        "threshold": result.threshold,
        "model": result.model,
        "gallery_size": result.gallery_size,
        "fpir": _fmr4(result.fpir),
        "searched_face": None if result.searched_face is None else face_json(result.searched_face),
        "review_required": result.review_required,
        "audit_seq": result.audit_seq,
        "estimate": {
            "method": result.estimate.method,
            "fmr": None if result.estimate.fmr is None else _fmr4(result.estimate.fmr),
            "unreliable": result.estimate.unreliable,
        },
    }


def search_json(image: str | None, result: FaceSearchResult) -> str:
    matches = [
        {
            "face": _stored_json(m.face),
            "similarity": round(m.similarity, 4),
            "fmr": _fmr4(m.fmr),
            "fmr_is_bound": m.fmr_is_bound,
            "score": round(m.score, 4),
        }
        for m in result.matches
    ]
    return dumps({"image": image, **_search_head(result), "matches": matches})


def user_search_text(image: str | None, result: UserSearchResult) -> str:
    if result.searched_user_id:
        searched = f"user {result.searched_user_id}"
    elif result.searched_face_id:
        searched = f"face {result.searched_face_id}"
    else:  # an image without a searchable face: nothing was searched (SearchUsersByImage answers so)
        searched = None
    lines = [_searched_line(image, result.searched_face, searched)]
    if result.matches:
        headers = ("#", "user id", "faces", "similarity", "est. FMR", "best face id")
        rows = [
            [
                str(i),
                m.user.user_id,
                str(m.user.face_count),
                similarity_text(m.similarity),
                fmr_text(m.fmr, m.fmr_is_bound),
                m.best_face_id,
            ]
            for i, m in enumerate(result.matches, 1)
        ]
        lines.append(table(headers, rows, right=frozenset({0, 2, 3, 4})))
    else:
        lines.append(f"no users match at similarity ≥ {result.threshold:g}")
    lines.append(_fpir_line(result.gallery_size, result.fpir, users=True))
    lines.extend(_unreliable_lines(result))
    lines.extend(_review_lines(result))
    return "\n".join(lines)


def user_search_json(image: str | None, result: UserSearchResult) -> str:
    matches = [
        {
            "user": jsonable(m.user),
            "similarity": round(m.similarity, 4),
            "fmr": _fmr4(m.fmr),
            "fmr_is_bound": m.fmr_is_bound,
            "score": round(m.score, 4),
            "best_face_id": m.best_face_id,
        }
        for m in result.matches
    ]
    head = {
        "image": image,
        "searched_user_id": result.searched_user_id,
        "searched_face_id": result.searched_face_id,
    }
    return dumps({**head, **_search_head(result), "matches": matches})
