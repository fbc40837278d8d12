"""SQL of the people tables: cluster membership, cluster summaries and correction links.

Membership and links reference ``faces`` with ``ON DELETE CASCADE``, so erasing a face (by
any path: DeleteFaces, consent revocation, retention) removes it from its cluster and drops
every correction that mentions it, in the erasure's own transaction; the erasure also drops its
clusters' summaries (``drop_summaries``), computed with its template.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from facetrust.store.inlist import select_in

__all__ = [
    "ClusterRow",
    "add_links",
    "cluster_users",
    "clusters",
    "drop_links",
    "drop_summaries",
    "keep_joined",
    "links",
    "links_within",
    "member_keys",
    "members",
    "membership",
    "must_links_of",
    "pending_keys",
    "replace_clusters",
    "set_members",
    "set_threshold",
    "threshold",
    "unclustered",
    "unplace",
    "unsummarised",
    "user_members",
]


@dataclass(frozen=True)
class ClusterRow:
    cluster_id: str
    representative: int | None
    cohesion: float
    updated_at: float
    size: int


def threshold(conn: sqlite3.Connection, collection_id: int) -> float | None:
    """The Similarity threshold of the collection's last full pass (None before the first)."""
    found = conn.execute("SELECT threshold FROM people_settings WHERE collection_id = ?", (collection_id,)).fetchone()
    return float(found[0]) if found else None


def set_threshold(conn: sqlite3.Connection, collection_id: int, value: float) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO people_settings(collection_id, threshold) VALUES (?, ?)", (collection_id, value)
    )


def members(conn: sqlite3.Connection, collection_id: int) -> dict[int, str | None]:
    """Face key → cluster id (None: looked at, and unclustered) of every placed face."""
    rows = conn.execute("SELECT face_key, cluster_id FROM people_members WHERE collection_id = ?", (collection_id,))
    return {int(k): c for k, c in rows}


def membership(conn: sqlite3.Connection, keys: Sequence[int]) -> dict[int, str | None]:
    """Face key → cluster id (None: unclustered) of those of ``keys`` that are placed."""
    sql = "SELECT face_key, cluster_id FROM people_members WHERE face_key IN ({marks})"
    return {int(k): c for k, c in select_in(conn, sql, (), list(keys))}


def unplace(conn: sqlite3.Connection, keys: Sequence[int]) -> None:
    """Make these faces pending again: the next placement places them afresh."""
    conn.executemany("DELETE FROM people_members WHERE face_key = ?", ((int(k),) for k in keys))


def pending_keys(conn: sqlite3.Connection, collection_id: int) -> list[int]:
    """Faces of the collection not yet placed (indexed since the last pass), in key order."""
    rows = conn.execute(
        "SELECT f.id FROM faces f LEFT JOIN people_members m ON m.face_key = f.id "
        "WHERE f.collection_id = ? AND m.face_key IS NULL ORDER BY f.id",
        (collection_id,),
    )
    return [int(r[0]) for r in rows]


def set_members(conn: sqlite3.Connection, collection_id: int, placed: Iterable[tuple[int, str | None]]) -> None:
    conn.executemany(
        "INSERT INTO people_members(face_key, collection_id, cluster_id) VALUES (?, ?, ?) "
        "ON CONFLICT(face_key) DO UPDATE SET cluster_id = excluded.cluster_id",
        ((int(k), collection_id, c) for k, c in placed),
    )


_LIVE = "(f.expires_at IS NULL OR f.expires_at > ?)"  # a face past its expiry is in no cluster


def clusters(
    conn: sqlite3.Connection, collection_id: int, now: float, cluster_ids: Sequence[str] | None = None
) -> list[ClusterRow]:
    """Clusters with at least one member not expired at ``now``, largest first (then by id); a
    size counts those members only."""
    sql = (
        "SELECT c.cluster_id, c.representative, c.cohesion, c.updated_at, count(m.face_key) AS n "
        "FROM people_clusters c JOIN people_members m "
        "ON m.collection_id = c.collection_id AND m.cluster_id = c.cluster_id JOIN faces f ON f.id = m.face_key "
        f"WHERE c.collection_id = ? AND {_LIVE}"
    )
    tail = " GROUP BY c.collection_id, c.cluster_id ORDER BY n DESC, c.cluster_id"
    if cluster_ids is None:
        rows: Iterable[sqlite3.Row] = conn.execute(sql + tail, (collection_id, now))
    else:
        rows = select_in(conn, sql + " AND c.cluster_id IN ({marks})" + tail, (collection_id, now), cluster_ids)
    return [ClusterRow(r[0], r[1], float(r[2]), float(r[3]), int(r[4])) for r in rows]


def replace_clusters(
    conn: sqlite3.Connection, collection_id: int, summaries: Iterable[tuple[str, int | None, float]]
) -> None:
    """Write (cluster id, representative key, cohesion) rows, replacing those ids; drop empty clusters."""
    now = time.time()
    conn.executemany(
        "INSERT OR REPLACE INTO people_clusters(collection_id, cluster_id, representative, cohesion, updated_at) "
        "VALUES (?, ?, ?, ?, ?)",
        ((collection_id, c, r, float(s), now) for c, r, s in summaries),
    )
    conn.execute(
        "DELETE FROM people_clusters WHERE collection_id = ? AND cluster_id NOT IN "
        "(SELECT DISTINCT cluster_id FROM people_members WHERE collection_id = ? AND cluster_id IS NOT NULL)",
        (collection_id, collection_id),
    )


def links(conn: sqlite3.Connection, collection_id: int, kind: str) -> list[tuple[int, int]]:
    rows = conn.execute(
        "SELECT face_a, face_b FROM people_links WHERE collection_id = ? AND kind = ?", (collection_id, kind)
    )
    return [(int(a), int(b)) for a, b in rows]


def add_links(conn: sqlite3.Connection, collection_id: int, kind: str, pairs: Iterable[tuple[int, int]]) -> int:
    """Record correction links (a later correction of a pair replaces the earlier one)."""
    now = time.time()
    rows = [(min(a, b), max(a, b), collection_id, kind, now) for a, b in pairs if a != b]
    conn.executemany(
        "INSERT OR REPLACE INTO people_links(face_a, face_b, collection_id, kind, created_at) VALUES (?, ?, ?, ?, ?)",
        rows,
    )
    return len(rows)


def links_within(conn: sqlite3.Connection, kind: str, keys: Sequence[int]) -> list[tuple[int, int]]:
    """Links of ``kind`` whose two faces are both among ``keys``."""
    inside = set(keys)
    sql = "SELECT face_a, face_b FROM people_links WHERE kind = ? AND face_a IN ({marks})"
    return [(int(a), int(b)) for a, b in select_in(conn, sql, (kind,), list(inside)) if int(b) in inside]


def _groups(edges: Iterable[tuple[int, int]]) -> list[set[int]]:
    """The connected groups of faces joined by ``edges``."""
    parent: dict[int, int] = {}

    def root(k: int) -> int:
        parent.setdefault(k, k)
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b in edges:
        parent[root(a)] = root(b)
    out: dict[int, set[int]] = {}
    for k in list(parent):
        out.setdefault(root(k), set()).add(k)
    return list(out.values())


def keep_joined(
    conn: sqlite3.Connection, collection_id: int, leaving: Sequence[int], edges: Iterable[tuple[int, int]]
) -> int:
    """Before faces ``leaving`` lose their must-links (``edges``, those that touch them): pin the other
    faces those links joined to one another, so a merge outlives the faces it was anchored to (an
    erased face, or one split off). How many links were added."""
    gone = set(leaving)
    pins: list[tuple[int, int]] = []
    for group in _groups(edges):
        stay = sorted(group - gone)
        pins += [(stay[0], k) for k in stay[1:]]
    return add_links(conn, collection_id, "must", pins) if pins else 0


def must_links_of(conn: sqlite3.Connection, keys: Sequence[int]) -> list[tuple[int, int]]:
    """Every must-link with a face among ``keys`` at either end."""
    found: set[tuple[int, int]] = set()
    for column in ("face_a", "face_b"):
        sql = f"SELECT face_a, face_b FROM people_links WHERE kind = 'must' AND {column} IN ({{marks}})"
        found |= {(int(a), int(b)) for a, b in select_in(conn, sql, (), list(keys))}
    return sorted(found)


def drop_links(conn: sqlite3.Connection, kind: str, pairs: Iterable[tuple[int, int]]) -> None:
    conn.executemany(
        "DELETE FROM people_links WHERE face_a = ? AND face_b = ? AND kind = ?",
        ((min(a, b), max(a, b), kind) for a, b in pairs),
    )


def member_keys(conn: sqlite3.Connection, collection_id: int, cluster_id: str, now: float) -> list[int]:
    """The cluster's members not expired at ``now``, in key order."""
    rows = conn.execute(
        "SELECT m.face_key FROM people_members m JOIN faces f ON f.id = m.face_key "
        f"WHERE m.collection_id = ? AND m.cluster_id = ? AND {_LIVE} ORDER BY m.face_key",
        (collection_id, cluster_id, now),
    )
    return [int(r[0]) for r in rows]


def cluster_users(
    conn: sqlite3.Connection, collection_id: int, now: float, cluster_ids: Sequence[str]
) -> dict[str, str]:
    """The user each of these clusters is associated with, where one is: the user of its faces not
    expired at ``now`` (the least user id, should a cluster hold faces of two)."""
    sql = (
        "SELECT m.cluster_id, min(f.user_id) FROM people_members m JOIN faces f ON f.id = m.face_key "
        f"WHERE m.collection_id = ? AND f.user_id IS NOT NULL AND {_LIVE} AND m.cluster_id IN ({{marks}}) "
        "GROUP BY m.cluster_id"
    )
    return {str(c): str(u) for c, u in select_in(conn, sql, (collection_id, now), list(cluster_ids))}


def unclustered(conn: sqlite3.Connection, collection_id: int, now: float) -> int:
    """How many placed faces of the collection, not expired at ``now``, are in no cluster."""
    alone = conn.execute(
        "SELECT count(*) FROM people_members m JOIN faces f ON f.id = m.face_key "
        f"WHERE m.collection_id = ? AND m.cluster_id IS NULL AND {_LIVE}",
        (collection_id, now),
    ).fetchone()[0]
    return int(alone)


def user_members(conn: sqlite3.Connection, collection_id: int, user_id: str, now: float) -> dict[int, str | None]:
    """Face key → cluster id (None: unclustered) of the user's placed faces not expired at ``now``."""
    rows = conn.execute(
        "SELECT m.face_key, m.cluster_id FROM faces f JOIN people_members m ON m.face_key = f.id "
        f"WHERE f.collection_id = ? AND f.user_id = ? AND {_LIVE} ORDER BY m.face_key",  # by faces_by_user
        (collection_id, user_id, now),
    )
    return {int(k): c for k, c in rows}


def drop_summaries(conn: sqlite3.Connection, collection_id: int, keys: Sequence[int]) -> None:
    """Faces ``keys`` are being erased: the summaries of their clusters go (the cohesion and the
    representative were computed with their templates); the next people operation makes them again."""
    gone = sorted({c for c in membership(conn, keys).values() if c is not None})
    conn.executemany(
        "DELETE FROM people_clusters WHERE collection_id = ? AND cluster_id = ?", ((collection_id, c) for c in gone)
    )


def unsummarised(conn: sqlite3.Connection, collection_id: int) -> list[str]:
    """Clusters with members but no summary: they lost faces to an erasure since the last people operation."""
    rows = conn.execute(
        "SELECT DISTINCT m.cluster_id FROM people_members m WHERE m.collection_id = ? AND m.cluster_id IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM people_clusters c WHERE c.collection_id = m.collection_id "
        "AND c.cluster_id = m.cluster_id) ORDER BY m.cluster_id",
        (collection_id,),
    )
    return [str(r[0]) for r in rows]
