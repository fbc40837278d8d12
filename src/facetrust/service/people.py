"""People: a collection's faces clustered into people on its vector index, and corrections.

Every function takes the service (its store, indexes, engine and governance checks), the actor
and the request, and is audited like the other operations. Clustering is 1:N matching, so it
is refused where the collection's purpose refuses search, or below its minimum threshold.
Faces indexed since the last pass are placed (incrementally) before any people operation.
"""

from __future__ import annotations

import math
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from facetrust.errors import InvalidParameterError, NotFoundError
from facetrust.governance.actor import LOCAL, Actor, shown
from facetrust.people.cluster import LINKAGE, Faces, assign, cluster, cosine
from facetrust.people.types import PeoplePage, Person
from facetrust.service.governed import check_search, governed, require_current, usable
from facetrust.service.validate import check_limit, check_threshold, decode_ranked, encode_token
from facetrust.store import people as tables
from facetrust.store.sqlite import CollectionRow, FaceRow, vector_from_blob

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.governance.policy import Purpose
    from facetrust.governance.recorder import Record
    from facetrust.service.context import ServiceContext

__all__ = [
    "DEFAULT_THRESHOLD",
    "check_cluster_id",
    "find_cluster",
    "list_people",
    "people_step",
    "place_pending",
    "prepare_people",
    "recluster",
    "show",
    "summaries",
]

#: Similarity (0–100) at which two faces may link; tuned on half of LFW's people (bench/cluster.py).
DEFAULT_THRESHOLD = 90.0
MAX_PAGE = 1000  # the most people a page (MaxResults) holds
NEIGHBOURS = 16
_COHESION_SAMPLE = 200


def _threshold(service: ServiceContext, row: CollectionRow, conn: sqlite3.Connection) -> float:
    found = tables.threshold(conn, row.id)
    return DEFAULT_THRESHOLD if found is None else found


def _vectors(service: ServiceContext, row: CollectionRow, keys: Sequence[int], conn: sqlite3.Connection) -> np.ndarray:
    import numpy as np

    dim = service.engines.dim_of(row)
    blobs = dict(service.store.embeddings(row.id, list(keys), conn))
    if not keys:
        return np.zeros((0, dim), np.float32)
    return np.stack([vector_from_blob(blobs[k], dim) for k in keys])


@contextmanager
def people_step(
    service: ServiceContext, actor: Actor, operation: str, collection: str, *, model_check: bool = True
) -> Iterator[tuple[Record, CollectionRow, Purpose]]:
    """A people operation on the governed path (role, collection, purpose, audit entry): its
    audit record, collection and purpose."""
    with governed(service, actor, operation, collection, model_check=model_check) as step:
        if step.purpose is None:  # pragma: no cover - a collection's use always resolves its purpose
            raise NotFoundError(f"Collection {collection!r} has no purpose", resource=collection)
        yield step.record, step.collection, step.purpose


def _live(
    service: ServiceContext, row: CollectionRow, keys: Sequence[int], conn: sqlite3.Connection
) -> dict[int, FaceRow]:
    """The faces of ``keys`` that still exist and have not expired (expired faces are unusable everywhere)."""
    now = service.clock()
    return {k: f for k, f in service.store.faces_by_keys(row.id, keys, conn).items() if usable(f, now)}


def _faces(service: ServiceContext, row: CollectionRow, keys: Sequence[int], conn: sqlite3.Connection) -> Faces:
    found = _live(service, row, keys, conn)
    return Faces(
        image_of={k: f.image_id for k, f in found.items()},
        user_of={k: f.user_id for k, f in found.items()},
        must_link=tables.links(conn, row.id, "must"),
        cannot_link=tables.links(conn, row.id, "cannot"),
    )


def summaries(
    service: ServiceContext, row: CollectionRow, groups: dict[str, list[int]], conn: sqlite3.Connection
) -> list[tuple[str, int | None, float]]:
    """(cluster id, representative key, cohesion) of each group: the medoid and the mean Similarity."""
    cal = service.engine_for(row).calibration
    out = []
    for cluster_id, keys in groups.items():
        sample = sorted(keys)[:_COHESION_SAMPLE]
        vecs = _vectors(service, row, sample, conn)
        sims = vecs @ vecs.T
        n = len(sample)
        mean_score = float((sims.sum() - sims.trace()) / max(n * (n - 1), 1))
        rep = sample[int(sims.sum(axis=1).argmax())] if n else None
        out.append((cluster_id, rep, round(cal.similarity(mean_score), 4)))
    return out


def _knn(service: ServiceContext, row: CollectionRow, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Neighbours of every face on the collection's index (caught up with the store first), a block
    of faces at a time: bounded memory, and other searches and writes go on in between blocks."""
    index = service.indexes.get(row).ensure()
    hits = index.search_batch(vectors, NEIGHBOURS + 1)
    return hits.keys, hits.scores


def _graph(
    service: ServiceContext, row: CollectionRow, pending: bool
) -> tuple[list[int], np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The faces to place (only unplaced ones, or all), their vectors and their neighbours on the
    index, read before the write transaction (the index catches up with the store on its reads)."""
    with service.store.snapshot() as conn:
        keys = tables.pending_keys(conn, row.id) if pending else service.store.face_keys(row.id, conn)
        vectors = _vectors(service, row, keys, conn)
    if not keys:
        return keys, vectors, (vectors, vectors)
    return keys, vectors, _knn(service, row, vectors)


class _Centroids:
    """Sums of the unit vectors of clusters' members, read when first needed and kept up to date."""

    def __init__(self, service: ServiceContext, row: CollectionRow, conn: sqlite3.Connection) -> None:
        self.service, self.row, self.conn = service, row, conn
        self.sums: dict[str | int, np.ndarray] = {}

    def of(self, what: str | int, members: dict[str, list[int]]) -> np.ndarray:
        if what not in self.sums:
            keys = members[what] if isinstance(what, str) else [what]
            self.sums[what] = _vectors(self.service, self.row, keys, self.conn).sum(axis=0)
        return self.sums[what]

    def agrees(self, vector: np.ndarray, members: dict[str, list[int]]) -> Callable[[str | int], bool]:
        return lambda what: cosine(vector, self.of(what, members)) >= LINKAGE

    def add(self, label: str, vector: np.ndarray, members: dict[str, list[int]]) -> None:
        self.sums[label] = self.of(label, members) + vector


def place_pending(service: ServiceContext, row: CollectionRow) -> int:
    """Place faces indexed since the last pass: each joins the best allowed cluster it matches,
    starts one with an unclustered face it matches, or stays unclustered. Returns how many."""
    pending, vectors, (keys, scores) = _graph(service, row, pending=True)
    if not pending:
        return 0
    vector_of = dict(zip(pending, vectors))
    row_of = {k: i for i, k in enumerate(pending)}  # its row of neighbours, before erased/expired faces drop out
    with service.store.transaction() as conn:
        require_current(service, row, conn)
        threshold = service.engine_for(row).calibration.match_score(_threshold(service, row, conn))
        label_of = tables.members(conn, row.id)
        members_of: dict[str, list[int]] = {}
        for k, label in label_of.items():
            if label is not None:
                members_of.setdefault(label, []).append(k)
        now = service.clock()
        users = {f.user_id for f in service.store.faces_by_keys(row.id, pending, conn).values() if f.user_id}
        user_labels = {u: {c for c in tables.user_members(conn, row.id, u, now).values() if c} for u in users}
        near = set(keys[keys >= 0].tolist())
        joinable = {label_of[k] for k in near if label_of.get(k) is not None}  # a pending face may join these
        joinable |= {c for labels in user_labels.values() for c in labels}  # or its user's person
        wanted = near | set(pending) | {m for label in joinable for m in members_of.get(str(label), [])}
        faces = _faces(service, row, sorted(wanted), conn)  # every member the constraints check, not only neighbours
        for label in joinable:  # an expired member (not yet swept) is no longer one: nothing to check or average
            members_of[str(label)] = [m for m in members_of.get(str(label), []) if m in faces.image_of]
        pending = [k for k in pending if k in faces.image_of and k not in label_of]  # not erased or placed since
        sums = _Centroids(service, row, conn)
        touched: set[str] = set()
        for key in pending:
            i = row_of[key]
            found = [(int(m), float(s)) for m, s in zip(keys[i].tolist(), scores[i].tolist()) if m >= 0]
            ok = {m: label_of[m] for m, _ in found if m in label_of and m in faces.image_of}
            vec = vector_of[key]
            user = faces.user_of.get(key)
            own = [c for c in user_labels.get(user or "", ()) if members_of.get(c)]
            if own:  # a user's face joins its user's person (as a full pass's user link does), or none
                target = max(own, key=lambda c: len(members_of[c]))
                label, mate = assign(
                    key,
                    [(members_of[target][0], math.inf)],
                    {members_of[target][0]: target},
                    members_of,
                    faces,
                    threshold,
                )
            else:
                label, mate = assign(key, found, ok, members_of, faces, threshold, sums.agrees(vec, members_of))
            if mate is not None:
                label = str(uuid.uuid4())
                sums.sums[label] = sums.of(mate, members_of)
                members_of[label] = [mate]
                label_of[mate] = label
                tables.set_members(conn, row.id, [(mate, label)])
            if label is not None:
                sums.add(label, vec, members_of)
                members_of[label].append(key)
                touched.add(label)
                if user is not None:
                    user_labels.setdefault(user, set()).add(label)
            label_of[key] = label
        tables.set_members(conn, row.id, [(k, label_of[k]) for k in pending])
        tables.replace_clusters(conn, row.id, summaries(service, row, {c: members_of[c] for c in touched}, conn))
    return len(pending)


def _stable_ids(groups: list[list[int]], before: dict[int, str | None]) -> dict[str, list[int]]:
    """Name new groups after the old cluster they overlap most (each old id used once)."""
    overlaps: list[tuple[int, int, str]] = []
    for i, keys in enumerate(groups):
        counts: dict[str, int] = {}
        for k in keys:
            old = before.get(k)
            if old is not None:
                counts[old] = counts.get(old, 0) + 1
        overlaps.extend((n, i, old) for old, n in counts.items())
    named: dict[int, str] = {}
    used: set[str] = set()
    for _, i, old in sorted(overlaps, key=lambda t: (-t[0], t[1], t[2])):
        if i not in named and old not in used:
            named[i] = old
            used.add(old)
    return {named.get(i) or str(uuid.uuid4()): keys for i, keys in enumerate(groups)}


def _full_pass(service: ServiceContext, row: CollectionRow, threshold: float) -> None:
    import numpy as np

    keys, vectors, (neighbours, scores) = _graph(service, row, pending=False)
    with service.store.transaction() as conn:
        require_current(service, row, conn)
        tables.set_threshold(conn, row.id, float(threshold))
        before = tables.members(conn, row.id)
        faces = _faces(service, row, keys, conn)
        present = np.array([k in faces.image_of for k in keys], dtype=bool)  # not erased since the read
        score = service.engine_for(row).calibration.match_score(threshold)
        found = cluster(
            np.asarray(keys)[present], vectors[present], (neighbours[present], scores[present]), faces, score
        )
        groups = _stable_ids(found, before)
        label_of: dict[int, str | None] = dict.fromkeys(faces.image_of)
        for cluster_id, members in groups.items():
            label_of.update(dict.fromkeys(members, cluster_id))
        tables.set_members(conn, row.id, label_of.items())
        tables.replace_clusters(conn, row.id, summaries(service, row, groups, conn))


def recluster(
    service: ServiceContext,
    collection: str,
    *,
    threshold: float | None = None,
    limit: int | None = None,
    actor: Actor = LOCAL,
) -> PeoplePage:
    """A full pass over the collection (corrections respected); later faces join incrementally
    at the same ``threshold`` (Similarity, 0–100). Answers with the people as ``list_people`` does
    (the first ``limit`` of them, if given)."""
    with people_step(service, actor, "ClusterFaces", collection) as (rec, row, purpose):
        with service.store.snapshot() as conn:
            chosen = check_threshold(
                threshold if threshold is not None else _threshold(service, row, conn), "Threshold"
            )
        check_search(purpose, chosen, 1)
        _paging(row, limit, None)  # before the pass, which a refusal would not undo
        _full_pass(service, row, chosen)
        page = _page(service, row, limit)
        rec.details = {"clusters": len(page.people), "unclustered": page.unclustered, "threshold": chosen}
        return page


def _persons(
    service: ServiceContext, row: CollectionRow, clusters: Sequence[tables.ClusterRow], conn: sqlite3.Connection
) -> tuple[Person, ...]:
    """The clusters as persons: each one's representative is a face not expired (the stored medoid,
    or, once that has expired, the earliest indexed of the others); the representatives and users
    read in two queries for them all, where three queries a person took 1.14 s for 20,000 people,
    now 0.69 s (bench/people_list.py)."""
    now = service.clock()
    reps = _live(service, row, [c.representative for c in clusters if c.representative], conn)
    users = tables.cluster_users(conn, row.id, now, [c.cluster_id for c in clusters])
    out = []
    for c in clusters:
        rep = reps.get(c.representative or -1)
        if rep is None:
            live = _live(service, row, tables.member_keys(conn, row.id, c.cluster_id, now), conn)
            rep = live[min(live)] if live else None
        out.append(Person(c.cluster_id, c.size, rep.face_id if rep else None, c.cohesion, users.get(c.cluster_id)))
    return tuple(out)


def _paging(row: CollectionRow, limit: int | None, next_token: str | None) -> tuple[int, str] | None:
    """Check a page size and token (before anything is done for the request); where the token's
    page ended: its last person's size and cluster id."""
    if limit is not None:
        check_limit(limit, "MaxResults", 1, MAX_PAGE)
    return decode_ranked(next_token, "people", row.id) if next_token is not None else None


def _page(
    service: ServiceContext, row: CollectionRow, limit: int | None = None, after: tuple[int, str] | None = None
) -> PeoplePage:
    """The persons of the collection, largest first, at most ``limit`` (None: all) after ``after``
    (``_paging``)."""
    now = service.clock()
    with service.store.snapshot() as conn:
        found = tables.clusters(conn, row.id, now)
        if after is not None:  # the order is (size descending, id): what follows the last one shown
            found = [c for c in found if c.size < after[0] or (c.size == after[0] and c.cluster_id > after[1])]
        page = found if limit is None else found[:limit]
        people = _persons(service, row, page, conn)
        more = len(found) > len(page)
        token = encode_token("people", row.id, f"{page[-1].size}:{page[-1].cluster_id}") if more else None
        return PeoplePage(people, tables.unclustered(conn, row.id, now), _threshold(service, row, conn), token)


def _resummarise(service: ServiceContext, row: CollectionRow) -> None:
    """Clusters that lost faces to an erasure (which took their summaries): one left with fewer
    than two faces is dissolved, its face unclustered (as after a split); the others get their
    cohesion and representative again, from the faces left."""
    with service.store.snapshot() as conn:
        if not tables.unsummarised(conn, row.id):
            return
    with service.store.transaction() as conn:
        require_current(service, row, conn)
        now = service.clock()
        groups = {c: tables.member_keys(conn, row.id, c, now) for c in tables.unsummarised(conn, row.id)}
        kept = {c: keys for c, keys in groups.items() if len(keys) > 1}
        alone = [(k, None) for k, c in tables.members(conn, row.id).items() if c in groups and c not in kept]
        tables.set_members(conn, row.id, alone)  # expired members too, so the cluster is gone for good
        tables.replace_clusters(conn, row.id, summaries(service, row, kept, conn))


def prepare_people(service: ServiceContext, row: CollectionRow, purpose: Purpose) -> None:
    """Refuse where the purpose refuses 1:N search at the collection's threshold; summarise again
    the clusters an erasure changed; place new faces."""
    with service.store.snapshot() as conn:
        check_search(purpose, _threshold(service, row, conn), 1)
    _resummarise(service, row)
    place_pending(service, row)


def list_people(
    service: ServiceContext,
    collection: str,
    *,
    limit: int | None = None,
    next_token: str | None = None,
    actor: Actor = LOCAL,
) -> PeoplePage:
    """The collection's people, largest first: all of them, or ``limit`` (1–``MAX_PAGE``) a page
    from where ``next_token`` (of a ListPeople or ClusterFaces page) ended."""
    with people_step(service, actor, "ListPeople", collection) as (rec, row, purpose):
        after = _paging(row, limit, next_token)
        prepare_people(service, row, purpose)
        page = _page(service, row, limit, after)
        rec.details = {"clusters": len(page.people), "unclustered": page.unclustered}
        return page


_CLUSTER_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


def check_cluster_id(cluster_id: object, parameter: str = "ClusterId") -> str:
    """A cluster id as the service makes them (a UUID: letters, digits and '-', at most 64)."""
    if not isinstance(cluster_id, str) or _CLUSTER_ID.fullmatch(cluster_id) is None:
        raise InvalidParameterError(
            f"Cluster id {shown(cluster_id) if isinstance(cluster_id, str) else repr(cluster_id)[:64]} is "
            "invalid: 1-64 letters, digits or '-' (ids as ListPeople returns them)",
            parameter=parameter,
        )
    return cluster_id


def find_cluster(
    service: ServiceContext, row: CollectionRow, cluster_id: str, conn: sqlite3.Connection
) -> tables.ClusterRow:
    check_cluster_id(cluster_id)
    found = tables.clusters(conn, row.id, service.clock(), [cluster_id])
    if not found:
        raise NotFoundError(f"Cluster {cluster_id!r} is not in collection {row.name!r}", resource=cluster_id)
    return found[0]


def show(service: ServiceContext, collection: str, cluster_id: str, *, actor: Actor = LOCAL) -> Person:
    """One cluster with the ids of its faces."""
    with people_step(service, actor, "DescribePerson", collection) as (rec, row, purpose):
        prepare_people(service, row, purpose)
        rec.details = {"cluster_ids": [cluster_id]}
        with service.store.snapshot() as conn:
            (person,) = _persons(service, row, [find_cluster(service, row, cluster_id, conn)], conn)
            keys = tables.member_keys(conn, row.id, cluster_id, service.clock())
            ids = tuple(f.face_id for _, f in sorted(_live(service, row, keys, conn).items()))
        return Person(
            person.cluster_id, person.size, person.representative_face_id, person.cohesion, person.user_id, ids
        )
