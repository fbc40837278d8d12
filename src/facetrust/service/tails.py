"""Per-face cohort statistics of a collection: computed in the background or at enrolment, caught up in batches.

Each gallery face keeps its ``TAIL_K`` highest scores against the rest of its collection
(``store.tailstats``), what a search needs to map a score from the gallery face's side as well
as the probe's (``service.scoring``, ``symmetric_scores``). They are kept current without ever
rescoring the gallery:

* **enrolment**: the new faces' top K come from one batched kNN (``search_batch``) of the
  collection's index, and each new face enters the rows of the faces among its
  ``NEIGHBOURHOOD`` nearest whose K-th score it beats;
* **deletion** (DeleteFaces, erasure, retention, in ``Store.delete_faces``): every face whose
  top K held a deleted face is marked stale in that transaction, and recomputed afterwards
  (one kNN each);
* **background** (``face_tail_stats = "background"``, the default): nothing is computed as faces
  arrive or leave (a deletion still marks the holders stale); a server's background step runs a
  bounded ``catch_up`` on the replica holding the lease (``service.tailkeeper``). Without a
  server, ``catch_up`` (``facetrust collections catch-up``) computes them;
* **deferred** (``face_tail_stats = "deferred"``, for bulk imports): nothing is computed as
  faces arrive; ``catch_up`` computes every face without current statistics, a batch at a
  time. Until then those faces are scored from the probe's side only (in every mode).

A face is offered to the rows of its ``NEIGHBOURHOOD`` nearest faces only: a face far down a
new face's list whose own top K it would still enter (a sparse face near a crowded region) is
missed until it is recomputed. Statistics are derived data, like the index: computing them is
not an audited operation, and a failure leaves the faces to the next catch-up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from facetrust.errors import NotFoundError
from facetrust.fairness.tailnorm import anchor, top_scores_stats
from facetrust.service.scoring import MIN_GALLERY, TAIL_K, ProbeScale, crowded
from facetrust.store import tailstats
from facetrust.store.sqlite import CollectionRow, vector_from_blob
from facetrust.store.trouble import log_failure

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.calibration import Calibration
    from facetrust.service.context import ServiceContext

__all__ = [
    "BLOCK",
    "NEIGHBOURHOOD",
    "TailCatchUp",
    "after_change",
    "catch_up",
    "crowded_candidate",
    "face_sides",
    "refresh",
]

log = logging.getLogger(__name__)

NEIGHBOURHOOD = 2 * TAIL_K
BLOCK = 512


@dataclass(frozen=True)
class TailCatchUp:
    """What a catch-up pass did: faces whose statistics it computed, and how many still lack them."""

    collection: str
    computed: int
    remaining: int


def _merged(tail: tailstats.FaceTail, offers: list[tuple[int, float]]) -> tailstats.FaceTail | None:
    """``tail`` with the offered (key, score) pairs that enter its top K; None when none does.

    ``upto`` stays the computation's own: faces between it and an offered key may not have been
    offered yet (statistics computed out of key order: a deferred import, a failed step, another
    writer), and they must still be offered when their turn comes."""
    import numpy as np

    held = set(tail.neighbours.tolist())
    floor = float(tail.scores[-1]) if len(tail.scores) >= TAIL_K else -np.inf
    new = [(k, s) for k, s in offers if k not in held and s > floor]
    if not new:
        return None
    keys = np.concatenate([tail.neighbours, np.array([k for k, _ in new], dtype=np.int64)])
    scores = np.concatenate([tail.scores, np.array([s for _, s in new], dtype=np.float32)])
    order = np.argsort(-scores, kind="stable")[:TAIL_K]
    return tailstats.FaceTail(scores[order], keys[order], tail.upto)


def _vectors(service: ServiceContext, row: CollectionRow, keys: Sequence[int]) -> tuple[list[int], np.ndarray]:
    import numpy as np

    blobs = dict(service.store.embeddings(row.id, list(keys)))
    found = [k for k in keys if k in blobs]
    dim = service.engines.dim_of(row)  # the collection's own profile's templates, with no engine loaded
    return found, np.stack([vector_from_blob(blobs[k], dim) for k in found]) if found else np.zeros((0, dim))


def _offers(
    floors: dict[int, tuple[float, int]], keys: np.ndarray, found: np.ndarray, scores: np.ndarray
) -> dict[int, list[tuple[int, float]]]:
    """Per row that can change: the (new face, score) pairs that beat its floor and are newer
    than what it considered (``found``/``scores``: each new face's neighbours, -1 where none)."""
    import numpy as np

    if not floors:
        return {}
    rows = np.array(sorted(floors), dtype=np.int64)
    floor = np.array([floors[int(k)][0] for k in rows], dtype=np.float32)
    upto = np.array([floors[int(k)][1] for k in rows], dtype=np.int64)
    at = np.minimum(np.searchsorted(rows, found), len(rows) - 1)
    hit = (rows[at] == found) & (scores > floor[at]) & (keys[:, None] > upto[at])
    out: dict[int, list[tuple[int, float]]] = {}
    for i, j in zip(*np.nonzero(hit)):
        out.setdefault(int(found[i, j]), []).append((int(keys[i]), float(scores[i, j])))
    return out


def _block(service: ServiceContext, row: CollectionRow, keys: Sequence[int]) -> int:
    """Compute the top K of ``keys`` with one batched kNN, offer them to their neighbours' rows,
    and write both in one transaction; how many rows were written."""
    import numpy as np

    keys, vectors = _vectors(service, row, keys)
    if not keys:
        return 0
    with service.store.snapshot() as conn:
        upto = tailstats.last_key(conn, row.id)  # read first: the index then holds every face up to it
    hits, _ = service.indexes.get(row).search_batch(vectors, NEIGHBOURHOOD + 1)
    own_keys = np.array(keys, dtype=np.int64)
    found = np.where(hits.keys == own_keys[:, None], -1, hits.keys)
    own: dict[int, tailstats.FaceTail] = {}
    for key, near, near_scores in zip(keys, found, hits.scores):
        keep = near >= 0
        own[key] = tailstats.FaceTail(near_scores[keep][:TAIL_K], near[keep][:TAIL_K], upto)
    with service.store.transaction() as conn:
        held = {n for tail in own.values() for n in tail.neighbours.tolist()}
        alive = tailstats.present(conn, row.id, sorted(set(own) | held))
        write = {k: t for k, t in own.items() if k in alive and alive.issuperset(t.neighbours.tolist())}
        raced = [k for k in own if k in alive and k not in write]  # a neighbour was deleted meanwhile
        written = np.array([k in write for k in keys])
        others = np.setdiff1d(np.unique(found[found >= 0]), own_keys)
        offered = _offers(
            tailstats.floors(conn, others.tolist()), own_keys[written], found[written], hits.scores[written]
        )
        current = tailstats.read(conn, list(offered))
        for key, tail in current.items():
            merged = _merged(tail, offered[key])
            if merged is not None:
                write[key] = merged
        tailstats.put(conn, row.id, write, TAIL_K, current)
        tailstats.mark_stale(conn, row.id, raced)
    return len(write)


def refresh(service: ServiceContext, row: CollectionRow, keys: Sequence[int]) -> int:
    """(Re)compute the statistics of ``keys`` a block at a time; how many rows were written."""
    written = 0
    for start in range(0, len(keys), BLOCK):
        written += _block(service, row, keys[start : start + BLOCK])
    return written


def after_change(service: ServiceContext, row: CollectionRow, new_keys: Sequence[int] = ()) -> None:
    """After an enrolment or deletion committed: compute the new faces' statistics and recompute
    the stale ones, in the enrolment mode only (background and deferred leave them to a catch-up).
    Never fails the operation that committed: on an error the faces are left to the next catch-up."""
    if service.engine.settings.face_tail_stats != "enrolment":
        return
    try:
        keys, after = set(new_keys), 0
        while True:  # every stale face, however many a deletion left (a large retention sweep)
            with service.store.snapshot() as conn:
                stale = tailstats.stale(conn, row.id, 4 * BLOCK, after)
            if keys or stale:
                refresh(service, row, sorted(keys | set(stale)))
            if not stale:
                break
            keys, after = set(), stale[-1]
    except Exception as exc:  # derived data: the committed operation stands, a catch-up repairs it
        log_failure(log, exc, "per-face statistics of collection %r not updated; run a catch-up", row.name)


def catch_up(
    service: ServiceContext, collection: str, *, limit: int | None = None, recompute: bool = False
) -> TailCatchUp:
    """Compute the statistics of every face of ``collection`` that has none (or stale ones), a
    block at a time, at most ``limit`` faces (None: all). ``recompute``: drop every face's first,
    so all are computed afresh (statistics written before December 1, 2026 could miss faces whose
    own were computed out of order, and nothing else finds such rows)."""
    row = service.store.get_collection(collection)
    if row is None:
        raise NotFoundError(f"Collection {collection!r} does not exist", resource=collection)
    if recompute:
        with service.store.transaction() as conn:
            tailstats.forget_collection(conn, row.id)
    done, after = 0, 0
    while limit is None or done < limit:
        want = BLOCK if limit is None else min(BLOCK, limit - done)
        with service.store.snapshot() as conn:
            keys = tailstats.missing(conn, row.id, after, want)
        if not keys:
            break
        _block(service, row, keys)
        done, after = done + len(keys), keys[-1]
    with service.store.snapshot() as conn:
        remaining = tailstats.count_missing(conn, row.id)
    return TailCatchUp(collection, done, remaining)


def face_sides(
    service: ServiceContext, row: CollectionRow, keys: Sequence[int], calibration: Calibration, gallery: int
) -> dict[int, tuple[float, float, float, float]]:
    """``(u, m, c, m_G)`` of each of these faces that has current statistics (``fairness.tailnorm``:
    its side of a symmetric map) in a collection of ``gallery`` faces; empty when
    ``symmetric_scores`` is off or the collection is too small for a tail."""
    if not service.engine.settings.symmetric_scores or gallery - 1 < MIN_GALLERY or not keys:
        return {}
    with service.store.snapshot() as conn:
        rows = tailstats.read(conn, keys)
    full = {k: t.scores for k, t in rows.items() if len(t.scores) >= TAIL_K}
    if not full:
        return {}
    import numpy as np

    stats = top_scores_stats(np.stack(list(full.values())), gallery - 1)
    c, m_global = anchor(calibration, TAIL_K, gallery - 1)
    return {k: (float(u), float(m), c, m_global) for k, u, m in zip(full, stats.u, stats.m)}


def crowded_candidate(
    service: ServiceContext, row: CollectionRow, candidates: dict[int, str], scale: ProbeScale
) -> ProbeScale:
    """``scale``, flagged unreliable when one of the returned ``candidates`` (key → face id) is
    itself crowded (the gallery side of the estimate: its own 50th closest gallery face is as rare
    as ``scoring.crowded`` flags for a probe); unchanged when already flagged or not per-probe."""
    if scale.tail is None or scale.unreliable is not None or not candidates:
        return scale
    with service.store.snapshot() as conn:
        floors = tailstats.floors(conn, list(candidates))
    cohort = scale.gallery  # a stored face's cohort: the other faces, the probe's gallery size or one more
    for key, face_id in candidates.items():
        floor = floors.get(key, (-2.0, 0))[0]
        reason = crowded(scale.calibration, floor, cohort, f"candidate face {face_id}") if floor > -1.0 else None
        if reason is not None:
            return replace(scale, unreliable=reason)
    return scale
