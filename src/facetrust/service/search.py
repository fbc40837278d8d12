"""1:N search over a collection's derived index, with calibrated similarity, FMR and FPIR."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from facetrust.calibration import fmr_from_similarity
from facetrust.errors import InvalidParameterError, NotFoundError
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.governance.recorder import Record
from facetrust.index import MAX_K
from facetrust.service.governed import Governed, check_search, governed, usable
from facetrust.service.quality import check_quality_filter, rejection_reasons
from facetrust.service.scoring import (
    TAIL_K,
    ProbeScale,
    estimate_of,
    estimate_record,
    refuse_unreliable,
    service_scale,
)
from facetrust.service.tails import crowded_candidate, face_sides
from facetrust.service.types import (
    FaceSearchMatch,
    FaceSearchResult,
    UserInfo,
    UserSearchMatch,
    UserSearchResult,
    stored_face,
)
from facetrust.service.users import require_user
from facetrust.service.validate import check_face_ids, check_limit, check_threshold
from facetrust.store.sqlite import CollectionRow, FaceRow, vector_from_blob

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    import numpy as np

    from facetrust.governance.policy import Purpose
    from facetrust.images import ImageSource
    from facetrust.service.context import ServiceContext
    from facetrust.store.protocol import FaceStore
    from facetrust.types import Comparison, Face

__all__ = [
    "SearchRequest",
    "fpir",
    "governed_face_search",
    "governed_user_search",
    "log_matches",
    "match_faces",
    "under_purpose",
]


def fpir(threshold: float, gallery_size: int, floor_fmr: float = 0.0) -> float:
    """Chance that comparing one probe with ``gallery_size`` non-mated faces yields a false match
    (each at the FMR ``threshold`` promises, or the calibration's ``floor_fmr`` where that is higher:
    no table claims an FMR below what its data resolve)."""
    if gallery_size <= 0:
        return 0.0
    fmr = max(fmr_from_similarity(threshold), floor_fmr)
    if fmr >= 1.0:
        return 1.0
    return -math.expm1(gallery_size * math.log1p(-fmr))


def _comparisons(
    service: ServiceContext, row: CollectionRow, scores: dict[int, float], scale: ProbeScale, threshold: float
) -> dict[int, Comparison]:
    """Each candidate's comparison on the probe's scale, with the gallery face's own side where
    the search is symmetric and the face has statistics (``service.tails``)."""
    sides = face_sides(service, row, list(scores), scale.calibration, scale.gallery + 1) if scale.symmetric else {}
    return {key: scale.compare(score, threshold, sides.get(key)) for key, score in scores.items()}


def _candidates(
    service: ServiceContext,
    row: CollectionRow,
    queries: np.ndarray,
    threshold: float,
    want: int,
    exclude: set[int],
    user_faces_only: bool = False,
) -> tuple[dict[int, float], int, ProbeScale]:
    """Keys scoring at or above the lowest raw score that can reach the threshold (best score over
    the queries; ``ProbeScale.candidate_floor``), the gallery size, and the probe's scale
    (``service.scoring``: from the first answer's top scores).

    Asks the index for more neighbours until the last one falls below that score, the whole
    gallery has been seen, ``want`` wanted candidates are in hand (one-sided scores only: a
    symmetric score does not follow the raw order), or the index's most neighbours per query
    (``MAX_K``, 4,096) have been asked for.
    """
    index = service.indexes.get(row)
    now = service.clock()
    stale = service.store.count_expired(row.id, now)  # expired, not yet swept: no candidate, not in the gallery
    k = max(16, min(want, 256) + len(exclude), TAIL_K + len(exclude) + 1) + stale
    scale: ProbeScale | None = None
    while True:
        k = min(k, MAX_K)
        hits, size = index.search(queries, k)
        found = sorted({int(key) for key in hits.keys.ravel().tolist() if key >= 0}) if stale else []
        gone = service.store.expired_keys(row.id, found, now) if found else set()
        seen: dict[int, float] = {}
        lowest = math.inf
        for keys, scores in zip(hits.keys, hits.scores):
            for key, score in zip(keys.tolist(), scores.tolist()):
                if key < 0:
                    continue
                lowest = min(lowest, score)
                if key not in exclude and key not in gone and score > seen.get(key, -math.inf):
                    seen[key] = score
        live = max(size - stale, 0)
        if scale is None:
            scale = service_scale(service, row, seen, max(live - len(exclude), 0))
        floor = scale.candidate_floor(threshold) - 1e-6
        best = {key: score for key, score in seen.items() if score >= floor}
        exhausted = k >= size or k >= MAX_K or lowest < floor
        enough = not user_faces_only and not scale.symmetric and len(best) >= want  # symmetric: order is not raw
        if exhausted or enough:
            return best, live, scale
        k *= 4


def _expired(face: FaceRow, now: float) -> bool:
    return not usable(face, now)


def _rows(service: ServiceContext, row: CollectionRow, keys: list[int], users_only: bool = False) -> dict[int, FaceRow]:
    with service.store.snapshot() as conn:
        return service.store.faces_by_keys(row.id, keys, conn, users_only=users_only)


def match_faces(
    service: ServiceContext, step: Governed, queries: np.ndarray, threshold: float, limit: int, exclude: set[int]
) -> tuple[tuple[FaceSearchMatch, ...], int, ProbeScale]:
    """The faces of the step's collection matching ``queries`` (best first, at most ``limit``), the
    gallery size they were searched in, and the probe's scale; refused (and recorded on the step)
    where the purpose refuses an unreliable estimate. One search's matching, whatever asks for it."""
    assert step.purpose is not None  # searches run only on a declared purpose (governed checks it)
    row = step.collection
    scores, size, scale = _candidates(service, row, queries, threshold, limit, exclude)
    gallery = max(size - len(exclude), 0)
    _refuse_unreliable(step.record, step.purpose, scale, threshold, gallery)
    matches = _face_matches(service, row, scores, scale, threshold, limit, service.clock())
    keys = service.store.faces_by_ids(row.id, [m.face.face_id for m in matches]) if matches else {}
    checked = crowded_candidate(service, row, {f.key: f.face_id for f in keys.values()}, scale)
    if checked is not scale:  # a returned face is crowded itself: the estimate is not to be trusted
        _refuse_unreliable(step.record, step.purpose, checked, threshold, gallery)
    return matches, gallery, checked


def _face_matches(
    service: ServiceContext,
    row: CollectionRow,
    scores: dict[int, float],
    cal: ProbeScale,
    threshold: float,
    limit: int,
    now: float,
) -> tuple[FaceSearchMatch, ...]:
    rows = _rows(service, row, list(scores))
    compared = _comparisons(service, row, scores, cal, threshold)
    out = []
    for key, comparison in sorted(compared.items(), key=lambda kv: (kv[1].similarity, kv[1].score), reverse=True):
        if key not in rows or _expired(rows[key], now):  # deleted since the index answered, or expired
            continue
        if comparison.similarity >= threshold:
            out.append(
                FaceSearchMatch(
                    stored_face(rows[key]),
                    comparison.similarity,
                    comparison.fmr,
                    comparison.score,
                    comparison.fmr_is_bound,
                )
            )
    return tuple(out[:limit])


def _stored_vector(service: ServiceContext, row: CollectionRow, face_id: str) -> tuple[FaceRow, np.ndarray]:
    check_face_ids([face_id], parameter="FaceId")
    found = service.store.faces_by_ids(row.id, [face_id])
    if face_id not in found or _expired(found[face_id], service.clock()):  # an expired face is gone
        raise NotFoundError(f"Face {face_id!r} is not in collection {row.name!r}", resource=face_id)
    blob = service.store.embedding(row.id, found[face_id].key)
    if blob is None:
        raise NotFoundError(f"Face {face_id!r} is not in collection {row.name!r}", resource=face_id)
    return found[face_id], vector_from_blob(blob, service.engines.dim_of(row))[None, :]


def _probe(
    service: ServiceContext, row: CollectionRow, image: ImageSource, quality_filter: str
) -> tuple[Face, np.ndarray]:
    """The largest searchable face of ``image``, embedded by the collection's profile's engine;
    ``NoSearchableFace`` (an ``InvalidParameterError``) where it has none."""
    level = check_quality_filter(quality_filter)
    engine = service.engine_for(row)
    rgb = engine.load_image(image)
    faces = [f for f in engine.detect(rgb) if not rejection_reasons(f, level)]
    if not faces:
        raise NoSearchableFace(
            "There are no faces in the image that can be searched (none found, or all too small, cut off or "
            "below the quality filter)",
            parameter="Image",
        )
    emb = engine.embed(rgb, faces[:1])[0]
    return faces[0], emb.vector[None, :]


class NoSearchableFace(InvalidParameterError):
    """An image without a face a search can use: SearchFacesByImage refuses it, SearchUsersByImage
    answers it with no matches (as AWS documents each)."""


def _user_matches(
    service: ServiceContext,
    row: CollectionRow,
    queries: np.ndarray,
    threshold: float,
    max_users: int,
    exclude_faces: set[int],
    exclude_user: str | None,
    now: float,
) -> tuple[tuple[UserSearchMatch, ...], int, ProbeScale]:
    scores, _, cal = _candidates(service, row, queries, threshold, max_users, exclude_faces, user_faces_only=True)
    rows = _rows(service, row, list(scores), users_only=True)  # only a user's face can answer: read no other
    compared = _comparisons(service, row, {key: score for key, score in scores.items() if key in rows}, cal, threshold)
    best: dict[str, tuple[Comparison, str]] = {}
    for key, found in compared.items():
        face = rows.get(key)
        if face is None or face.user_id is None or face.user_id == exclude_user or _expired(face, now):
            continue
        if face.user_id not in best or (found.similarity, found.score) > _rank(best[face.user_id][0]):
            best[face.user_id] = (found, face.face_id)
    out: list[UserSearchMatch] = []
    for user_id, (comparison, face_id) in sorted(best.items(), key=lambda kv: _rank(kv[1][0]), reverse=True):
        if comparison.similarity < threshold or len(out) == max_users:
            break  # best first, so every later user scores lower: look no more users up
        info = service.store.get_user(row.id, user_id, now=service.clock())
        if info is None:  # deleted since the index answered
            continue
        user = UserInfo(info.user_id, info.created_at, info.face_count)
        out.append(
            UserSearchMatch(
                user, comparison.similarity, comparison.fmr, comparison.score, comparison.fmr_is_bound, face_id
            )
        )
    # the users' faces the probe was compared with: expired, unswept faces are in no gallery, and
    # the probe's own faces (its face, or the searched user's) were left out of the search
    left_out = sum(
        1 for f in _rows(service, row, list(exclude_faces), users_only=True).values() if not _expired(f, now)
    )
    gallery = max(service.store.count_user_faces(row.id, now) - left_out, 0)
    return tuple(out), gallery, cal


def _rank(comparison: Comparison) -> tuple[float, float]:
    return comparison.similarity, comparison.score


def log_matches(
    store: FaceStore, rec: Record, sims: list[float], threshold: float, gallery: int, purpose: Purpose, **extra: object
) -> audit.AuditEntry:
    """Record what the search returned (ids and similarities, never embeddings)."""
    rec.details = {
        "threshold": threshold,
        "gallery_size": gallery,
        "review_required": purpose.human_review,
        "similarities": [round(s, 4) for s in sims],
        **extra,
    }
    with store.transaction() as conn:
        return rec.commit(conn)


def answered_rates(matches: Sequence[FaceSearchMatch | UserSearchMatch]) -> dict[str, list[Any]]:
    """What a search's audit entry keeps of the false-match rate each match was answered with
    (``fmrs``, ``fmr_bounds``): the review queue shows the same."""
    return {"fmrs": [float(f"{m.fmr:.4g}") for m in matches], "fmr_bounds": [m.fmr_is_bound for m in matches]}


def _refuse_unreliable(rec: Record, purpose: Purpose, scale: ProbeScale, threshold: float, gallery: int) -> None:
    """Refuse the search when its purpose refuses unreliable estimates and this one is; the refusal's
    audit entry keeps the threshold, gallery size and the estimate that was refused."""
    rec.details = {"threshold": threshold, "gallery_size": gallery, **estimate_record(scale, threshold, gallery)}
    refuse_unreliable(purpose, scale)


MAX_USERS = 500  # SearchUsers' and SearchUsersByImage's MaxUsers: botocore's MaxUserResults, 1-500


def under_purpose(
    step: Governed, threshold: float, threshold_name: str, most: int, most_name: str, top: int = 4096
) -> tuple[CollectionRow, Purpose, float, int]:
    """Check a search's parameters against its collection's purpose: row, purpose, threshold, candidate
    cap (``most``, 1 to ``top``)."""
    row = step.collection  # a search names its collection (None is refused here, by name)
    threshold = check_threshold(threshold, threshold_name)
    check_limit(most, most_name, 1, top)
    purpose = step.purpose
    if purpose is None:  # pragma: no cover - searches are refused on undeclared purposes
        raise NotFoundError("The collection's purpose is not declared")
    return row, purpose, threshold, check_search(purpose, threshold, most)


@dataclass(frozen=True)
class SearchRequest:
    """What a search asks: the operation (SearchFaces, SearchFacesByImage, SearchUsers,
    SearchUsersByImage), the collection, the threshold, the most results (faces or users), and
    the probe: a stored face, a user's faces, or the largest face of an image."""

    operation: str
    collection: str
    threshold: float = 80.0
    most: int = 4096
    face_id: str | None = None
    user_id: str | None = None
    image: ImageSource | None = None
    quality_filter: str = "NONE"


def governed_face_search(service: ServiceContext, actor: Actor, ask: SearchRequest) -> FaceSearchResult:
    """A face search under the collection purpose's rules, recorded in the audit log."""
    operation, collection, threshold, max_faces = ask.operation, ask.collection, ask.threshold, ask.most
    face_id, image, quality_filter = ask.face_id, ask.image, ask.quality_filter
    with governed(service, actor, operation, collection, model_check=True) as step:
        rec = step.record
        row, purpose, threshold, limit = under_purpose(step, threshold, "FaceMatchThreshold", max_faces, "MaxFaces")
        searched: Face | None = None
        exclude: set[int] = set()
        if face_id is not None:
            stored, vec = _stored_vector(service, row, face_id)
            exclude = {stored.key}
        else:
            searched, vec = _probe(service, row, image, quality_filter)  # type: ignore[arg-type]
        matches, gallery, scale = match_faces(service, step, vec, threshold, limit, exclude)
        entry = log_matches(
            service.store,
            rec,
            [m.similarity for m in matches],
            threshold,
            gallery,
            purpose,
            face_ids=[m.face.face_id for m in matches],
            **answered_rates(matches),
            searched_face_id=face_id,
            **estimate_record(scale, threshold, gallery),
        )
    return FaceSearchResult(
        matches,
        threshold,
        gallery,
        scale.fpir(threshold, gallery),
        row.model,
        searched_face_id=face_id,
        searched_face=searched,
        review_required=purpose.human_review,
        audit_seq=entry.seq,
        estimate=estimate_of(scale, threshold),
    )


def _user_queries(service: ServiceContext, row: CollectionRow, user_id: str) -> tuple[np.ndarray, set[int]]:
    import numpy as np

    require_user(service, row, user_id)
    now = service.clock()
    own = [f for f in service.store.list_faces(row.id, after_key=0, limit=100, user_id=user_id) if usable(f, now)]
    if not own:
        raise InvalidParameterError(f"User {user_id!r} has no associated faces to search with", parameter="UserId")
    blobs = dict(service.store.embeddings(row.id, [f.key for f in own]))
    dim = service.engines.dim_of(row)
    vecs = np.stack([vector_from_blob(blobs[f.key], dim) for f in own if f.key in blobs])
    return vecs, {f.key for f in own}


def _no_user_search(
    service: ServiceContext, rec: Record, row: CollectionRow, purpose: Purpose, threshold: float
) -> UserSearchResult:
    """SearchUsersByImage of an image without a searchable face: nothing searched, nothing found
    (an FPIR of 0: no list to hold a false match), and the attempt recorded in the audit log."""
    gallery = service.store.count_user_faces(row.id, service.clock())
    scale = ProbeScale(service.engine_for(row).calibration, gallery, None)
    entry = log_matches(service.store, rec, [], threshold, gallery, purpose, user_ids=[], face_ids=[], no_face=True)
    return UserSearchResult(
        (),
        threshold,
        gallery,
        0.0,
        row.model,
        review_required=purpose.human_review,
        audit_seq=entry.seq,
        estimate=estimate_of(scale, threshold),
    )


def governed_user_search(service: ServiceContext, actor: Actor, ask: SearchRequest) -> UserSearchResult:
    """A user search under the collection purpose's rules, recorded in the audit log."""
    operation, collection, threshold, max_users = ask.operation, ask.collection, ask.threshold, ask.most
    user_id, face_id, image, quality_filter = ask.user_id, ask.face_id, ask.image, ask.quality_filter
    with governed(service, actor, operation, collection, model_check=True) as step:
        rec = step.record
        row, purpose, threshold, limit = under_purpose(
            step, threshold, "UserMatchThreshold", max_users, "MaxUsers", MAX_USERS
        )
        searched: Face | None = None
        if image is not None:
            try:
                searched, vecs = _probe(service, row, image, quality_filter)
            except NoSearchableFace:  # AWS: "an empty UserMatches list and no SearchedFace object"
                return _no_user_search(service, rec, row, purpose, threshold)
            exclude: set[int] = set()
        elif (user_id is None) == (face_id is None):
            raise InvalidParameterError("Give exactly one of UserId and FaceId", parameter="UserId")
        elif face_id is not None:
            stored, vecs = _stored_vector(service, row, face_id)
            exclude = {stored.key}
        else:
            vecs, exclude = _user_queries(service, row, str(user_id))
        matches, gallery, scale = _user_matches(service, row, vecs, threshold, limit, exclude, user_id, service.clock())
        if matches:  # a returned user's best face that is crowded itself makes the estimate untrustworthy
            best = service.store.faces_by_ids(row.id, [m.best_face_id for m in matches])
            scale = crowded_candidate(service, row, {f.key: f.face_id for f in best.values()}, scale)
        _refuse_unreliable(rec, purpose, scale, threshold, gallery)
        entry = log_matches(
            service.store,
            rec,
            [m.similarity for m in matches],
            threshold,
            gallery,
            purpose,
            user_ids=[m.user.user_id for m in matches],
            face_ids=[m.best_face_id for m in matches],
            **answered_rates(matches),
            searched_face_id=face_id,
            searched_user_id=user_id,
            **estimate_record(scale, threshold, gallery),
        )
    return UserSearchResult(
        matches,
        threshold,
        gallery,
        scale.fpir(threshold, gallery),
        row.model,
        searched_face_id=face_id,
        searched_user_id=user_id,
        searched_face=searched,
        review_required=purpose.human_review,
        audit_seq=entry.seq,
        estimate=estimate_of(scale, threshold),
    )
