"""Frozen results of the people operations: clusters of faces, and what a correction did."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NameResult", "PeoplePage", "Person"]


@dataclass(frozen=True)
class Person:
    """One cluster of faces believed to be one person.

    ``cohesion`` is the mean Similarity (0–100, as in searches) between the cluster's faces;
    ``representative_face_id`` is the face most similar to the others. ``user_id`` is set once
    the cluster's faces belong to a user (``name``). ``face_ids`` is filled by ``show``.
    """

    cluster_id: str
    size: int
    representative_face_id: str | None
    cohesion: float
    user_id: str | None = None
    face_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class PeoplePage:
    """The clusters of a collection, largest first (then by id), and how many faces match nobody;
    ``next_token`` while more clusters follow this page (asked for with a page size)."""

    people: tuple[Person, ...]
    unclustered: int
    threshold: float
    next_token: str | None = None


@dataclass(frozen=True)
class NameResult:
    """A named cluster: the user its faces now belong to, faces left out (with why), and the
    clusters that held the user's other faces and joined it."""

    user_id: str
    cluster_id: str
    associated: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    joined: tuple[str, ...] = ()  # the user's other clusters, now part of this one
