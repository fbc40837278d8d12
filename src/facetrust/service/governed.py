"""The one governed path every operation takes: role, collection, purpose (moratorium), audit entry.

``RULES`` is the table of operations: for each, what it applies to (a collection, a purpose
chosen by the request, or nothing) and whether it stays open while its purpose is forbidden.
Under a moratorium erasure and audit stay possible; anything that uses, lists or re-shapes
identities is refused. ``governed()`` checks the caller's role, resolves the collection and
its purpose under that rule, and records the attempt in the audit log whatever its outcome
(refusals, role denials and parameter errors included). A new operation is a row here plus a
row in tests/governance/test_matrix.py; an operation without a row cannot run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facetrust.errors import FacetrustError, InvalidParameterError, NotFoundError, PurposeRefusedError
from facetrust.governance.actor import Actor, check_purpose
from facetrust.governance.recorder import Record, audited
from facetrust.governance.roles import require_role
from facetrust.service.validate import check_collection_id

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    from facetrust.governance.policy import Policy, Purpose
    from facetrust.service.context import ServiceContext
    from facetrust.store.protocol import FaceStore
    from facetrust.store.sqlite import CollectionRow, FaceRow

__all__ = [
    "RULES",
    "Governed",
    "Rule",
    "allowed_purpose",
    "attempt",
    "check_search",
    "governed",
    "record_refusal",
    "require_current",
    "resolve_purpose",
    "usable",
]

COLLECTION, PURPOSE, NONE = "collection", "purpose", "none"


@dataclass(frozen=True)
class Rule:
    """How the governed path treats one operation.

    scope: ``collection`` (the collection's purpose applies), ``purpose`` (the request names
    a purpose, or the policy's default applies) or ``none``.
    moratorium: True when the operation stays open on a forbidden purpose (erasure, audit).
    caller_purpose: the caller's own purpose (``Actor.purpose``: the ``x-facetrust-purpose`` header)
    names the purpose where the request does not (CompareFaces); otherwise only the request does
    (CreateCollection: its tag; a header a client sends with every request does not choose it).
    """

    scope: str
    moratorium: bool
    caller_purpose: bool = False


_ERASE = Rule(COLLECTION, True)
_USE = Rule(COLLECTION, False)
_GLOBAL = Rule(NONE, True)

RULES: dict[str, Rule] = {
    "CreateCollection": Rule(PURPOSE, False),
    "DescribeCollection": _USE,
    "ListCollections": _GLOBAL,
    "DeleteCollection": _ERASE,
    "IndexFaces": _USE,
    "ListFaces": _USE,
    "DeleteFaces": _ERASE,
    "CreateUser": _USE,
    "DeleteUser": _USE,
    "ListUsers": _USE,
    "AssociateFaces": _USE,
    "DisassociateFaces": _USE,
    "SearchFaces": _USE,
    "SearchFacesByImage": _USE,
    "SearchUsers": _USE,
    "SearchUsersByImage": _USE,
    "CompareFaces": Rule(PURPOSE, False, caller_purpose=True),
    "DetectFaces": _GLOBAL,
    "RecordConsent": _GLOBAL,
    "RevokeConsent": _GLOBAL,
    "ShowConsent": _GLOBAL,
    "EraseSubject": _GLOBAL,
    "EraseExternalImageId": _ERASE,
    "EraseUser": _ERASE,
    "VerifyReceipt": _GLOBAL,
    "SweepRetention": _GLOBAL,
    "RotateTemplates": _GLOBAL,
    "RecordReview": Rule(NONE, False),
    "GetAuditLog": _GLOBAL,
    "VerifyAuditLog": _GLOBAL,
    "CreateKey": _GLOBAL,
    "RevokeKey": _GLOBAL,
    "ListPeople": _USE,  # people: clustering is 1:N matching, so search rules apply too (service/people.py)
    "DescribePerson": _USE,
    "ClusterFaces": _USE,
    "MergePeople": _USE,
    "SplitPerson": _USE,
    "NamePerson": _USE,
    "GetFaceCrop": _USE,
    "ListReviewQueue": Rule(NONE, False),
    "StartFaceDetection": _GLOBAL,
    "GetFaceDetection": _GLOBAL,
    "StartFaceSearch": _USE,
    "FaceSearchJob": _USE,
    "GetFaceSearch": _USE,
    "VideoSearch": _USE,
    "Redact": _USE,
    "RedactImage": _USE,
}


def resolve_purpose(policy: Policy, name: str, *, moratorium_ok: bool = False) -> Purpose | None:
    """The policy's rules for ``name``; refused when undeclared or forbidden, unless ``moratorium_ok``
    (then ``None`` for an undeclared purpose, so erasure works after a policy change)."""
    return policy.purposes.get(name) if moratorium_ok else allowed_purpose(policy, name)


def allowed_purpose(policy: Policy, name: str) -> Purpose:
    """The policy's rules for ``name``; ``PurposeRefusedError`` when undeclared or forbidden."""
    if not isinstance(name, str):
        raise InvalidParameterError(f"Purpose must be a purpose's name; got {type(name).__name__}", parameter="Purpose")
    check_purpose(name)  # no policy declares a name that is not a purpose name: refused, quoted short
    found = policy.purposes.get(name)
    if found is None:
        raise PurposeRefusedError(
            f"Purpose {name!r} is not declared in the deployment policy; declared: "
            f"{', '.join(sorted(policy.purposes))}",
            purpose=name,
            rule="declared",
        )
    if found.forbidden:
        raise PurposeRefusedError(
            f"Purpose {name!r} is forbidden by the deployment policy: {found.forbidden}", purpose=name, rule="forbidden"
        )
    return found


@dataclass
class Governed:
    """What the governed path resolved for the operation running inside it."""

    record: Record
    row: CollectionRow | None = None
    purpose: Purpose | None = None

    @property
    def collection(self) -> CollectionRow:
        if self.row is None:  # a collection-scoped operation asked with no collection (None)
            raise InvalidParameterError("A collection id is required; got None", parameter="CollectionId")
        return self.row


def _default_purpose(service: ServiceContext, asked: str | None) -> str:
    if asked is not None and not isinstance(asked, str):
        raise InvalidParameterError(
            f"Purpose must be a purpose's name; got {type(asked).__name__}", parameter="Purpose"
        )
    if asked is not None and not asked.strip():
        raise InvalidParameterError("A purpose must be named; got an empty name", parameter="Purpose")
    check_purpose(asked)  # before the audit record takes it: never a name of any length in the log
    chosen = asked if asked is not None else service.policy.default_purpose
    if chosen is None:
        raise InvalidParameterError(
            "The deployment policy has no default purpose: name the purpose", parameter="Purpose"
        )
    return chosen


@contextmanager
def attempt(store: FaceStore, actor: Actor, operation: str, collection: str | None = None) -> Iterator[Record]:
    """The role check and the audit record of an operation, for one that needs nothing else
    (``governed()`` builds on it). Every attempt is logged, a role denial included."""
    with audited(store, actor, operation, collection) as rec:
        require_role(actor.key_id, actor.role, operation)
        yield rec


def record_refusal(
    store: FaceStore,
    actor: Actor,
    operation: str,
    error: FacetrustError,
    *,
    collection: str | None = None,
    purpose: str | None = None,
) -> None:
    """Log an attempt an entry point refused before the operation could run (the server's role
    check, a malformed request): who, what (on which collection, for which purpose, when the entry
    point knows), and why."""
    rec = Record(actor, operation, collection, purpose)
    rec.details = {"error": error.message}
    with store.transaction() as conn:
        rec.commit(conn, outcome=error.code)


@contextmanager
def governed(
    service: ServiceContext,
    actor: Actor,
    operation: str,
    collection: str | None = None,
    *,
    purpose: str | None = None,
    model_check: bool = False,
) -> Iterator[Governed]:
    """Run one operation on the governed path; the block fills in the audit record's results."""
    rule = RULES[operation]
    with attempt(service.store, actor, operation, collection) as rec:
        step = Governed(rec)
        if rule.scope == COLLECTION and collection is not None:
            check_collection_id(collection)
            step.row = service.collection(collection, model_check=model_check)
            rec.purpose = step.row.purpose
            step.purpose = resolve_purpose(service.policy, step.row.purpose, moratorium_ok=rule.moratorium)
        elif rule.scope == PURPOSE:
            asked = purpose if purpose is not None or not rule.caller_purpose else (actor.purpose or None)
            rec.purpose = _default_purpose(service, asked)
            step.purpose = resolve_purpose(service.policy, rec.purpose, moratorium_ok=rule.moratorium)
        yield step


def require_current(service: ServiceContext, row: CollectionRow, conn: sqlite3.Connection) -> None:
    """Inside a write transaction, before writing under ``row``'s id: ``NotFoundError`` when its
    collection was deleted since the governed path resolved it, even if one of the same name was
    made since (a new collection, whose purpose and model were not the ones checked)."""
    if service.store.get_collection(row.name, conn) != row:
        raise NotFoundError(f"Collection {row.name!r} does not exist", resource=row.name)


def check_search(purpose: Purpose, threshold: float, most: int) -> int:
    """Refuse a 1:N match the purpose does not allow; the candidate cap that applies to it."""
    if not purpose.search:
        raise PurposeRefusedError(
            f"Purpose {purpose.name!r} does not allow 1:N search", purpose=purpose.name, rule="search"
        )
    if threshold < purpose.min_threshold:
        raise PurposeRefusedError(
            f"Purpose {purpose.name!r} requires a similarity threshold of at least {purpose.min_threshold:g}; "
            f"got {threshold:g}",
            purpose=purpose.name,
            rule="min_threshold",
        )
    return min(most, purpose.max_candidates)


def usable(face: FaceRow, now: float) -> bool:
    """A face past its expiry (retention, or its subject's consent) is unusable everywhere."""
    return face.expires_at is None or face.expires_at > now
