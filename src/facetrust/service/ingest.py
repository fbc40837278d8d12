"""IndexFaces for an image whose faces were detected and embedded elsewhere (bulk ingestion).

The detections and embeddings may come from another process (a Ray worker); everything that
governs the write happens here, exactly as in ``faces.index_faces``: the collection's purpose,
its model, the parameters, consent (before and inside the transaction), retention, the audit
entry (refusals included). The quality filter and MaxFaces are re-applied to the detections,
and the embeddings must be those of exactly the faces that pass.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facetrust.errors import InvalidParameterError, NotFoundError
from facetrust.governance.actor import LOCAL, Actor
from facetrust.governance.recorder import audited
from facetrust.service.faces import _check_consent, _new_face, _split
from facetrust.service.quality import check_quality_filter
from facetrust.service.types import IndexedFace, IndexResult
from facetrust.service.validate import check_external_image_id, check_limit
from facetrust.types import Face, FaceEmbedding

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.service.faceservice import FaceService

__all__ = ["PreparedImage", "accepted_faces", "index_prepared"]


@dataclass(frozen=True)
class PreparedImage:
    """One image's faces as a worker found them: every detection (largest first) and the
    embeddings of the faces ``accepted_faces`` keeps, in that order. ``sha256`` is the hash
    of the image's bytes (the resume record); the image itself is never kept."""

    sha256: str
    faces: tuple[Face, ...]
    embeddings: tuple[FaceEmbedding, ...]


def accepted_faces(faces: Sequence[Face], quality_filter: str, max_faces: int | None) -> list[Face]:
    """The faces IndexFaces would embed and store: those passing the filter, at most ``max_faces``."""
    return _split(list(faces), check_quality_filter(quality_filter), max_faces)[0]


def _check_prepared(service: FaceService, prepared: PreparedImage, accepted: list[Face]) -> None:
    embedded = [e.face for e in prepared.embeddings]
    if embedded != accepted:
        raise InvalidParameterError(
            f"The prepared image has {len(embedded)} embeddings, which are not those of the {len(accepted)} faces "
            "the quality filter and MaxFaces accept; prepare it again with the same options",
            parameter="embeddings",
        )
    for emb in prepared.embeddings:
        if emb.model != service.engine.model_id:
            raise InvalidParameterError(
                f"Embedding was made by model {emb.model!r}; this service stores {service.engine.model_id!r} only",
                parameter="embeddings",
            )


def index_prepared(
    service: FaceService,
    collection: str,
    prepared: PreparedImage,
    *,
    external_image_id: str | None = None,
    max_faces: int | None = None,
    quality_filter: str = "AUTO",
    actor: Actor = LOCAL,
) -> IndexResult:
    """Store a prepared image's faces under the same rules as ``FaceService.index_faces``,
    and record its hash as ingested in the same transaction; all of it commits, or none."""
    with audited(service.store, actor, "IndexFaces", collection) as rec:
        row, purpose = service._governed(collection)
        rec.purpose = purpose.name
        if external_image_id is not None:
            check_external_image_id(external_image_id)
        if max_faces is not None:
            check_limit(max_faces, "MaxFaces", 1, 4096)
        accepted, unindexed = _split(list(prepared.faces), check_quality_filter(quality_filter), max_faces)
        _check_consent(service, purpose, external_image_id)
        _check_prepared(service, prepared, accepted)
        image_id = str(uuid.uuid4())
        now = service.clock()
        expires = now + purpose.retention_seconds
        new = [
            _new_face(emb, face, image_id, external_image_id, expires)
            for emb, face in zip(prepared.embeddings, accepted)
        ]
        with service.store.transaction() as conn:
            if service.store.get_collection(collection, conn) != row:
                raise NotFoundError(f"Collection {collection!r} was deleted while indexing", resource=collection)
            _check_consent(service, purpose, external_image_id, conn)  # a revocation may have committed since
            keys = service.store.insert_faces(conn, row.id, new, now=now)
            stored = service.store.faces_by_keys(row.id, keys, conn)
            service.store.record_ingested(conn, row.id, prepared.sha256, image_id)
            rec.details = {
                "image_id": image_id,
                "external_image_id": external_image_id,
                "face_ids": [n.face_id for n in new],
                "unindexed": [list(u.reasons) for u in unindexed],
            }
            rec.commit(conn)
    from facetrust.service.faceservice import stored_face

    indexed = tuple(IndexedFace(stored_face(stored[k]), face) for k, face in zip(keys, accepted))
    return IndexResult(image_id, indexed, tuple(unindexed), service.engine.model_id)
