"""CreateCollection, DescribeCollection and ListCollections: a collection per purpose, bound to one model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facetrust.config import PROFILES
from facetrust.errors import ConflictError, InvalidParameterError
from facetrust.governance.actor import Actor
from facetrust.service.context import is_fused
from facetrust.service.governed import governed
from facetrust.service.types import CollectionInfo, CollectionPage
from facetrust.service.validate import check_collection_id, check_limit, decode_token, encode_token
from facetrust.store import records

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.service.context import ServiceContext

__all__ = ["create_collection", "describe_collection", "list_collections"]


def create_collection(
    service: ServiceContext, actor: Actor, name: str, purpose: str | None, profile: str | None
) -> CollectionInfo:
    """A new, empty collection for one purpose, bound to this service's embedding model.

    ``profile`` ("default" or "accurate", docs/engine.md), when given, must be the one this
    service embeds with (the setting ``profile``); a collection keeps its model for life.
    """
    with governed(service, actor, "CreateCollection", name, purpose=purpose) as step:
        check_collection_id(name)
        if profile is not None:
            _check_profile(service, profile)
        with service.store.transaction() as conn:
            if service.store.get_collection(name, conn) is not None:
                raise ConflictError(f"Collection {name!r} already exists", resource=name)
            row = service.store.insert_collection(conn, name, service.engine.model_id, str(step.record.purpose))
            step.record.commit(conn)
    return CollectionInfo(row.name, row.model, row.created_at, 0, 0, row.purpose)


def _check_profile(service: ServiceContext, profile: str) -> None:
    if profile not in PROFILES:
        raise InvalidParameterError(
            f"Unknown profile {profile!r}; available: {', '.join(PROFILES)}", parameter="Profile"
        )
    running = "accurate" if is_fused(service.engine.model_id) else "default"
    if profile != running:
        from facetrust.models.dlib import missing_packages

        missing = missing_packages() if profile == "accurate" else []
        need = f" and pip install 'facetrust[accurate]' ({', '.join(missing)} missing)" if missing else ""
        raise InvalidParameterError(
            f"Profile {profile!r} needs a service started with it (setting profile={profile}, "
            f"FACETRUST_PROFILE={profile}{need}); this one embeds with profile {running!r}, "
            f"model {service.engine.model_id!r}",
            parameter="Profile",
        )


def describe_collection(service: ServiceContext, actor: Actor, name: str) -> CollectionInfo:
    """The collection, counting only usable faces (expired ones are gone for every purpose)."""
    with governed(service, actor, "DescribeCollection", name) as step:
        row = step.collection
        with service.store.snapshot() as conn:
            faces = records.live_face_count(conn, row.id, service.clock())
            _, users = service.store.counts(row.id, conn)
    return CollectionInfo(row.name, row.model, row.created_at, faces, users, row.purpose)


def list_collections(service: ServiceContext, actor: Actor, max_results: int, next_token: str | None) -> CollectionPage:
    with governed(service, actor, "ListCollections"):
        check_limit(max_results, "MaxResults", 1, 4096)
        after = decode_token(next_token, "collections", "") if next_token is not None else ""
        rows = service.store.list_collections(str(after), max_results + 1)
    more = len(rows) > max_results
    rows = rows[:max_results]
    token = encode_token("collections", "", rows[-1].name) if more else None
    return CollectionPage(tuple(r.name for r in rows), tuple(r.model for r in rows), token)
