"""The operation table: every Rekognition operation facetrust serves, by name (one module per group)."""

from __future__ import annotations

from facetrust.server.operations import (
    collections,
    console,
    detect_compare,
    faces,
    governance,
    people,
    search,
    users,
    video,
)
from facetrust.server.operations.base import Operation

__all__ = ["OPERATIONS", "Operation"]

OPERATIONS: dict[str, Operation] = {
    op.name: op
    for group in (detect_compare, collections, faces, users, search, governance, people, console, video)
    for op in group.OPERATIONS
}
