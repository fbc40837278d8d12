"""What an operation is: its request members, its handler, and how many images its body may carry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from facetrust.governance.actor import Actor
from facetrust.server.protocol import Kind, Member
from facetrust.service import FaceService
from facetrust.service.quality import QUALITY_FILTERS

__all__ = [
    "COLLECTION",
    "FACE_ID",
    "FACE_IDS",
    "IMAGE",
    "QUALITY_FILTER",
    "THRESHOLD",
    "USER_ID",
    "Handler",
    "Operation",
    "kwargs",
    "page_params",
]

Handler = Callable[[FaceService, dict[str, Any], Actor], dict[str, Any]]


@dataclass(frozen=True)
class Operation:
    """One Rekognition operation: parse+validate (``members``) → one library call → response (``handler``).

    The handler gets the checked members and the ``Actor`` (the caller's key and role) that the
    service records in its audit log.
    """

    name: str
    handler: Handler
    members: Mapping[str, Member] = field(default_factory=dict)
    images: int = 0


COLLECTION = Member(Kind.STRING, required=True)
USER_ID = Member(Kind.STRING, required=True)
FACE_ID = Member(Kind.STRING, required=True)
FACE_IDS = Member(Kind.STRINGS, required=True)
IMAGE = Member(Kind.IMAGE, required=True)
THRESHOLD = Member(Kind.NUMBER)
QUALITY_FILTER = Member(Kind.STRING, choices=QUALITY_FILTERS)


def kwargs(params: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for the members of ``params`` that were given, renamed by ``names``."""
    return {arg: params[member] for member, arg in names.items() if member in params}


def page_params(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """``params`` with a ``MaxResults`` of 0 left out: Rekognition's model allows 0 for ListFaces and
    ListCollections, and a client that sends it gets the default page, as if it had sent none."""
    if params.get("MaxResults") == 0 and not isinstance(params.get("MaxResults"), bool):
        return {k: v for k, v in params.items() if k != "MaxResults"}
    return params
