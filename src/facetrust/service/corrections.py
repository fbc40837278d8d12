"""Corrections to people clusters that persist: merge, split ("not this person"), name.

Each is stored as must-link / cannot-link pairs of faces (``people_links``), which every later
pass respects, and is audited. The links go with the faces: erasing a face drops them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from facetrust.errors import ConflictError, InvalidParameterError
from facetrust.governance.actor import LOCAL, Actor
from facetrust.people.types import NameResult, Person
from facetrust.service.people import (
    check_cluster_id,
    find_cluster,
    people_step,
    prepare_people,
    show,
    summaries,
)
from facetrust.service.users import MAX_FACES_PER_USER
from facetrust.service.validate import check_face_ids, check_user_id
from facetrust.store import people as tables
from facetrust.store.sqlite import CollectionRow

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.service.context import ServiceContext

__all__ = ["merge", "name", "split"]

_PINS = 3  # a merge links every face to this many of the first cluster's, so it survives erasing a few of them


def _check_cluster_ids(values: object) -> list[str]:
    if not isinstance(values, (list, tuple)):
        raise InvalidParameterError("ClusterIds must be a list of cluster id strings", parameter="ClusterIds")
    wanted = list(dict.fromkeys(check_cluster_id(v, "ClusterIds") for v in values))
    if len(wanted) < 2:
        raise InvalidParameterError(
            f"Merging needs at least two different clusters; got {wanted}", parameter="ClusterIds"
        )
    return wanted


def _refuse_mixed(service: ServiceContext, row: CollectionRow, keys: list[int], conn: sqlite3.Connection) -> None:
    faces = service.store.faces_by_keys(row.id, keys, conn)
    images: dict[str, str] = {}
    users = {f.user_id for f in faces.values() if f.user_id is not None}
    if len(users) > 1:
        raise ConflictError(
            f"Cannot merge clusters whose faces belong to different users: {', '.join(sorted(users))}",
            resource=row.name,
        )
    for f in faces.values():
        other = images.setdefault(f.image_id, f.face_id)
        if other != f.face_id:
            raise ConflictError(
                f"Cannot merge: faces {other} and {f.face_id} come from one image ({f.image_id}), so they are "
                "two different people",
                resource=row.name,
            )


def merge(service: ServiceContext, collection: str, cluster_ids: Sequence[str], *, actor: Actor = LOCAL) -> Person:
    """Merge clusters into the first one named; they stay together in every later pass."""
    with people_step(service, actor, "MergePeople", collection) as (rec, row, purpose):
        wanted = _check_cluster_ids(cluster_ids)
        rec.details = {"cluster_ids": wanted}
        prepare_people(service, row, purpose)
        with service.store.transaction() as conn:
            sides = [
                (find_cluster(service, row, c, conn), tables.member_keys(conn, row.id, c, service.clock()))
                for c in wanted
            ]
            everyone = [k for _, keys in sides for k in keys]
            _refuse_mixed(service, row, everyone, conn)
            target, target_keys = sides[0]
            anchors = target_keys[:_PINS]  # every face is tied to the anchors, so no full pass parts them
            pins = [(a, b) for b in everyone for a in anchors if a != b]
            tables.drop_links(conn, "cannot", tables.links_within(conn, "cannot", everyone))
            tables.add_links(conn, row.id, "must", pins)
            tables.set_members(conn, row.id, [(k, target.cluster_id) for k in everyone])
            tables.replace_clusters(conn, row.id, summaries(service, row, {target.cluster_id: everyone}, conn))
            rec.details["face_count"] = len(everyone)
            rec.commit(conn)
    return show(service, collection, wanted[0], actor=actor)


def split(
    service: ServiceContext, collection: str, cluster_id: str, face_ids: Sequence[str], *, actor: Actor = LOCAL
) -> Person:
    """Take faces out of a cluster ("not this person"): they never rejoin its other faces, and
    leave its user if it was named. Returns what remains of the cluster."""
    with people_step(service, actor, "SplitPerson", collection) as (rec, row, purpose):
        wanted = list(dict.fromkeys(check_face_ids(face_ids)))
        rec.details = {"cluster_ids": [cluster_id], "face_ids": wanted}
        prepare_people(service, row, purpose)
        with service.store.transaction() as conn:
            find_cluster(service, row, cluster_id, conn)
            keys = tables.member_keys(conn, row.id, cluster_id, service.clock())
            faces = service.store.faces_by_keys(row.id, keys, conn)
            by_id = {f.face_id: f for f in faces.values()}
            missing = [f for f in wanted if f not in by_id]
            if missing:
                raise InvalidParameterError(
                    f"Faces {', '.join(missing[:5])}{f' and {len(missing) - 5} more' if len(missing) > 5 else ''} "
                    f"are not in cluster {cluster_id!r}",
                    parameter="FaceIds",
                )
            out = {by_id[f].key for f in wanted}
            rest = [k for k in keys if k not in out]
            pairs = [(a, b) for a in out for b in rest]
            tables.keep_joined(conn, row.id, list(out), tables.links_within(conn, "must", keys))  # a merge stays
            tables.drop_links(conn, "must", pairs)
            tables.add_links(conn, row.id, "cannot", pairs)
            named = {f.user_id for f in faces.values()} - {None}  # the cluster's user, even if no face stays
            service.store.set_user(conn, row.id, [k for k in out if faces[k].user_id in named], None)
            gone = list(out) + (rest if len(rest) < 2 else [])
            tables.set_members(conn, row.id, [(k, None) for k in gone])
            tables.replace_clusters(
                conn, row.id, summaries(service, row, {cluster_id: rest} if len(rest) > 1 else {}, conn)
            )
            rec.commit(conn)
    if len(rest) < 2:
        return Person(cluster_id, 0, None, 0.0)
    return show(service, collection, cluster_id, actor=actor)


def name(
    service: ServiceContext, collection: str, cluster_id: str, user_id: str, *, actor: Actor = LOCAL
) -> NameResult:
    """Name a cluster: create the user (if new) and associate the cluster's faces with it,
    in the order they were indexed, up to the per-user limit (the rest are listed as skipped)."""
    with people_step(service, actor, "NamePerson", collection) as (rec, row, purpose):
        check_user_id(user_id)
        rec.details = {"cluster_ids": [cluster_id], "user_ids": [user_id]}
        prepare_people(service, row, purpose)
        with service.store.transaction() as conn:
            find_cluster(service, row, cluster_id, conn)
            faces = service.store.faces_by_keys(
                row.id, tables.member_keys(conn, row.id, cluster_id, service.clock()), conn
            )
            others = sorted({f.user_id for f in faces.values() if f.user_id is not None} - {user_id})
            if others:
                raise ConflictError(
                    f"Cluster {cluster_id!r} already belongs to user {others[0]!r}", resource=cluster_id
                )
            user = service.store.get_user(row.id, user_id, conn)
            if user is None:
                service.store.insert_user(conn, row.id, user_id)
            room = MAX_FACES_PER_USER - (user.face_count if user else 0)
            free = [f for f in faces.values() if f.user_id is None]
            taken, skipped = free[: max(room, 0)], free[max(room, 0) :]
            service.store.set_user(conn, row.id, [f.key for f in taken], user_id)
            joined = _gather_user(service, row, cluster_id, user_id, conn)
            rec.details["face_ids"] = [f.face_id for f in taken]
            if joined:
                rec.details["joined_cluster_ids"] = joined
            rec.commit(conn)
    associated = tuple(f.face_id for f in faces.values() if f.user_id == user_id) + tuple(f.face_id for f in taken)
    skipped_ids = tuple((f.face_id, "LIMIT_EXCEEDED") for f in skipped)
    return NameResult(user_id, cluster_id, associated, skipped_ids, tuple(joined))


def _gather_user(
    service: ServiceContext, row: CollectionRow, cluster_id: str, user_id: str, conn: sqlite3.Connection
) -> list[str]:
    """Bring the user's faces elsewhere into the cluster just named after them now, rather than at
    the next full pass: each other cluster holding their faces joins whole, and each unclustered
    face of theirs joins, where no two faces of one image, no other user and no "not this person"
    link would end up together (the constraints a full pass keeps). Returns the ids of the
    clusters that joined."""
    now = service.clock()
    members = tables.member_keys(conn, row.id, cluster_id, now)
    elsewhere = {k: c for k, c in tables.user_members(conn, row.id, user_id, now).items() if c != cluster_id}
    if not elsewhere:
        return []
    others = sorted({c for c in elsewhere.values() if c is not None})
    moves: list[tuple[str | None, list[int]]] = [(c, tables.member_keys(conn, row.id, c, now)) for c in others]
    moves += [(None, [k]) for k, c in elsewhere.items() if c is None]
    everyone = members + [k for _, keys in moves for k in keys]
    faces = service.store.faces_by_keys(row.id, everyone, conn)
    apart: dict[int, set[int]] = {}
    for a, b in tables.links_within(conn, "cannot", everyone):
        apart.setdefault(a, set()).add(b)
        apart.setdefault(b, set()).add(a)
    inside = set(members)
    images = {faces[k].image_id for k in members if k in faces}
    joined: list[str] = []
    for other, keys in moves:
        newcomers = [k for k in keys if k in faces]
        fits = (
            newcomers
            and all(faces[k].user_id in (None, user_id) for k in newcomers)
            and images.isdisjoint(faces[k].image_id for k in newcomers)
            and not any(apart.get(k, set()) & inside for k in newcomers)
        )
        if not fits:
            continue
        inside.update(newcomers)
        images.update(faces[k].image_id for k in newcomers)
        tables.set_members(conn, row.id, [(k, cluster_id) for k in newcomers])
        if other is not None:
            joined.append(other)
    if len(inside) > len(members):
        tables.replace_clusters(conn, row.id, summaries(service, row, {cluster_id: sorted(inside)}, conn))
    return joined
