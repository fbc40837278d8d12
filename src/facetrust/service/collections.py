"""CreateCollection, DescribeCollection and ListCollections: a collection per purpose, bound to one model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facetrust.errors import ConflictError
from facetrust.governance.actor import Actor
from facetrust.service.governed import governed
from facetrust.service.profiles import check_profile, profile_of
from facetrust.service.types import CollectionInfo, CollectionPage
from facetrust.service.validate import check_collection_id, check_limit, decode_position, encode_token
from facetrust.store import records

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.service.context import ServiceContext

__all__ = ["create_collection", "describe_collection", "list_collections"]


def create_collection(
    service: ServiceContext, actor: Actor, name: str, purpose: str | None, profile: str | None
) -> CollectionInfo:
    """A new, empty collection for one purpose, bound for life to the embedding model of ``profile``
    ("default" or "accurate", docs/engine.md; default: this service's own, the setting ``profile``).
    Another profile's engine is loaded here if no collection has needed it yet; the audit entry
    records the profile and model."""
    with governed(service, actor, "CreateCollection", name, purpose=purpose) as step:
        check_collection_id(name)
        chosen = service.engines.default_profile if profile is None else profile
        step.record.details = {"profile": chosen[:64]}  # what was asked (cut short), when it is refused
        check_profile(chosen)
        engine = service.engines.get(chosen)
        step.record.details = {"profile": chosen, "model": engine.model_id}
        with service.store.transaction() as conn:
            if service.store.get_collection(name, conn) is not None:
                raise ConflictError(f"Collection {name!r} already exists", resource=name)
            row = service.store.insert_collection(conn, name, engine.model_id, str(step.record.purpose))
            step.record.commit(conn)
    return CollectionInfo(row.name, row.model, row.created_at, 0, 0, row.purpose, profile_of(row.model))


def describe_collection(service: ServiceContext, actor: Actor, name: str) -> CollectionInfo:
    """The collection, counting only usable faces (expired ones are gone for every purpose)."""
    with governed(service, actor, "DescribeCollection", name) as step:
        row = step.collection
        with service.store.snapshot() as conn:
            faces = records.live_face_count(conn, row.id, service.clock())
            _, users = service.store.counts(row.id, conn)
    return CollectionInfo(row.name, row.model, row.created_at, faces, users, row.purpose, profile_of(row.model))


def list_collections(service: ServiceContext, actor: Actor, max_results: int, next_token: str | None) -> CollectionPage:
    """A page of collections in the order they were created. The token holds the last row id
    listed (never reused), so it stays short whatever the names' length, and a collection that
    exists throughout a listing is listed once however others come and go between pages."""
    with governed(service, actor, "ListCollections"):
        check_limit(max_results, "MaxResults", 1, 4096)
        after = decode_position(next_token, "collections", "") if next_token is not None else 0
        rows = service.store.list_collections(after, max_results + 1)
    more = len(rows) > max_results
    rows = rows[:max_results]
    token = encode_token("collections", "", rows[-1].id) if more else None
    return CollectionPage(tuple(r.name for r in rows), tuple(r.model for r in rows), token)
