"""FaceService: the one orchestrator of collections, faces, users and 1:N search.

The CLI and the HTTP API call these methods and nothing below them, so every rule (and,
later, every governance check and audit record) lives here once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from pathlib import Path

from facetrust.config import INDEX_BACKENDS, Settings
from facetrust.engine import FaceEngine
from facetrust.errors import ConflictError, InvalidParameterError, ModelMismatchError, NotFoundError
from facetrust.images import ImageSource
from facetrust.service import search as _search
from facetrust.service import users as _users
from facetrust.service.indexes import IndexRegistry
from facetrust.service.quality import check_quality_filter, rejection_reasons
from facetrust.service.types import (
    AssociateResult,
    CollectionInfo,
    CollectionPage,
    DeleteFacesResult,
    FacePage,
    FaceSearchResult,
    IndexedFace,
    IndexResult,
    StoredFace,
    UnindexedFace,
    UnsuccessfulFace,
    UserPage,
    UserSearchResult,
)
from facetrust.service.validate import (
    check_collection_id,
    check_external_image_id,
    check_face_ids,
    check_limit,
    check_user_id,
    decode_token,
    encode_token,
)
from facetrust.store.sqlite import CollectionRow, FaceRow, NewFace, Store
from facetrust.types import Face, Pose, Quality, RatioBox

__all__ = ["FaceService", "stored_face"]

log = logging.getLogger(__name__)

DB_NAME = "facetrust.db"


def stored_face(row: FaceRow) -> StoredFace:
    left, top, width, height = row.box
    roll, yaw, pitch = row.pose
    return StoredFace(
        face_id=row.face_id,
        image_id=row.image_id,
        external_image_id=row.external_image_id,
        user_id=row.user_id,
        box=RatioBox(left, top, width, height),
        confidence=row.confidence,
        quality=Quality(row.brightness, row.sharpness),
        pose=Pose(roll, yaw, pitch),
        created_at=row.created_at,
    )


class FaceService:
    """Collections of faces in one data directory: SQLite (truth) plus derived vector indexes.

    Open with ``FaceService.open(data_dir)``; close (or use as a context manager) to save the
    index snapshots. Safe to share between threads.
    """

    def __init__(self, data_dir: Path, engine: FaceEngine, *, index_backend: str = "auto") -> None:
        if index_backend not in INDEX_BACKENDS:
            raise InvalidParameterError(
                f"Unknown index backend {index_backend!r}; available: {', '.join(INDEX_BACKENDS)}",
                parameter="index_backend",
            )
        self.data_dir = Path(data_dir)
        self.engine = engine
        self.store = Store(self.data_dir / DB_NAME)
        self.indexes = IndexRegistry(self.store, engine.recogniser.dim, index_backend, self.data_dir / "index")

    @classmethod
    def open(
        cls, data_dir: Path | None = None, settings: Settings | None = None, *, engine: FaceEngine | None = None
    ) -> FaceService:
        """A service over ``data_dir`` (default: ``settings.resolved_data_dir``) and the default engine."""
        from facetrust.engine import load_engine

        settings = settings or Settings()
        return cls(
            data_dir or settings.resolved_data_dir,
            engine or load_engine(settings),
            index_backend=settings.index_backend,
        )

    def close(self) -> None:
        self.indexes.save_all()
        self.store.close()

    def __enter__(self) -> FaceService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- collections ------------------------------------------------------------------------

    def _collection(self, name: str, *, model_check: bool = True) -> CollectionRow:
        check_collection_id(name)
        row = self.store.get_collection(name)
        if row is None:
            raise NotFoundError(f"Collection {name!r} does not exist", resource=name)
        if model_check and row.model != self.engine.model_id:
            raise ModelMismatchError(
                f"Collection {name!r} holds embeddings of model {row.model!r}; this service embeds with "
                f"{self.engine.model_id!r}. Use a collection made with this model, or re-index into a new one.",
                resource=name,
                collection_model=row.model,
                engine_model=self.engine.model_id,
            )
        return row

    def create_collection(self, name: str) -> CollectionInfo:
        """A new, empty collection bound to this service's embedding model."""
        check_collection_id(name)
        with self.store.transaction() as conn:
            if self.store.get_collection(name, conn) is not None:
                raise ConflictError(f"Collection {name!r} already exists", resource=name)
            row = self.store.insert_collection(conn, name, self.engine.model_id)
        return CollectionInfo(row.name, row.model, row.created_at, 0, 0)

    def describe_collection(self, name: str) -> CollectionInfo:
        row = self._collection(name, model_check=False)
        faces, users = self.store.counts(row.id)
        return CollectionInfo(row.name, row.model, row.created_at, faces, users)

    def list_collections(self, *, max_results: int = 1000, next_token: str | None = None) -> CollectionPage:
        check_limit(max_results, "MaxResults", 1, 4096)
        after = decode_token(next_token, "collections", "") if next_token is not None else ""
        rows = self.store.list_collections(str(after), max_results + 1)
        more = len(rows) > max_results
        rows = rows[:max_results]
        token = encode_token("collections", "", rows[-1].name) if more else None
        return CollectionPage(tuple(r.name for r in rows), tuple(r.model for r in rows), token)

    def delete_collection(self, name: str) -> int:
        """Delete a collection with all its faces and users; returns how many faces went."""
        row = self._collection(name, model_check=False)
        with self.store.transaction() as conn:
            removed = self.store.delete_collection(conn, row.id)
        self.indexes.drop(row)
        return removed

    # -- faces ------------------------------------------------------------------------------

    def index_faces(
        self,
        collection: str,
        image: ImageSource,
        *,
        external_image_id: str | None = None,
        max_faces: int | None = None,
        quality_filter: str = "AUTO",
    ) -> IndexResult:
        """Detect, filter and store the faces of ``image``; all of them commit, or none.

        Faces are considered largest first. Those failing the quality filter, and those
        beyond ``max_faces``, are returned as unindexed with Rekognition's reason codes.
        The image itself is never stored, only embeddings and metadata.
        """
        row = self._collection(collection)
        if external_image_id is not None:
            check_external_image_id(external_image_id)
        if max_faces is not None:
            check_limit(max_faces, "MaxFaces", 1, 4096)
        level = check_quality_filter(quality_filter)
        rgb = self.engine.load_image(image)
        faces = self.engine.detect(rgb)
        accepted: list[Face] = []
        unindexed: list[UnindexedFace] = []
        for face in faces:
            reasons = rejection_reasons(face, level)
            if reasons:
                unindexed.append(UnindexedFace(tuple(reasons), face))
            elif max_faces is not None and len(accepted) >= max_faces:
                unindexed.append(UnindexedFace(("EXCEEDS_MAX_FACES",), face))
            else:
                accepted.append(face)
        embeddings = self.engine.embed(rgb, accepted) if accepted else []
        image_id = str(uuid.uuid4())
        new = []
        for emb in embeddings:
            if emb.face is None:  # pragma: no cover - embed() always attaches the face
                continue
            face = emb.face
            r = face.ratio_box
            new.append(
                NewFace(
                    face_id=str(uuid.uuid4()),
                    image_id=image_id,
                    external_image_id=external_image_id,
                    box=(r.left, r.top, r.width, r.height),
                    confidence=face.confidence,
                    brightness=face.quality.brightness,
                    sharpness=face.quality.sharpness,
                    pose=(face.pose.roll, face.pose.yaw, face.pose.pitch),
                    embedding=emb.vector.astype("<f4").tobytes(),
                )
            )
        with self.store.transaction() as conn:
            if self.store.get_collection(collection, conn) != row:
                raise NotFoundError(f"Collection {collection!r} was deleted while indexing", resource=collection)
            keys = self.store.insert_faces(conn, row.id, new)
            stored = self.store.faces_by_keys(row.id, keys, conn)
        indexed = tuple(
            IndexedFace(stored_face(stored[k]), emb.face) for k, emb in zip(keys, embeddings) if emb.face is not None
        )
        return IndexResult(image_id, indexed, tuple(unindexed), self.engine.model_id)

    def list_faces(
        self,
        collection: str,
        *,
        max_results: int = 1000,
        next_token: str | None = None,
        user_id: str | None = None,
        face_ids: Sequence[str] | None = None,
    ) -> FacePage:
        row = self._collection(collection, model_check=False)
        check_limit(max_results, "MaxResults", 1, 4096)
        if user_id is not None:
            check_user_id(user_id)
        if face_ids is not None:
            wanted = check_face_ids(face_ids)
            found = self.store.faces_by_ids(row.id, wanted)
            faces = tuple(stored_face(found[f]) for f in wanted if f in found)
            return FacePage(faces, None, row.model)
        after = decode_token(next_token, "faces", collection) if next_token is not None else 0
        if not isinstance(after, int):
            raise InvalidParameterError("NextToken does not belong to this face listing", parameter="NextToken")
        rows = self.store.list_faces(row.id, after_key=after, limit=max_results + 1, user_id=user_id)
        more = len(rows) > max_results
        rows = rows[:max_results]
        token = encode_token("faces", collection, rows[-1].key) if more else None
        return FacePage(tuple(stored_face(r) for r in rows), token, row.model)

    def delete_faces(self, collection: str, face_ids: Sequence[str]) -> DeleteFacesResult:
        row = self._collection(collection, model_check=False)
        wanted = check_face_ids(face_ids)
        with self.store.transaction() as conn:
            found = self.store.faces_by_ids(row.id, wanted, conn)
            self.store.delete_faces(conn, row.id, [found[f].key for f in wanted if f in found])
        deleted = tuple(f for f in dict.fromkeys(wanted) if f in found)
        missing = tuple(UnsuccessfulFace(f, ("FACE_NOT_FOUND",)) for f in dict.fromkeys(wanted) if f not in found)
        return DeleteFacesResult(deleted, missing)

    # -- users (facetrust.service.users) ------------------------------------------------------

    def create_user(self, collection: str, user_id: str) -> None:
        _users.create_user(self, self._collection(collection, model_check=False), user_id)

    def delete_user(self, collection: str, user_id: str) -> None:
        _users.delete_user(self, self._collection(collection, model_check=False), user_id)

    def list_users(self, collection: str, *, max_results: int = 500, next_token: str | None = None) -> UserPage:
        return _users.list_users(self, self._collection(collection, model_check=False), max_results, next_token)

    def associate_faces(
        self, collection: str, user_id: str, face_ids: Sequence[str], *, user_match_threshold: float = 75.0
    ) -> AssociateResult:
        return _users.associate_faces(self, self._collection(collection), user_id, face_ids, user_match_threshold)

    def disassociate_faces(self, collection: str, user_id: str, face_ids: Sequence[str]) -> AssociateResult:
        return _users.disassociate_faces(self, self._collection(collection, model_check=False), user_id, face_ids)

    # -- search (facetrust.service.search) ----------------------------------------------------

    def search_faces(
        self, collection: str, face_id: str, *, threshold: float = 80.0, max_faces: int = 4096
    ) -> FaceSearchResult:
        """Stored faces matching a stored face (the face itself excluded), best first."""
        return _search.search_faces(self, self._collection(collection), face_id, threshold, max_faces)

    def search_faces_by_image(
        self,
        collection: str,
        image: ImageSource,
        *,
        threshold: float = 80.0,
        max_faces: int = 4096,
        quality_filter: str = "NONE",
    ) -> FaceSearchResult:
        """Stored faces matching the largest face in ``image``; the searched face is returned."""
        return _search.search_faces_by_image(
            self, self._collection(collection), image, threshold, max_faces, quality_filter
        )

    def search_users(
        self,
        collection: str,
        *,
        user_id: str | None = None,
        face_id: str | None = None,
        threshold: float = 80.0,
        max_users: int = 4096,
    ) -> UserSearchResult:
        return _search.search_users(self, self._collection(collection), user_id, face_id, threshold, max_users)

    def search_users_by_image(
        self,
        collection: str,
        image: ImageSource,
        *,
        threshold: float = 80.0,
        max_users: int = 4096,
        quality_filter: str = "NONE",
    ) -> UserSearchResult:
        return _search.search_users_by_image(
            self, self._collection(collection), image, threshold, max_users, quality_filter
        )
