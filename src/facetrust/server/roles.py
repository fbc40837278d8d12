"""Roles at the HTTP edge: the table lives in ``facetrust.governance.roles`` (the library enforces it too).

The server checks a key's role before it parses a request, so a denied caller learns nothing
about the request's members; the service checks it again on the governed path, so no entry
point can skip it. docs/auth.md shows the table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from facetrust.governance.roles import OPERATIONS, ROLES, allowed_operations, check_role, may
from facetrust.server.auth import AuthError

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.server.auth import Principal

__all__ = ["OPERATIONS", "ROLES", "allowed_operations", "authorize", "check_role"]


def authorize(principal: Principal, operation: str) -> None:
    """Return if ``principal`` may call ``operation``; else raise ``AccessDeniedException``."""
    if may(principal.role, operation):
        return
    raise AuthError(
        f"User: {principal.key_id} (role {principal.role}) is not authorized to perform: rekognition:{operation}",
        code="AccessDeniedException",
        status=400,
        key_id=principal.key_id,
        role=principal.role,
        operation=operation,
    )
