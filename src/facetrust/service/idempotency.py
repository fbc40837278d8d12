"""``ClientRequestToken`` for the user operations: a request is carried out once per token.

botocore sends a fresh token with every CreateUser, DeleteUser, AssociateFaces and
DisassociateFaces call and the same token again when it retries the call (after a timeout, a
lost connection, a 5xx). The answer to the first request under a token is kept with what it did,
in one transaction (``store/client_tokens.py``), per API key and operation, for a day; the same
request under that token within the day gets the same answer back and changes nothing (a retried
CreateUser is not refused as a conflict, a retried DeleteUser not as a missing user), and another
request under it is refused with ``IdempotencyError``. A kept answer that names a face is
forgotten when the face is erased, deleted or swept as expired, and every kept answer when its user is
deleted or erased; the request after that is carried out anew.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from facetrust.errors import IdempotencyError
from facetrust.service.types import AssociateResult, UnsuccessfulFace, UserInfo
from facetrust.service.validate import check_client_token
from facetrust.store import client_tokens as tables

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3
    from collections.abc import Sequence

    from facetrust.governance.actor import Actor

__all__ = ["TokenRequest", "associate_from", "associate_to", "mismatch", "remember", "replayed", "token_request"]


@dataclass(frozen=True)
class TokenRequest:
    """A request made under a ``ClientRequestToken``: whose, which operation, and its hash."""

    key_id: str
    operation: str
    token: str
    request_hash: str


def token_request(actor: Actor, operation: str, token: str | None, **request: Any) -> TokenRequest | None:
    """The token request for ``request`` (its parameters as JSON values), or None without a token."""
    if token is None:
        return None
    check_client_token(token)
    # default=repr: a parameter of the wrong type is named by its own check later, not by the hash
    text = json.dumps({"operation": operation, **request}, sort_keys=True, separators=(",", ":"), default=repr)
    return TokenRequest(actor.key_id, operation, token, hashlib.sha256(text.encode()).hexdigest())


def mismatch(token: str, operation: str) -> IdempotencyError:
    """The refusal of a request under a token this key already used for another ``operation``
    request (the user operations here, the video jobs in ``service.video_jobs``)."""
    return IdempotencyError(
        f"ClientRequestToken {token!r} was used for another {operation} request; use a new token for a new request",
        resource="ClientRequestToken",
    )


def replayed(conn: sqlite3.Connection, ask: TokenRequest | None, now: float) -> dict[str, Any] | None:
    """The answer kept for ``ask``'s token, if any; ``IdempotencyError`` when the token answered
    another request."""
    if ask is None:
        return None
    found = tables.find(conn, ask.key_id, ask.operation, ask.token, now)
    if found is None:
        return None
    if found.request_hash != ask.request_hash:
        raise mismatch(ask.token, ask.operation)
    answer: dict[str, Any] = json.loads(found.result)
    return answer


def remember(
    conn: sqlite3.Connection,
    ask: TokenRequest | None,
    collection_id: int,
    user_id: str,
    answer: dict[str, Any],
    now: float,
    face_keys: Sequence[int] = (),
) -> None:
    """Keep ``answer`` for ``ask``'s token, in the transaction that did the work (nothing without
    a token). ``face_keys``: the faces it names, whose removal forgets it."""
    if ask is None:
        return
    tables.remember(
        conn,
        key_id=ask.key_id,
        operation=ask.operation,
        token=ask.token,
        collection_id=collection_id,
        user_id=user_id,
        request_hash=ask.request_hash,
        result=json.dumps(answer, sort_keys=True),
        face_keys=face_keys,
        now=now,
    )


def associate_to(result: AssociateResult) -> dict[str, Any]:
    """An AssociateFaces or DisassociateFaces answer as JSON values."""
    return {
        "associated": list(result.associated),
        "unsuccessful": [[f.face_id, list(f.reasons), f.user_id] for f in result.unsuccessful],
        "user": [result.user.user_id, result.user.created_at, result.user.face_count, result.user.status],
    }


def associate_from(answer: dict[str, Any]) -> AssociateResult:
    """The answer ``associate_to`` kept, as it was returned."""
    user_id, created_at, face_count, status = answer["user"]
    return AssociateResult(
        tuple(answer["associated"]),
        tuple(UnsuccessfulFace(f, tuple(reasons), u) for f, reasons, u in answer["unsuccessful"]),
        UserInfo(user_id, float(created_at), int(face_count), status),
    )
