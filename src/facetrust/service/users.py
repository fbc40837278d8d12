"""Users: named groups of up to 100 faces of one person, as Rekognition's user vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from facetrust.errors import ConflictError, LimitExceededError, NotFoundError, PurposeRefusedError
from facetrust.governance.actor import Actor
from facetrust.governance.roles import require_role
from facetrust.service.governed import Governed, check_search, governed, require_current, usable
from facetrust.service.idempotency import (
    TokenRequest,
    associate_from,
    associate_to,
    remember,
    replayed,
    token_request,
)
from facetrust.service.scoring import ProbeScale, refuse_unreliable, stored_face_scales
from facetrust.service.types import AssociateResult, UnsuccessfulFace, UserInfo, UserPage
from facetrust.service.validate import (
    check_face_ids,
    check_limit,
    check_threshold,
    check_user_id,
    decode_user_id,
    encode_token,
)
from facetrust.store.sqlite import CollectionRow, FaceRow, vector_from_blob

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    import numpy as np

    from facetrust.service.context import ServiceContext

__all__ = [
    "ASSOCIATE_THRESHOLD",
    "MAX_FACES_PER_USER",
    "associate_faces",
    "create_user",
    "delete_user",
    "disassociate_faces",
    "governed_associate",
    "list_users",
    "require_user",
]

MAX_FACES_PER_USER = 100
ASSOCIATE_THRESHOLD = 75.0  # Rekognition's default UserMatchThreshold for AssociateFaces (searches: 80)


def require_user(service: ServiceContext, row: CollectionRow, user_id: str) -> UserInfo:
    """The user, after checking the id; ``NotFoundError`` when the collection has no such user."""
    check_user_id(user_id)
    found = service.store.get_user(row.id, user_id, now=service.clock())  # expired faces are not counted
    if found is None:
        raise NotFoundError(f"User {user_id!r} is not in collection {row.name!r}", resource=user_id)
    return UserInfo(found.user_id, found.created_at, found.face_count)


def _create_user(service: ServiceContext, row: CollectionRow, user_id: str, ask: TokenRequest | None) -> bool:
    """Create the user; True when ``ask``'s token had already done it (nothing done now)."""
    check_user_id(user_id)
    now = service.clock()
    with service.store.transaction() as conn:
        require_current(service, row, conn)
        if replayed(conn, ask, now) is not None:
            return True
        if service.store.get_user(row.id, user_id, conn) is not None:
            raise ConflictError(f"User {user_id!r} already exists in collection {row.name!r}", resource=user_id)
        service.store.insert_user(conn, row.id, user_id)
        remember(conn, ask, row.id, user_id, {}, now)
    return False


def _delete_user(service: ServiceContext, row: CollectionRow, user_id: str, ask: TokenRequest | None) -> bool:
    """Delete the user; True when ``ask``'s token had already done it (nothing done now)."""
    check_user_id(user_id)
    now = service.clock()
    with service.store.transaction() as conn:
        require_current(service, row, conn)
        if replayed(conn, ask, now) is not None:
            return True
        if service.store.get_user(row.id, user_id, conn) is None:  # here, so two deletions do not both succeed
            raise NotFoundError(f"User {user_id!r} is not in collection {row.name!r}", resource=user_id)
        service.store.delete_user(conn, row.id, user_id)
        remember(conn, ask, row.id, user_id, {}, now)
    return False


def _list_users(service: ServiceContext, row: CollectionRow, max_results: int, next_token: str | None) -> UserPage:
    check_limit(max_results, "MaxResults", 1, 500)
    # scoped by the collection's row id (never reused): a token outlives no DeleteCollection, even
    # when a collection of the same name is made again, and stays short (a UserId is 128 at most)
    after = decode_user_id(next_token, "users", row.id) if next_token is not None else ""
    rows = service.store.list_users(row.id, after, max_results + 1, service.clock())
    more = len(rows) > max_results
    rows = rows[:max_results]
    token = encode_token("users", row.id, rows[-1].user_id) if more else None
    return UserPage(tuple(UserInfo(r.user_id, r.created_at, r.face_count) for r in rows), token)


def governed_associate(
    service: ServiceContext,
    collection: str,
    user_id: str,
    face_ids: Sequence[str],
    threshold: float,
    actor: Actor,
    client_token: str | None = None,
) -> AssociateResult:
    """AssociateFaces on the governed path. Matching new faces against the user's faces is a 1:N
    match: it needs a role that may search and the purpose's search rules, and is logged like one.
    ``client_token``: the same request again under it gets the first answer (``service.idempotency``)."""
    with governed(service, actor, "AssociateFaces", collection, model_check=True) as step:
        check_user_id(user_id)  # before the audit record takes it
        step.record.details = {"user_ids": [user_id], "threshold": threshold}
        ask = _ask(actor, "AssociateFaces", client_token, collection, user_id, face_ids, threshold)
        with service.store.snapshot() as conn:
            prior = replayed(conn, ask, service.clock())
        if prior is not None:  # answered before: nothing matched or written now
            result = associate_from(prior)
            step.record.details.update(face_ids=list(result.associated), replayed=True)
            return result
        result, matched = associate_faces(service, step, user_id, face_ids, threshold, actor, ask)
        step.record.details = {
            "user_ids": [user_id],
            "face_ids": list(result.associated),
            "threshold": threshold,
            "matched": len(matched),
            "similarities": [round(s, 4) for s, _ in matched],
            "estimates": [scale.method for _, scale in matched],
            "unreliable": [scale.unreliable for _, scale in matched],
            "review_required": bool(matched) and step.purpose is not None and step.purpose.human_review,
        }
        return result


def _matching_allowed(step: Governed, actor: Actor, threshold: float, candidates: int) -> None:
    """Refuse matching new faces against a user's faces where a search would be refused."""
    require_role(actor.key_id, actor.role, "SearchFaces")
    purpose = step.purpose
    if purpose is None:  # pragma: no cover - refused earlier on undeclared purposes
        raise NotFoundError("The collection's purpose is not declared")
    cap = check_search(purpose, threshold, candidates)
    if candidates > cap:
        raise PurposeRefusedError(
            f"Purpose {purpose.name!r} allows at most {cap} candidates per match; {candidates} faces would be "
            "matched against the user",
            purpose=purpose.name,
            rule="max_candidates",
        )


def _match_scales(
    service: ServiceContext, step: Governed, user_id: str, wanted: list[str], threshold: float, actor: Actor
) -> dict[int, ProbeScale]:
    """The per-probe scale of each new face that will be matched against the user's faces, read off
    the collection's index as a search with that face would (``service.scoring``). Runs before
    the association's write transaction, since the index reads the store; empty when nothing
    will be matched."""
    import numpy as np

    row, now = step.collection, service.clock()
    own = service.store.list_faces(row.id, after_key=0, limit=MAX_FACES_PER_USER + 1, user_id=user_id)
    new = [f for f in service.store.faces_by_ids(row.id, wanted).values() if usable(f, now) and f.user_id is None]
    if not new or not any(usable(f, now) for f in own):
        return {}
    _matching_allowed(step, actor, threshold, len(new))  # refused before the index does any work
    blobs = dict(service.store.embeddings(row.id, [f.key for f in new]))
    keys = [f.key for f in new if f.key in blobs]
    if not keys:
        return {}
    dim = service.engines.dim_of(row)
    vectors = np.stack([vector_from_blob(blobs[k], dim) for k in keys])
    return dict(zip(keys, stored_face_scales(service, row, keys, vectors)))


def _match(
    step: Governed, gallery: np.ndarray, new: list[FaceRow], blobs: dict[int, bytes], scales: dict[int, ProbeScale]
) -> dict[int, tuple[float, ProbeScale]]:
    """Each new face's Similarity to its closest face of the user, on its own scale; refused, like
    a search, when the purpose refuses unreliable estimates and one is."""
    out: dict[int, tuple[float, ProbeScale]] = {}
    for face in new:
        scale = scales.get(face.key)
        if scale is None:  # unassociated or usable only since the scales were read
            raise ConflictError(f"Face {face.face_id!r} changed while it was matched; try again", resource=face.face_id)
        if step.purpose is not None:
            refuse_unreliable(step.purpose, scale)
        score = float((gallery @ vector_from_blob(blobs[face.key], gallery.shape[1])).max())
        out[face.key] = (scale.compare(score).similarity, scale)
    return out


def _ask(
    actor: Actor,
    operation: str,
    token: str | None,
    collection: str,
    user_id: str,
    face_ids: Sequence[str] | None = None,
    threshold: float | None = None,
) -> TokenRequest | None:
    """The token request of a user operation (what makes two requests under one token the same)."""
    faces = list(face_ids) if isinstance(face_ids, (list, tuple)) else face_ids
    at = float(threshold) if isinstance(threshold, int) and not isinstance(threshold, bool) else threshold  # 75 is 75.0
    return token_request(actor, operation, token, collection=collection, user_id=user_id, faces=faces, at=at)


def associate_faces(
    service: ServiceContext,
    step: Governed,
    user_id: str,
    face_ids: Sequence[str],
    threshold: float,
    actor: Actor,
    ask: TokenRequest | None = None,
) -> tuple[AssociateResult, list[tuple[float, ProbeScale]]]:
    """Associate faces with a user. Once the user has (unexpired) faces, a new face must match one
    of them at ``threshold`` (Similarity, on the new face's own scale, as in a search) or it is
    refused with LOW_MATCH_CONFIDENCE. Also returns the Similarity and scale of each matched face."""
    import numpy as np

    row = step.collection
    require_user(service, row, user_id)
    wanted = list(dict.fromkeys(check_face_ids(face_ids, most=MAX_FACES_PER_USER)))
    threshold = check_threshold(threshold, "UserMatchThreshold")
    scales = _match_scales(service, step, user_id, wanted, threshold, actor)
    dim, now = service.engines.dim_of(row), service.clock()
    with service.store.transaction() as conn:
        prior = replayed(conn, ask, now)
        if prior is not None:  # the same request, under the same token, done meanwhile
            return associate_from(prior), []
        user = service.store.get_user(row.id, user_id, conn, now)  # again here: it may have been deleted since
        if user is None:
            raise NotFoundError(f"User {user_id!r} is not in collection {row.name!r}", resource=user_id)
        found = {k: f for k, f in service.store.faces_by_ids(row.id, wanted, conn).items() if usable(f, now)}
        own = service.store.list_faces(row.id, after_key=0, limit=MAX_FACES_PER_USER + 1, user_id=user_id)
        live = [f.key for f in own if usable(f, now)]  # an expired face is gone: nothing to match against
        new = [f for f in found.values() if f.user_id is None] if live else []
        if new:
            _matching_allowed(step, actor, threshold, len(new))
        blobs = dict(service.store.embeddings(row.id, live + [f.key for f in new], conn))
        matched = (
            _match(step, np.stack([vector_from_blob(blobs[k], dim) for k in live]), new, blobs, scales) if new else {}
        )
        sims = {key: similarity for key, (similarity, _) in matched.items()}
        associated, failed, new_keys = _decide(wanted, found, user_id, sims, threshold)
        if len(own) + len(new_keys) > MAX_FACES_PER_USER:
            raise LimitExceededError(
                f"User {user_id!r} has {len(own)} faces; adding {len(new_keys)} would exceed the limit of "
                f"{MAX_FACES_PER_USER}",
                limit=MAX_FACES_PER_USER,
            )
        service.store.set_user(conn, row.id, new_keys, user_id)
        _people_follow(service, row, conn, new_keys, live, now)
        info = UserInfo(user.user_id, user.created_at, user.face_count + len(new_keys))  # as committed
        result = AssociateResult(tuple(associated), tuple(failed), info)
        remember(conn, ask, row.id, user_id, associate_to(result), now, [f.key for f in found.values()])
    return result, list(matched.values())


def _people_follow(
    service: ServiceContext, row: CollectionRow, conn: sqlite3.Connection, given: list[int], own: list[int], now: float
) -> None:
    """Faces just given to a user: each leaves the person it was in (placed again, so it joins its
    user's person, never one of another user's faces), and a split that had parted it from the
    user's other faces is overridden (the later correction wins)."""
    from facetrust.service.people import summaries
    from facetrust.store import people as tables

    if not given:
        return
    left = {c for c in tables.membership(conn, given).values() if c is not None}
    tables.unplace(conn, given)
    tables.drop_links(conn, "cannot", [(k, m) for k in given for m in own])
    if left:
        groups = {c: tables.member_keys(conn, row.id, c, now) for c in sorted(left)}
        tables.replace_clusters(conn, row.id, summaries(service, row, {c: k for c, k in groups.items() if k}, conn))


def _decide(
    wanted: list[str], found: dict[str, FaceRow], user_id: str, sims: dict[int, float], threshold: float
) -> tuple[list[str], list[UnsuccessfulFace], list[int]]:
    """Per face asked for: associated (and the keys to associate now) or why not, in the order asked."""
    associated: list[str] = []
    failed: list[UnsuccessfulFace] = []
    new_keys: list[int] = []
    for face_id in wanted:
        face = found.get(face_id)
        if face is None:
            failed.append(UnsuccessfulFace(face_id, ("FACE_NOT_FOUND",)))
        elif face.user_id == user_id:  # already this user's: ignored, not returned (as AWS documents)
            continue
        elif face.user_id is not None:
            failed.append(UnsuccessfulFace(face_id, ("ASSOCIATED_TO_A_DIFFERENT_USER",), face.user_id))
        elif sims.get(face.key, threshold) < threshold:
            failed.append(UnsuccessfulFace(face_id, ("LOW_MATCH_CONFIDENCE",)))
        else:
            new_keys.append(face.key)
            associated.append(face_id)
    return associated, failed, new_keys


def _disassociate_faces(
    service: ServiceContext, row: CollectionRow, user_id: str, face_ids: Sequence[str], ask: TokenRequest | None
) -> tuple[AssociateResult, bool]:
    """Take faces from a user; also True when ``ask``'s token had already done it (nothing done now)."""
    check_user_id(user_id)
    wanted = list(dict.fromkeys(check_face_ids(face_ids, most=MAX_FACES_PER_USER)))
    done: list[str] = []
    failed: list[UnsuccessfulFace] = []
    now = service.clock()
    with service.store.transaction() as conn:
        prior = replayed(conn, ask, now)
        if prior is not None:
            return associate_from(prior), True
        if service.store.get_user(row.id, user_id, conn) is None:
            raise NotFoundError(f"User {user_id!r} is not in collection {row.name!r}", resource=user_id)
        found = service.store.faces_by_ids(row.id, wanted, conn)
        keys = []
        for face_id in wanted:
            face = found.get(face_id)
            if face is None:
                failed.append(UnsuccessfulFace(face_id, ("FACE_NOT_FOUND",)))
            elif face.user_id is None:  # already disassociated: ignored, not returned (as AWS documents)
                continue
            elif face.user_id != user_id:
                failed.append(UnsuccessfulFace(face_id, ("ASSOCIATED_TO_A_DIFFERENT_USER",), face.user_id))
            else:
                keys.append(face.key)
                done.append(face_id)
        service.store.set_user(conn, row.id, keys, None)
        user = service.store.get_user(row.id, user_id, conn, now)
        assert user is not None  # checked above, in this transaction
        result = AssociateResult(tuple(done), tuple(failed), UserInfo(user.user_id, user.created_at, user.face_count))
        remember(conn, ask, row.id, user_id, associate_to(result), now, [f.key for f in found.values()])
    return result, False


def create_user(
    service: ServiceContext, actor: Actor, collection: str, user_id: str, client_token: str | None = None
) -> None:
    """Create a user; ``client_token``: the same request again under it succeeds and does nothing
    (``service.idempotency``)."""
    with governed(service, actor, "CreateUser", collection) as step:
        check_user_id(user_id)  # before the audit record takes it
        step.record.details = {"user_ids": [user_id]}
        ask = _ask(actor, "CreateUser", client_token, collection, user_id)
        if _create_user(service, step.collection, user_id, ask):
            step.record.details["replayed"] = True


def delete_user(
    service: ServiceContext, actor: Actor, collection: str, user_id: str, client_token: str | None = None
) -> None:
    """Delete a user; its faces stay, unassociated (``erase_user`` removes them too)."""
    with governed(service, actor, "DeleteUser", collection) as step:
        check_user_id(user_id)  # before the audit record takes it
        step.record.details = {"user_ids": [user_id]}
        ask = _ask(actor, "DeleteUser", client_token, collection, user_id)
        if _delete_user(service, step.collection, user_id, ask):
            step.record.details["replayed"] = True


def list_users(
    service: ServiceContext, actor: Actor, collection: str, max_results: int, next_token: str | None
) -> UserPage:
    with governed(service, actor, "ListUsers", collection) as step:
        return _list_users(service, step.collection, max_results, next_token)


def disassociate_faces(
    service: ServiceContext,
    actor: Actor,
    collection: str,
    user_id: str,
    face_ids: Sequence[str],
    client_token: str | None = None,
) -> AssociateResult:
    with governed(service, actor, "DisassociateFaces", collection) as step:
        ask = _ask(actor, "DisassociateFaces", client_token, collection, user_id, face_ids)
        result, again = _disassociate_faces(service, step.collection, user_id, face_ids, ask)
        step.record.details = {"user_ids": [user_id], "face_ids": list(result.associated)}
        if again:
            step.record.details["replayed"] = True
        return result
