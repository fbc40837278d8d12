"""The one object every governed operation is handed: store, indexes, engine, policy, clock.

``FaceService`` builds it once when it opens and passes it, with the actor of the call, to the
operation modules (``faces``, ``search``, ``users``, ``governance_ops``, …): an operation is a
function of (context, actor, request) and reaches nothing else, so the modules import this
one and never ``FaceService`` (no cycles, no private helpers of the facade). In the modules
that predate it the parameter is still named ``service``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facetrust.errors import ModelMismatchError, NotFoundError
from facetrust.service.validate import check_collection_id

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.engine import FaceEngine
    from facetrust.governance.policy import Policy
    from facetrust.service.indexes import IndexRegistry
    from facetrust.store.protocol import FaceStore
    from facetrust.store.sqlite import CollectionRow

__all__ = ["ServiceContext", "is_fused"]


def is_fused(model_id: str) -> bool:
    """True for the models of profile ``accurate`` (``facetrust.models.fused``)."""
    from facetrust.models.fused import NAME

    return model_id.startswith(NAME + ":")


@dataclass(frozen=True)
class ServiceContext:
    """A service's parts, shared by its operations (the actor stays per call). Thread-safe as its parts are."""

    data_dir: Path
    store: FaceStore
    indexes: IndexRegistry
    engine: FaceEngine
    policy: Policy
    clock: Callable[[], float]

    def collection(self, name: str, *, model_check: bool = True) -> CollectionRow:
        """The stored collection ``name``; with ``model_check``, refused when its embeddings are of
        another model than the engine's."""
        check_collection_id(name)
        row = self.store.get_collection(name)
        if row is None:
            raise NotFoundError(f"Collection {name!r} does not exist", resource=name)
        if model_check and row.model != self.engine.model_id:
            hint = " (profile 'accurate': setting profile, FACETRUST_PROFILE=accurate)" if is_fused(row.model) else ""
            raise ModelMismatchError(
                f"Collection {name!r} holds embeddings of model {row.model!r}{hint}; this service embeds with "
                f"{self.engine.model_id!r}. Use a collection made with this model, or re-index into a new one.",
                resource=name,
                collection_model=row.model,
                engine_model=self.engine.model_id,
            )
        return row
