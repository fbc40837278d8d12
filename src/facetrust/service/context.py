"""The one object every governed operation is handed: store, indexes, engine, policy, clock.

``FaceService`` builds it once when it opens and passes it, with the actor of the call, to the
operation modules (``faces``, ``search``, ``users``, ``erasure``, …): an operation is a
function of (context, actor, request) and reaches nothing else, so the modules import this
one and never ``FaceService`` (no cycles, no private helpers of the facade). In the modules
that predate it the parameter is still named ``service``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facetrust.errors import NotFoundError
from facetrust.service.validate import check_collection_id

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.engine import FaceEngine
    from facetrust.governance.policy import Policy
    from facetrust.service.indexes import IndexRegistry
    from facetrust.service.profiles import ProfileEngines
    from facetrust.store.protocol import FaceStore
    from facetrust.store.sqlite import CollectionRow

__all__ = ["ServiceContext"]


@dataclass(frozen=True)
class ServiceContext:
    """A service's parts, shared by its operations (the actor stays per call). Thread-safe as its parts are."""

    data_dir: Path
    store: FaceStore
    indexes: IndexRegistry
    engine: FaceEngine
    policy: Policy
    clock: Callable[[], float]
    engines: ProfileEngines  # the engine of each embedding profile; ``engine`` is the service's own

    def collection(self, name: str, *, model_check: bool = True) -> CollectionRow:
        """The stored collection ``name``; with ``model_check``, refused when this service cannot run
        the engine of its profile (``engine_for``)."""
        check_collection_id(name)
        row = self.store.get_collection(name)
        if row is None:
            raise NotFoundError(f"Collection {name!r} does not exist", resource=name)
        if model_check:
            self.engine_for(row)
        return row

    def engine_for(self, row: CollectionRow) -> FaceEngine:
        """The engine of the collection's profile (the one that made its templates), loaded on first
        use; ``ModelMismatchError`` when this service cannot run it (docs/engine.md#profiles)."""
        return self.engines.for_model(row.name, row.model)
