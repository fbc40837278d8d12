"""CreateCollection, DeleteCollection, DescribeCollection, ListCollections."""

from __future__ import annotations

from typing import Any

from facetrust.config import PROFILES
from facetrust.errors import InvalidParameterError
from facetrust.governance.actor import Actor, shown
from facetrust.server.operations.base import COLLECTION, Operation, kwargs, page_params
from facetrust.server.operations.governance import receipt
from facetrust.server.protocol import Kind, Member
from facetrust.server.shapes import collection_arn
from facetrust.service import FaceService

__all__ = ["OPERATIONS"]


PURPOSE_TAG = "facetrust:purpose"
PROFILE_TAG = "facetrust:profile"  # "default" or "accurate" (docs/engine.md)


def create_collection(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    tags = dict(p.get("Tags") or {})
    purpose = tags.pop(PURPOSE_TAG, None)
    profile = _profile(p.get("FaceModelProfile"), tags.pop(PROFILE_TAG, None))
    if tags:
        named = sorted(tags)
        got = ", ".join(shown(t) for t in named[:5]) + (f" and {len(named) - 5} more" if len(named) > 5 else "")
        raise InvalidParameterError(
            f"Tags other than {PURPOSE_TAG!r} (the collection's purpose) and {PROFILE_TAG!r} (its embedding "
            f"profile) are not supported by facetrust; got {got}",
            parameter="Tags",
        )
    info = service.create_collection(p["CollectionId"], purpose=purpose, profile=profile, actor=actor)
    return {
        "StatusCode": 200,
        "CollectionArn": collection_arn(info.name),
        "FaceModelVersion": info.model,
        "FaceModelProfile": info.profile,  # a facetrust extension (boto3 drops it; FaceModelVersion names the model)
    }


def _profile(member: str | None, tag: str | None) -> str | None:
    """The profile asked for by the ``FaceModelProfile`` member (facetrust's) or the ``facetrust:profile``
    tag (what an unmodified boto3 can send); both may be given only when they agree."""
    if member is not None and tag is not None and member != tag:
        raise InvalidParameterError(
            f"FaceModelProfile {member!r} and tag {PROFILE_TAG!r} {tag!r} ask for different profiles",
            parameter="FaceModelProfile",
        )
    return member if member is not None else tag


def delete_collection(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    # Receipt: a facetrust extension (boto3 drops it; docs/http.md shows the hook that keeps it)
    return {"StatusCode": 200, "Receipt": receipt(service.delete_collection(p["CollectionId"], actor=actor))}


def describe_collection(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    info = service.describe_collection(p["CollectionId"], actor=actor)
    return {
        "FaceCount": info.face_count,
        "UserCount": info.user_count,
        "FaceModelVersion": info.model,
        "FaceModelProfile": info.profile,  # a facetrust extension, as in CreateCollection
        "CollectionARN": collection_arn(info.name),
        "CreationTimestamp": info.created_at,
    }


def list_collections(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    page = service.list_collections(
        actor=actor, **kwargs(page_params(p), {"MaxResults": "max_results", "NextToken": "next_token"})
    )
    out: dict[str, Any] = {"CollectionIds": list(page.names), "FaceModelVersions": list(page.models)}
    if page.next_token is not None:
        out["NextToken"] = page.next_token
    return out


OPERATIONS = (
    Operation(
        "CreateCollection",
        create_collection,
        {
            "CollectionId": COLLECTION,
            "Tags": Member(Kind.STRING_MAP),
            "FaceModelProfile": Member(Kind.STRING, choices=PROFILES),
        },
    ),
    Operation("DeleteCollection", delete_collection, {"CollectionId": COLLECTION}),
    Operation("DescribeCollection", describe_collection, {"CollectionId": COLLECTION}),
    Operation(
        "ListCollections",
        list_collections,
        {"NextToken": Member(Kind.STRING), "MaxResults": Member(Kind.INTEGER)},
    ),
)
